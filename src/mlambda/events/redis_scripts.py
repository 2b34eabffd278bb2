"""The Lua scripts of the Redis queue (events/redis.py): each call is one script, so each state
change is atomic on the server and one round trip.

Keys, under the queue's prefix ``P`` (ARGV[1] of every script; one Redis, not a Redis Cluster):

- ``P:ev:ID``        hash: the event's record, plus ``visible_at``, ``lease_until`` and ``entry``
                     (the id of the stream entry that carries it while queued or running)
- ``P:q:FN``         stream of FN's deliverable events; consumer group ``mlambda``
- ``P:delayed:FN``   sorted set: FN's events waiting out a retry delay, by when they are due
- ``P:open:FN``      sorted set: FN's events not finished, by enqueue time (depth, oldest age)
- ``P:fn:FN``, ``P:all``  sorted sets: every event by enqueue time (listing, newest first)
- ``P:functions``    set of the functions that have a stream
- ``P:idem:FN:KEY``  the event an idempotency key made (expires after the window)
- ``P:leases``       sorted set: running events by when their lease runs out
- ``P:pending``      set of finished events whose destination delivery is pending
"""

from __future__ import annotations

# Shared by the scripts below: stream ids compared as numbers ("ms-seq").
_COMMON = """
local P, GROUP = ARGV[1], 'mlambda'
local function before(a, b)
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  if tonumber(am) ~= tonumber(bm) then return tonumber(am) < tonumber(bm) end
  return tonumber(as) < tonumber(bs)
end
local function stream(fn)
  local key = P .. ':q:' .. fn
  if redis.call('SADD', P .. ':functions', fn) == 1 then
    redis.pcall('XGROUP', 'CREATE', key, GROUP, '0', 'MKSTREAM')
  end
  return key
end
local function enqueue(id, fn, visible)
  local entry = redis.call('XADD', stream(fn), '*', 'id', id, 'v', visible)
  redis.call('HSET', P .. ':ev:' .. id, 'entry', entry, 'visible_at', visible)
end
local function last_delivered(key)
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    local fields = {}
    for i = 1, #group, 2 do fields[group[i]] = group[i + 1] end
    if fields['name'] == GROUP then return fields['last-delivered-id'] end
  end
  return '0-0'
end
-- The entries of FN's stream not yet delivered to the group (at most n).
local function undelivered(fn, n)
  local key = P .. ':q:' .. fn
  return redis.call('XRANGE', key, '(' .. last_delivered(key), '+', 'COUNT', n)
end
local function entry_field(entry, name)
  local fields = entry[2]
  for i = 1, #fields, 2 do if fields[i] == name then return fields[i + 1] end end
end
-- Take the event's stream entry out (acknowledged and deleted), if it has one.
local function unqueue(ev, fn)
  local entry = redis.call('HGET', ev, 'entry')
  if entry then
    local key = P .. ':q:' .. fn
    redis.call('XACK', key, GROUP, entry)
    redis.call('XDEL', key, entry)
  end
  redis.call('HDEL', ev, 'entry', 'lease_until')
  redis.call('ZREM', P .. ':leases', string.match(ev, ':ev:(.*)$'))
end
"""

# ARGV: P, id, function, enqueued_at, idempotency key ('' for none), window, then field/value pairs.
# Returns the id of the event that holds the key (the new one, or the first within the window).
PUT = (
    _COMMON
    + """
local id, fn, at, key = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local window = tonumber(ARGV[6])
local idem = P .. ':idem:' .. fn .. ':' .. key
if key ~= '' then
  local first = redis.call('GET', idem)
  if first then
    local t = redis.call('HGET', P .. ':ev:' .. first, 'enqueued_at')
    if t and tonumber(t) > at - window then return first end
  end
end
local ev = P .. ':ev:' .. id
redis.call('HSET', ev, unpack(ARGV, 7))
for _, index in ipairs({P .. ':fn:' .. fn, P .. ':all', P .. ':open:' .. fn}) do
  redis.call('ZADD', index, at, id)
end
enqueue(id, fn, ARGV[4])
if key ~= '' then redis.call('SET', idem, id, 'PX', math.floor(window * 1000)) end
return id
"""
)

# ARGV: P, consumer, now, visibility (s), limit, then function/room pairs.
# Leases past their visibility timeout are claimed (XCLAIM) by this consumer; due retries move
# into their streams; then the oldest undelivered entries, at most room per function and limit
# in all, are read by this consumer (XREADGROUP). Returns the records leased (HGETALL each).
LEASE = (
    _COMMON
    + """
local consumer, now, visibility = ARGV[2], ARGV[3], tonumber(ARGV[4])
local limit = tonumber(ARGV[5])
local leased, chosen, room = {}, {}, {}
local function lease(id)
  local ev = P .. ':ev:' .. id
  local until_ = tonumber(now) + visibility
  redis.call('HINCRBY', ev, 'attempts', 1)
  redis.call('HSET', ev, 'state', 'running', 'updated_at', now, 'lease_until', tostring(until_))
  redis.call('ZADD', P .. ':leases', until_, id)
  table.insert(leased, id)
end
local rooms = {}
for i = 6, #ARGV, 2 do rooms[ARGV[i]] = tonumber(ARGV[i + 1]) end
-- Leases past their visibility timeout (the holder died, or let go): claimed by this consumer.
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. ':leases', '-inf', now)) do
  local ev = P .. ':ev:' .. id
  local fn = redis.call('HGET', ev, 'function')
  local entry = redis.call('HGET', ev, 'entry')
  if fn and entry and (rooms[fn] or 0) > 0 and #leased < limit then
    redis.call('XCLAIM', P .. ':q:' .. fn, GROUP, consumer, 0, entry, 'JUSTID')
    lease(id)
    rooms[fn] = rooms[fn] - 1
  end
end
for i = 6, #ARGV, 2 do
  local fn, n = ARGV[i], rooms[ARGV[i]]
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. ':delayed:' .. fn, '-inf', now)) do
    redis.call('ZREM', P .. ':delayed:' .. fn, id)
    enqueue(id, fn, now)
  end
  if redis.call('EXISTS', P .. ':q:' .. fn) == 1 and n > 0 and #leased < limit then
    if n > 0 then
      for _, entry in ipairs(undelivered(fn, math.min(n, limit))) do
        table.insert(chosen, {entry[1], fn})
      end
    end
  end
end
table.sort(chosen, function(a, b) return before(a[1], b[1]) end)
local take = {}
for i = 1, math.min(#chosen, limit - #leased) do
  local fn = chosen[i][2]
  take[fn] = (take[fn] or 0) + 1
end
for fn, n in pairs(take) do
  local read = redis.call('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', n,
                          'STREAMS', P .. ':q:' .. fn, '>')
  for _, entry in ipairs(read[1][2]) do lease(entry_field(entry, 'id')) end
end
local records = {}
for _, id in ipairs(leased) do table.insert(records, redis.call('HGETALL', P .. ':ev:' .. id)) end
return records
"""
)

# ARGV: P, id, now, visible_at, attempts change (0: a retry, -1: a release), error ('' keeps it).
# A running event goes back to queued, due at visible_at. Returns 1, or 0 if it was not running.
REQUEUE = (
    _COMMON
    + """
local ev = P .. ':ev:' .. ARGV[2]
if redis.call('HGET', ev, 'state') ~= 'running' then return 0 end
local fn = redis.call('HGET', ev, 'function')
unqueue(ev, fn)
redis.call('HSET', ev, 'state', 'queued', 'updated_at', ARGV[3], 'visible_at', ARGV[4])
if ARGV[6] ~= '' then redis.call('HSET', ev, 'error', ARGV[6]) end
if tonumber(ARGV[5]) ~= 0 then redis.call('HINCRBY', ev, 'attempts', tonumber(ARGV[5])) end
redis.call('ZADD', P .. ':delayed:' .. fn, tonumber(ARGV[4]), ARGV[2])
return 1
"""
)

# ARGV: P, id, delivery pending ('1'/'0'), n, then n field/value pairs to set, then fields to
# delete. A running event is finished (succeeded, failed or expired). Returns 1, or 0.
FINISH = (
    _COMMON
    + """
local id = ARGV[2]
local ev = P .. ':ev:' .. id
if redis.call('HGET', ev, 'state') ~= 'running' then return 0 end
local fn = redis.call('HGET', ev, 'function')
unqueue(ev, fn)
local n = tonumber(ARGV[4])
redis.call('HSET', ev, unpack(ARGV, 5, 4 + 2 * n))
if #ARGV > 4 + 2 * n then redis.call('HDEL', ev, unpack(ARGV, 5 + 2 * n)) end
redis.call('ZREM', P .. ':open:' .. fn, id)
if ARGV[3] == '1' then redis.call('SADD', P .. ':pending', id) end
return 1
"""
)

# ARGV: P, consumer, now. What this consumer had leased when it died is queued again now (each
# attempt stays counted). Returns how many.
RECOVER = (
    _COMMON
    + """
local consumer, now, count = ARGV[2], ARGV[3], 0
for _, fn in ipairs(redis.call('SMEMBERS', P .. ':functions')) do
  local key = P .. ':q:' .. fn
  for _, pending in ipairs(redis.call('XPENDING', key, GROUP, '-', '+', 100000, consumer)) do
    local entry = redis.call('XRANGE', key, pending[1], pending[1])[1]
    redis.call('XACK', key, GROUP, pending[1])
    redis.call('XDEL', key, pending[1])
    if entry then
      local id = entry_field(entry, 'id')
      local ev = P .. ':ev:' .. id
      redis.call('HDEL', ev, 'lease_until')
      redis.call('ZREM', P .. ':leases', id)
      redis.call('HSET', ev, 'state', 'queued', 'updated_at', now)
      enqueue(id, fn, now)
      count = count + 1
    end
  end
end
return count
"""
)

# ARGV: P, then the functions to leave out. When the next event becomes deliverable: the oldest
# undelivered entry's time, or the earliest due retry. Returns it as a string, or false.
NEXT_VISIBLE = (
    _COMMON
    + """
local skip, best = {}, nil
for i = 2, #ARGV do skip[ARGV[i]] = true end
for _, fn in ipairs(redis.call('SMEMBERS', P .. ':functions')) do
  if not skip[fn] then
    local head = undelivered(fn, 1)[1]
    if head then
      local v = tonumber(entry_field(head, 'v'))
      if not best or v < best then best = v end
    end
    local due = redis.call('ZRANGE', P .. ':delayed:' .. fn, 0, 0, 'WITHSCORES')
    if due[2] and (not best or tonumber(due[2]) < best) then best = tonumber(due[2]) end
  end
end
if best then return string.format('%.6f', best) end
return false
"""
)

# ARGV: P. Per function with unfinished events: name, count, oldest enqueue time.
DEPTH = (
    _COMMON
    + """
local out = {}
for _, fn in ipairs(redis.call('SMEMBERS', P .. ':functions')) do
  local n = redis.call('ZCARD', P .. ':open:' .. fn)
  if n > 0 then
    local oldest = redis.call('ZRANGE', P .. ':open:' .. fn, 0, 0, 'WITHSCORES')[2]
    table.insert(out, fn); table.insert(out, n); table.insert(out, oldest)
  end
end
return out
"""
)

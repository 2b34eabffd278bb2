"""The pure decisions of object, schedule and rule triggers, by table: what a listing changed,
which events a trigger takes, what an S3 notification or a PutEvents entry says, which missed
fire a schedule catches up, and the shapes a handler receives."""

from __future__ import annotations

import json

import pytest

from mlambda.errors import InvalidRequest
from mlambda.events.bus import EntryError, entries_of, event_of
from mlambda.events.shapes import CREATED, REMOVED, ObjectEvent, bus_event, s3_record
from mlambda.events.triggers.config import parse_trigger
from mlambda.events.triggers.listing import Listed
from mlambda.events.triggers.notifications import object_events
from mlambda.events.triggers.objects import changes, idempotency_key, wanted
from mlambda.events.triggers.schedule import catch_up_fire, scheduled_event
from mlambda.events.triggers.seen import Seen
from mlambda.events.triggers.store import Trigger

NOW = 1_796_000_000.0


def _trigger(created_at: float = NOW - 3600, **table: object) -> Trigger:
    spec, _ = parse_trigger(table, "t")
    return Trigger("0f8fad5b-d9cb-469f-a165-70867728950e", "fn", "config", spec, True,
                   created_at, created_at)  # fmt: skip


def _listed(etag: str) -> Listed:
    return Listed(etag, f"1:{etag}", 1, NOW)


@pytest.mark.parametrize(
    ("seen", "listed", "added", "removed"),
    [
        ({}, {"a": "1"}, ["a"], []),
        ({"a": "1"}, {"a": "1"}, [], []),
        ({"a": "1"}, {"a": "2"}, ["a"], []),  # new content under the key
        ({"a": "1", "b": "1"}, {"b": "1"}, [], ["a"]),
        ({"a": "1"}, {"b": "1"}, ["b"], ["a"]),
    ],
)
def test_a_listing_changes_what_is_new_by_key_and_etag(seen, listed, added, removed):
    found = changes(
        {k: Seen(v, f"1:{v}") for k, v in seen.items()}, {k: _listed(v) for k, v in listed.items()}
    )
    assert (sorted(found[0]), found[1]) == (added, removed)


S3 = {"type": "object", "source": "s3://photos/in/", "suffix": ".jpg"}


@pytest.mark.parametrize(
    ("table", "event", "taken"),
    [
        (S3, ("photos", "in/a.jpg", CREATED), True),
        (S3, ("other", "in/a.jpg", CREATED), False),
        (S3, ("photos", "out/a.jpg", CREATED), False),
        (S3, ("photos", "in/a.png", CREATED), False),
        (S3, ("photos", "in/a.jpg", REMOVED), False),
        ({**S3, "events": ["removed"]}, ("photos", "in/a.jpg", REMOVED), True),
        ({**S3, "events": ["removed"]}, ("photos", "in/a.jpg", "ObjectCreated:Copy"), False),
        ({"type": "object", "source": "file:///srv/drop/"}, ("drop", "x/y.csv", CREATED), True),
    ],
)
def test_a_trigger_takes_events_of_its_bucket_prefix_suffix_and_kinds(table, event, taken):
    bucket, key, name = event
    assert wanted(_trigger(**table), ObjectEvent(name, bucket, key, 1, "e", "01", NOW)) is taken


def test_a_watch_names_an_event_by_its_content_so_a_relisting_is_the_same_event():
    trigger = _trigger(**S3)
    first = ObjectEvent(CREATED, "photos", "in/a.jpg", 1, "etag1", "0001", NOW)
    again = ObjectEvent(CREATED, "photos", "in/a.jpg", 1, "etag1", "0099", NOW + 5)
    changed = ObjectEvent(CREATED, "photos", "in/a.jpg", 1, "etag2", "0100", NOW + 9)
    assert idempotency_key(trigger, first) == idempotency_key(trigger, again)
    assert idempotency_key(trigger, first) != idempotency_key(trigger, changed)


def test_an_s3_record_has_lambdas_fields_with_the_key_url_encoded():
    event = ObjectEvent(CREATED, "photos", "in/my cat+1.jpg", 42, "abc", "00AB", NOW + 0.25)
    record = s3_record(event, "eu-west-1", "trigger-id")
    assert record["eventVersion"] == "2.1" and record["eventSource"] == "aws:s3"
    assert record["eventTime"] == "2026-11-30T00:53:20.250Z"
    assert record["s3"]["object"] == {
        "key": "in/my+cat%2B1.jpg",
        "size": 42,
        "eTag": "abc",
        "sequencer": "00AB",
    }
    removed = s3_record(
        ObjectEvent(REMOVED, "photos", "in/a", None, "abc", "01", NOW), "eu-west-1", "t"
    )
    assert removed["s3"]["object"] == {"key": "in/a", "sequencer": "01"}


def _record(**object_fields: object) -> dict:
    return {
        "eventName": "s3:ObjectCreated:Put",
        "eventTime": "2026-12-07T10:00:00.000Z",
        "s3": {"bucket": {"name": "photos"}, "object": {"key": "in/a+b.jpg", **object_fields}},
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"Records": [_record(size=5, eTag='"e1"', sequencer="0A")]},
         [("ObjectCreated:Put", "photos", "in/a b.jpg", 5, "e1", "0A")]),
        ({"Records": [_record()]}, [("ObjectCreated:Put", "photos", "in/a b.jpg", None, "", "")]),
        ({"Service": "Amazon S3", "Event": "s3:TestEvent"}, []),
        ({"Records": []}, []),
    ],
)  # fmt: skip
def test_a_notification_names_its_objects(body, expected):
    found = [(e.name, e.bucket, e.key, e.size, e.etag, e.sequencer) for e in object_events(body)]
    assert found == expected


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"records": []}, "Records"),
        ({"Records": {}}, "Records"),
        ({"Records": [{"eventName": "ObjectCreated:Put"}]}, "Records[0] must hold"),
        ({"Records": [{**_record(), "eventName": "ObjectRestore:Post"}]}, "not an ObjectCreated"),
        ([], "Records"),
    ],
)
def test_a_bad_notification_is_refused_with_what_is_wrong(body, says):
    with pytest.raises(InvalidRequest, match=says.replace("[", r"\[").replace("]", r"\]")):
        object_events(body)


ENTRY = {"Source": "s", "DetailType": "d", "Detail": "{}"}


@pytest.mark.parametrize(
    ("entry", "code"),
    [
        ({"Source": "s", "DetailType": "d", "Detail": "{"}, "MalformedDetail"),
        ({"Source": "s", "DetailType": "d", "Detail": "[1]"}, "MalformedDetail"),
        ({"Source": "s", "Detail": "{}"}, "InvalidArgument"),
        ({"Source": "", "DetailType": "d", "Detail": "{}"}, "InvalidArgument"),
        ({**ENTRY, "Time": "yesterday"}, "InvalidArgument"),
        ({**ENTRY, "Resources": "arn"}, "InvalidArgument"),
        ({**ENTRY, "EventBusName": "x"}, "InvalidArgument"),
        ({**ENTRY, "Detail": "x" * 300_000}, "InvalidArgument"),
        ("entry", "InvalidArgument"),
    ],
)  # fmt: skip
def test_a_bad_entry_fails_with_putevents_codes(entry, code):
    with pytest.raises(EntryError) as raised:
        event_of(entry, "us-east-1", NOW)
    assert raised.value.code == code


@pytest.mark.parametrize(
    ("time_given", "expected"),
    [(None, "2026-11-30T00:53:20Z"), (NOW - 60, "2026-11-30T00:52:20Z"),
     ("2026-12-07T10:00:00Z", "2026-12-07T10:00:00Z"),
     ("2026-12-07T11:00:00+01:00", "2026-12-07T10:00:00Z")],
)  # fmt: skip
def test_an_entry_becomes_an_eventbridge_event(time_given, expected):
    entry = {"Source": "shop", "DetailType": "Order", "Detail": json.dumps({"a": 1})}
    if time_given is not None:
        entry["Time"] = time_given
    event = event_of(entry, "us-east-1", NOW)
    assert event["time"] == expected
    assert {k: event[k] for k in ("version", "source", "detail-type", "detail", "resources")} == {
        "version": "0", "source": "shop", "detail-type": "Order", "detail": {"a": 1},
        "resources": [],
    }  # fmt: skip


@pytest.mark.parametrize(
    "body", [{"Entries": []}, {"Entries": [{}] * 11}, {"Entry": [{}]}, {"Entries": "x"}, []]
)
def test_a_request_without_one_to_ten_entries_is_refused(body):
    with pytest.raises(InvalidRequest, match="Entries"):
        entries_of(body)


RATE = {"type": "schedule", "schedule": "rate(1 minute)"}


@pytest.mark.parametrize(
    ("table", "last", "now", "expected"),
    [
        ({**RATE, "catch_up": "latest"}, NOW - 300, NOW + 1, NOW),  # the last missed, once
        ({**RATE, "catch_up": "latest"}, NOW, NOW + 30, None),  # nothing missed
        ({**RATE, "catch_up": "none"}, NOW - 300, NOW + 1, None),
    ],
)
def test_catch_up_runs_the_last_missed_fire_or_none(table, last, now, expected):
    assert catch_up_fire(_trigger(created_at=NOW - 3600, **table), last, now) == expected


def test_a_scheduled_event_is_eventbridges_with_the_fire_time_and_a_stable_id():
    trigger = _trigger(**RATE)
    event = scheduled_event(trigger, NOW, "us-east-1")
    assert event == bus_event(
        "aws.events",
        "Scheduled Event",
        {},
        id=event["id"],
        at=NOW,
        region="us-east-1",
        resources=["arn:aws:events:us-east-1:000000000000:rule/fn-0f8fad5b"],
    )
    assert scheduled_event(trigger, NOW, "us-east-1")["id"] == event["id"]
    assert scheduled_event(trigger, NOW + 60, "us-east-1")["id"] != event["id"]

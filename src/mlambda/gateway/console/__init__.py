"""The web console at /console: server-rendered pages over what the platform knows (functions,
versions, metrics, instances, invocations, traces, queues, triggers, cost, alarms), signed in
with an API key and kept in an HTTP-only session cookie, each form guarded against CSRF."""

"""A trigger's settings and source URL, by table: what is accepted, its defaults, and the error
a user gets for each mistake (naming the field, never showing a password)."""

from __future__ import annotations

import pytest

from mlambda.errors import InvalidSpec
from mlambda.events.triggers.config import parse_trigger
from mlambda.events.triggers.sources import parse_source, redact

WHERE = "mlambda.toml: triggers[0]"


@pytest.mark.parametrize(
    ("url", "kind", "broker", "name", "options"),
    [
        ("amqp://guest:guest@127.0.0.1:5672/%2F?queue=orders", "queue", "rabbitmq", "orders", {}),
        (
            "redis://127.0.0.1:6379/0?stream=orders&group=g",
            "queue",
            "redis",
            "orders",
            {"group": "g"},
        ),
        ("redis://127.0.0.1:6379/0?stream=clicks", "stream", "redis", "clicks", {}),
        (
            "nats://127.0.0.1:4222?stream=ORDERS&subject=orders.>",
            "queue",
            "nats",
            "ORDERS",
            {"subject": "orders.>"},
        ),
        ("nats://127.0.0.1:4222?stream=CLICKS", "stream", "nats", "CLICKS", {}),
        ("mqtt://127.0.0.1:1883?topic=t/%2B", "queue", "mqtt", "t/+", {}),
        ("mqtt://127.0.0.1:1883?topic=t/+", "queue", "mqtt", "t/+", {}),
        ("mqtt://h?topic=a/%2B/%23", "queue", "mqtt", "a/+/#", {}),
        ("mlambda://orders", "queue", "mlambda", "orders", {}),
    ],
)
def test_each_source_form(url, kind, broker, name, options):
    source = parse_source(url, kind, WHERE)
    assert (source.broker, source.name, source.options) == (broker, name, options)


@pytest.mark.parametrize(
    ("url", "kind", "says"),
    [
        ("orders", "queue", "must be a URL"),
        ("kafka://h:9092?topic=t", "queue", "the scheme must be one of"),
        ("amqp://h/?queue=q", "stream", "rabbitmq serves type = 'queue' triggers"),
        ("mqtt://h?topic=t", "stream", "mqtt serves type = 'queue'"),
        ("mlambda://orders", "stream", "mlambda serves type = 'queue'"),
        ("amqp://h/", "queue", "names no queue"),
        ("redis://h?group=g", "queue", "names no stream"),
        ("amqp://h/?queue=q&prefetch=9", "queue", "unknown parameter 'prefetch'"),
        ("amqp://h/?queue=", "queue", "queue needs exactly one value"),
        ("amqp://h/?queue=a&queue=b", "queue", "queue needs exactly one value"),
        ("amqp:///?queue=q", "queue", "names no host"),
        ("amqp://h:port/?queue=q", "queue", "port"),
        ("mlambda://", "queue", "a platform queue is mlambda://NAME"),
        ("mlambda://a/b", "queue", "a platform queue is mlambda://NAME"),
    ],
)
def test_a_bad_source_says_what_is_wrong(url, kind, says):
    with pytest.raises(InvalidSpec) as raised:
        parse_source(url, kind, WHERE)
    assert says in str(raised.value)
    assert str(raised.value).startswith(f"{WHERE}.source")


def test_a_password_never_shows():
    url = "amqp://app:s3cret@broker:5672/%2F?queue=q"
    assert redact(url) == "amqp://app:***@broker:5672/%2F?queue=q"
    assert parse_source(url, "queue", WHERE).redacted == redact(url)
    with pytest.raises(InvalidSpec) as raised:
        parse_source("amqp://app:s3cret@broker/?queue=q&x=1", "queue", WHERE)
    assert "s3cret" not in str(raised.value) and "***" in str(raised.value)
    assert redact("redis://h:6379/0?stream=s") == "redis://h:6379/0?stream=s"


def test_defaults_follow_lambdas():
    queue, _ = parse_trigger({"type": "queue", "source": "mlambda://q"}, WHERE)
    assert (queue.size, queue.receive_limit, queue.enabled) == (10, None, True)
    assert queue.report_batch_item_failures is False
    with_dlq, _ = parse_trigger(
        {"type": "queue", "source": "mlambda://q", "dead_letter": "mlambda://q-dlq"}, WHERE
    )
    assert with_dlq.receive_limit == 5
    stream, _ = parse_trigger({"type": "stream", "source": "redis://h?stream=s"}, WHERE)
    assert (stream.size, stream.starting_position, stream.maximum_retry_attempts) == (
        100,
        "latest",
        -1,
    )


def test_the_issues_example_is_accepted():
    queue, source = parse_trigger(
        {
            "type": "queue",
            "source": "amqp://guest:guest@127.0.0.1:5672/%2F?queue=orders",
            "batch_size": 100,
            "max_batching_window_s": 0.5,
            "report_batch_item_failures": True,
            "max_receive_count": 5,
            "dead_letter": "mlambda://orders-dlq",
            "max_concurrency": 4,
        },
        WHERE,
    )
    assert (queue.size, queue.receive_limit, source.name) == (100, 5, "orders")
    stream, _ = parse_trigger(
        {
            "type": "stream",
            "source": "redis://127.0.0.1:6379/0?stream=clicks",
            "starting_position": "trim_horizon",
            "batch_size": 100,
            "parallelization_factor": 1,
            "bisect_batch_on_function_error": True,
            "maximum_retry_attempts": 3,
            "maximum_record_age_s": 3600,
            "on_failure": "mlambda://clicks-failed",
        },
        WHERE,
    )
    assert stream.bisect_batch_on_function_error and stream.maximum_retry_attempts == 3


QUEUE = {"type": "queue", "source": "mlambda://q"}
STREAM = {"type": "stream", "source": "nats://h?stream=S"}
OBJECT = {"type": "object", "source": "s3://photos/in/"}
SCHEDULE = {"type": "schedule", "schedule": "rate(5 minutes)"}
RULE = {"type": "rule", "pattern": {"source": ["shop.orders"]}}


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ("queue", "must be a table"),
        ({"source": "mlambda://q"}, "type must be one of queue, stream, object, schedule, rule"),
        ({"type": "topic", "source": "mlambda://q"}, "type must be one of queue, stream"),
        ({"type": "queue"}, "source is required"),
        ({**QUEUE, "batchsize": 5}, "unknown field batchsize (did you mean batch_size?)"),
        ({**QUEUE, "batch_size": 0}, "batch_size must be between 1 and 10000, got 0"),
        ({**QUEUE, "batch_size": 10001}, "batch_size must be between 1 and 10000"),
        ({**QUEUE, "batch_size": "ten"}, "batch_size: expected int"),
        ({**QUEUE, "max_batching_window_s": 301}, "max_batching_window_s must be between 0"),
        ({**QUEUE, "max_concurrency": 0}, "max_concurrency must be between 1 and 1000"),
        ({**QUEUE, "max_receive_count": 3}, "max_receive_count needs a dead_letter"),
        ({**QUEUE, "dead_letter": "orders-dlq"}, "dead_letter must be 'mlambda://QUEUE'"),
        ({**QUEUE, "dead_letter": "function:f"}, "dead_letter must be 'mlambda://QUEUE'"),
        ({**QUEUE, "starting_position": "latest"}, "applies to type = 'stream' triggers only"),
        ({**STREAM, "dead_letter": "mlambda://d"}, "applies to type = 'queue' triggers only"),
        ({**STREAM, "starting_position": "oldest"}, "starting_position must be one of"),
        ({**STREAM, "starting_position": "at_timestamp"}, "starting_position_timestamp goes"),
        (
            {**STREAM, "starting_position_timestamp": 1700000000.0},
            "starting_position_timestamp goes",
        ),
        ({**STREAM, "parallelization_factor": 11}, "parallelization_factor must be between 1"),
        ({**STREAM, "maximum_retry_attempts": -2}, "maximum_retry_attempts must be between -1"),
        ({**STREAM, "maximum_record_age_s": 30}, "maximum_record_age_s must be -1 (no limit)"),
        ({**STREAM, "on_failure": "https://example.com"}, "on_failure must be 'mlambda://QUEUE'"),
        ({**STREAM, "on_failure": "mlambda://a/b"}, "a platform queue is mlambda://NAME"),
        ({"type": "object"}, "source is required"),
        ({**OBJECT, "events": ["updated"]}, "events must list one or both of created, removed"),
        ({**OBJECT, "events": []}, "events must list one or both"),
        ({**OBJECT, "events": ["created", "created"]}, "events names an event twice"),
        ({**OBJECT, "mode": "push"}, "mode must be 'watch'"),
        ({**OBJECT, "access_key_id": "AK"}, "access_key_id and secret_access_key go together"),
        ({**OBJECT, "endpoint_url": "127.0.0.1:9000"}, "endpoint_url must be an http://"),
        ({**OBJECT, "batch_size": 5}, "batch_size applies to type = 'queue' or 'stream' triggers"),
        ({**OBJECT, "poll_interval_s": 0}, "poll_interval_s must be between 0.1 and 3600"),
        ({**OBJECT, "source": "s3://B/in/"}, "s3://BUCKET/PREFIX, BUCKET 3-63 lowercase"),
        ({**OBJECT, "source": "s3://photos/in/?x=1"}, "takes no query"),
        ({**OBJECT, "source": "file://drop/"}, "a folder is file:///ABSOLUTE/PATH/"),
        ({**OBJECT, "source": "file:///srv/drop/", "mode": "notify"}, "a folder (file://) is"),
        ({**OBJECT, "source": "mlambda://q"}, "mlambda serves type = 'queue' triggers"),
        ({"type": "schedule"}, "schedule is required (rate(5 minutes) or cron("),
        ({**SCHEDULE, "schedule": "every 5 minutes"}, "triggers[0].schedule"),
        ({**SCHEDULE, "timezone": "Mars/Olympus"}, "triggers[0].timezone"),
        ({**SCHEDULE, "catch_up": "all"}, "catch_up must be 'none'"),
        ({**SCHEDULE, "source": "mlambda://q"}, "source applies to type = 'queue' or 'stream'"),
        ({"type": "rule"}, "pattern is required (an EventBridge event pattern)"),
        ({"type": "rule", "pattern": {}}, "triggers[0].pattern"),
        ({"type": "rule", "pattern": {"source": "shop"}}, "triggers[0].pattern.source"),
        ({**RULE, "schedule": "rate(1 minute)"}, "schedule applies to type = 'schedule'"),
        ({"type": "rule", "pattern": "{source"}, "a pattern given as text must be JSON"),
        ({"type": "rule", "pattern": '"shop"'}, "triggers[0].pattern"),
    ],
)
def test_each_mistake_is_named(table, says):
    with pytest.raises(InvalidSpec) as raised:
        parse_trigger(table, WHERE)
    assert says in str(raised.value)
    assert str(raised.value).startswith(WHERE)


@pytest.mark.parametrize(
    "table",
    [
        {**STREAM, "starting_position": "at_timestamp", "starting_position_timestamp": 1.7e9},
        {**STREAM, "on_failure": "function:audit"},
        {**STREAM, "maximum_record_age_s": 60},
        {**QUEUE, "enabled": False, "max_concurrency": 1},
        {**OBJECT, "suffix": ".jpg", "events": ["created", "removed"], "mode": "notify"},
        {
            **OBJECT,
            "endpoint_url": "http://127.0.0.1:9000",
            "access_key_id": "a",
            "secret_access_key": "s",
            "region": "eu-west-1",
            "poll_interval_s": 0.5,
        },
        {**OBJECT, "source": "file:///srv/drop/"},
        {
            **SCHEDULE,
            "schedule": "cron(0 2 * * ? *)",
            "timezone": "Europe/Berlin",
            "input": {"job": "nightly"},
            "catch_up": "latest",
        },
        {**SCHEDULE, "schedule": "rate(10 seconds)"},
        {
            "type": "rule",
            "pattern": {
                "source": ["shop.orders"],
                "detail": {"amount": [{"numeric": [">", 1000]}]},
            },
        },
    ],
)
def test_valid_settings_are_accepted(table):
    spec, _ = parse_trigger(table, WHERE)
    assert spec.type == table["type"]


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://photos/in/", "photos", "in/"),
        ("s3://photos", "photos", ""),
        ("s3://my.bucket-1/a/b%20c/", "my.bucket-1", "a/b c/"),
        ("file:///srv/drop/", "/srv/drop", ""),
        ("file:///", "/", ""),
    ],
)
def test_object_sources_name_a_bucket_and_prefix_or_a_folder(url, bucket, prefix):
    source = parse_source(url, "object", WHERE)
    assert (source.name, source.options["prefix"]) == (bucket, prefix)


def test_two_schedules_with_the_same_expression_and_other_inputs_are_two_triggers():
    first, _ = parse_trigger({**SCHEDULE, "input": {"job": "a"}}, WHERE)
    second, _ = parse_trigger({**SCHEDULE, "input": {"job": "b"}}, WHERE)
    assert first.identity != second.identity
    again, _ = parse_trigger({**SCHEDULE, "input": {"job": "a"}, "catch_up": "latest"}, WHERE)
    assert again.identity == first.identity  # a setting changed: the same trigger


def test_a_rule_pattern_may_be_given_as_eventbridges_json_text():
    spec, _ = parse_trigger({"type": "rule", "pattern": '{"source": ["shop.orders"]}'}, WHERE)
    assert spec.pattern == {"source": ["shop.orders"]}

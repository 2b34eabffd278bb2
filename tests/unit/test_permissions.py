"""Scopes and the route table: what each route needs, and which scopes cover it (pure)."""

from __future__ import annotations

import re

import pytest
from starlette.routing import Route

from mlambda.errors import InvalidRequest
from mlambda.gateway.app import routes
from mlambda.gateway.openapi import document
from mlambda.security.keys import ANY_ACTION, IN_BODY, Need, Scope, allows, parse_token, token
from mlambda.security.permissions import RULES, function_name, function_ref, need_for, rule_for

# What each scope may do to a function named "fraud" (the OpenAPI walk below fills names in).
COVERS_FRAUD = {
    "admin": {"admin", "read", "deploy", "invoke", "events"},
    "read": {"read"},
    "deploy": {"deploy"},
    "deploy:fraud*": {"deploy"},
    "invoke": {"invoke"},
    "invoke:fraud*": {"invoke"},
    "invoke:hello": set(),
    "events": {"events"},
}
SCOPES = list(COVERS_FRAUD)


@pytest.mark.parametrize(
    ("text", "scope"),
    [
        ("admin", Scope("admin")),
        ("read", Scope("read")),
        ("invoke", Scope("invoke", "*")),
        ("invoke:fraud*", Scope("invoke", "fraud*")),
        ("deploy:team-[ab]?", Scope("deploy", "team-[ab]?")),
        ("events", Scope("events")),
    ],
)
def test_a_scope_is_an_action_and_an_optional_function_pattern(text, scope):
    assert Scope.parse(text) == scope
    assert str(scope) == text


@pytest.mark.parametrize(
    "text",
    [
        "root",
        "read:x",
        "admin:*",
        "events:x",
        "invoke:",
        "invoke:a b",
        "invoke:../x",
        "invoke:" + "a" * 65,
    ],
)
def test_a_bad_scope_is_refused_with_what_is_allowed(text):
    with pytest.raises(InvalidRequest, match="scope"):
        Scope.parse(text)


@pytest.mark.parametrize(
    ("scopes", "need", "allowed"),
    [
        (["invoke:fraud*"], Need("invoke", "fraud"), True),
        (["invoke:fraud*"], Need("invoke", "fraud-eu"), True),
        (["invoke:fraud*"], Need("invoke", "hello"), False),
        (["invoke:fraud*"], Need("invoke", "Fraud"), False),  # names are case-sensitive
        (["invoke:fraud*"], Need("deploy", "fraud"), False),
        (["invoke:fraud*"], Need("read"), False),
        (["invoke"], Need("invoke", "anything"), True),
        (["deploy:fraud"], Need("deploy", "fraud"), True),
        (["deploy:fraud"], Need("deploy", "fraud2"), False),
        (["deploy"], Need("invoke", "fraud"), False),  # deploying is not invoking
        (["read"], Need("read"), True),
        (["read"], Need("admin"), False),
        (["read", "invoke:a"], Need("invoke", "a"), True),
        (["admin"], Need("invoke", "x"), True),
        (["admin"], Need("admin"), True),
        (["deploy:team-*"], Need("deploy", IN_BODY), True),  # the route checks the name
        (["invoke"], Need("deploy", IN_BODY), False),
        (["read"], Need("deploy", IN_BODY), False),
    ],
)
def test_scopes_cover_needs(scopes, need, allowed):
    assert allows(tuple(Scope.parse(s) for s in scopes), need) is allowed


@pytest.mark.parametrize(
    ("method", "path", "need"),
    [
        ("GET", "/healthz", None),
        ("GET", "/v2/health/ready", None),
        ("GET", "/metrics", Need("read")),
        ("GET", "/v1/functions", Need("read")),
        ("GET", "/v1/functions/fraud", Need("read", "fraud")),
        ("PUT", "/v1/functions/fraud", Need("deploy", "fraud")),
        ("DELETE", "/v1/functions/fraud", Need("deploy", "fraud")),
        ("POST", "/v1/functions/fraud/invoke", Need("invoke", "fraud")),
        ("GET", "/v1/functions/fraud/logs", Need("read", "fraud")),
        ("POST", "/2015-03-31/functions/fraud/invocations", Need("invoke", "fraud")),
        ("POST", "/2015-03-31/functions/fraud:prod/invocations", Need("invoke", "fraud")),
        (
            "POST",
            "/2015-03-31/functions/arn:aws:lambda:us-east-1:1:function:fraud:2/invocations",
            Need("invoke", "fraud"),
        ),
        ("POST", "/v2/models/fraud/infer", Need("invoke", "fraud")),
        ("POST", "/v2/models/fraud/versions/1/infer", Need("invoke", "fraud")),
        ("GET", "/v2/models/fraud", Need("read", "fraud")),
        ("PATCH", "/fn/fraud/a/b", Need("invoke", "fraud")),
        ("GET", "/fn/fraud", Need("invoke", "fraud")),
        ("GET", "/v1/functions/fraud/versions", Need("read", "fraud")),
        ("POST", "/v1/functions/fraud/versions", Need("deploy", "fraud")),
        ("DELETE", "/v1/functions/fraud/versions/2", Need("deploy", "fraud")),
        ("GET", "/v1/functions/fraud/aliases/live", Need("read", "fraud")),
        ("PUT", "/v1/functions/fraud/aliases/live", Need("deploy", "fraud")),
        ("POST", "/v1/functions/fraud/aliases/live/rollback", Need("deploy", "fraud")),
        ("POST", "/v1/functions/fraud:live/invoke", Need("invoke", "fraud")),
        ("GET", "/fn/fraud:live/a", Need("invoke", "fraud")),
        ("POST", "/2015-03-31/functions", Need("deploy", IN_BODY)),
        ("GET", "/2015-03-31/functions", Need("read")),
        ("PUT", "/2015-03-31/functions/fraud/code", Need("deploy", "fraud")),
        ("PUT", "/2015-03-31/functions/fraud:live/configuration", Need("deploy", "fraud")),
        ("PUT", "/2015-03-31/functions/fraud/aliases/live", Need("deploy", "fraud")),
        ("POST", "/2021-10-31/functions/fraud/url", Need("deploy", "fraud")),
        ("GET", "/v1/code/sha256:ab", None),
        ("POST", "/v1/keys", Need("admin")),
        ("DELETE", "/v1/keys/MLK123", Need("admin")),
        ("GET", "/v1/audit", Need("admin")),
        ("POST", "/v1/master-key/rotate", Need("admin")),
        ("GET", "/nothing/here", Need("read")),  # unknown: still needs a key
        ("POST", "/healthz", Need("read")),  # only GET is open
        ("POST", "/", Need(ANY_ACTION, IN_BODY)),  # SQS: the route checks the operation
        ("GET", "/v1/functions/fraud/triggers", Need("read", "fraud")),
        ("POST", "/v1/functions/fraud/triggers", Need("deploy", "fraud")),
        ("DELETE", "/v1/triggers/abc", Need("deploy", IN_BODY)),  # the route finds the function
    ],
)
def test_each_route_needs_its_scope(method, path, need):
    assert need_for(method, path) == need


def test_every_route_of_the_app_has_a_rule():
    ruled = {(rule.method, rule.path) for rule in RULES}
    for route in routes():
        assert isinstance(route, Route)
        path = re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", route.path)
        methods = route.methods or set()
        if path.startswith("/console"):  # the console's pages check their own session
            assert all(need_for(m, path) is None for m in methods), path
            continue
        for method in methods - {"HEAD"}:
            assert (method, path) in ruled or ("*", path) in ruled, (method, path)


def test_every_route_in_the_openapi_document_needs_what_the_table_says_for_every_scope():
    for path, item in document()["paths"].items():
        concrete = (
            path.replace("{name}", "fraud")
            .replace("{version}", "1")
            .replace("{path}", "a")
            .replace("{key}", "MLK1")
            .replace("{alias}", "live")
            .replace("{digest}", "sha256:ab")
        )
        for method in (m for m in item if m != "parameters"):
            need = need_for(method.upper(), concrete)
            open_route = item[method].get("security") == []
            assert (need is None) is open_route, (method, path)
            for scope in SCOPES:
                granted = need is None or allows((Scope.parse(scope),), need)
                # The SQS protocol lets any key in; the route asks by operation and queue. A
                # route that reads its function from the body (a job) lets in any key of the
                # action, and checks the name it reads.
                in_body = need is not None and need.function == IN_BODY
                expected = (
                    need is None
                    or need.action == ANY_ACTION
                    or need.action in COVERS_FRAUD[scope]
                    or (in_body and Scope.parse(scope).action == need.action)
                )
                assert granted == expected, (method, path, scope)


def test_rules_are_unique():
    keys = [(rule.method, rule.path) for rule in RULES]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    ("raw", "name", "qualifier"),
    [
        ("fraud", "fraud", ""),
        ("fraud:prod", "fraud", "prod"),
        ("fraud:$LATEST", "fraud", "$LATEST"),
        ("arn:aws:lambda:eu-west-1:123456789012:function:fraud", "fraud", ""),
        ("arn:aws:lambda:eu-west-1:123456789012:function:fraud:7", "fraud", "7"),
        ("arn%3Aaws%3Alambda%3Aeu-west-1%3A1%3Afunction%3Afraud", "fraud", ""),
        ("arn:aws:lambda:eu-west-1", "arn:aws:lambda:eu-west-1", ""),
    ],
)
def test_function_ref_takes_names_qualifiers_and_arns(raw, name, qualifier):
    assert function_ref(raw) == (name, qualifier)
    assert function_name(raw) == name


def test_tokens_round_trip_and_the_admin_key_is_not_a_token():
    assert parse_token(token("MLKABCDEFGHIJKLMNOPQ", "s_e-c")) == ("MLKABCDEFGHIJKLMNOPQ", "s_e-c")
    assert parse_token("mlk_" + "x" * 43) is None
    assert parse_token("mlk_MLKSHORT_x") is None


def test_rule_for_names_the_function_it_acts_on():
    rule, function = rule_for("PUT", "/v1/functions/fraud")
    assert (rule.audit, function) == ("function.deploy", "fraud")


def test_every_route_of_the_app_is_in_the_openapi_document_with_its_methods():
    paths = document()["paths"]
    for route in routes():
        assert isinstance(route, Route)
        path = re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", route.path)
        if path.startswith("/console"):  # the console's HTML pages are not API operations
            continue
        assert path in paths, path
        for method in (route.methods or set()) - {"HEAD", "OPTIONS"}:
            assert method.lower() in paths[path], (method, path)


def test_every_guarded_operation_documents_401_403_and_429_with_retry_after():
    for path, item in document()["paths"].items():
        for method, operation in item.items():
            if method == "parameters" or operation.get("security") == []:
                continue
            responses = operation["responses"]
            assert {"401", "403", "429"} <= set(responses), (method, path)
            assert "Retry-After" in responses["429"]["headers"]


@pytest.mark.parametrize(
    ("scopes", "need", "allowed"),
    [
        (("read",), Need(ANY_ACTION, IN_BODY), True),
        (("invoke:orders-*",), Need(ANY_ACTION, IN_BODY), True),
        ((), Need(ANY_ACTION, IN_BODY), False),
        (("read",), Need(ANY_ACTION, "fraud"), False),  # only a route that checks itself
    ],
)
def test_a_route_that_checks_the_action_itself_lets_any_key_in(scopes, need, allowed):
    assert allows(tuple(Scope.parse(s) for s in scopes), need) is allowed

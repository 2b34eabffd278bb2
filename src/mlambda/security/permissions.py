"""What each route needs (pure): the scope, the function it acts on, and whether it is a
control-plane call the audit log records. One table, so every route is checked the same way and
a test can walk it against the OpenAPI document."""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import unquote

from mlambda.security.keys import ANY_ACTION, IN_BODY, Need


@dataclasses.dataclass(frozen=True)
class Rule:
    method: str
    # A route template: {name} is a function (or a platform queue: a scope's pattern names
    # both), {path} the rest of a function URL.
    path: str
    action: str  # "open" (no key), "read", "invoke", "deploy" or "admin"
    # The audit log's name for a control-plane call; "" for calls it does not record.
    audit: str = ""
    # The function is named in the body (CreateFunction): any scope of the action passes
    # here, and the route checks the name (gateway.auth.require).
    named_in_body: bool = False

    @property
    def pattern(self) -> re.Pattern[str]:
        regex = re.escape(self.path).replace(r"\{path\}", "(?P<path>.*)")
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", regex)
        return re.compile(regex)


ANY = "*"
FN = "/v1/functions/{name}"
V2 = "/v2/models/{name}"
EIC = "/2019-09-25/functions/{name}/event-invoke-config"
LF = "/2015-03-31/functions"
LFN = f"{LF}/{{name}}"
LURL = "/2021-10-31/functions/{name}/url"
PC = "/2019-09-30/functions/{name}/provisioned-concurrency"
V2V = "/v2/models/{name}/versions/{version}"
RULES = (
    Rule("GET", "/healthz", "open"),
    # The web console checks its session cookie itself (gateway/console/signin.py).
    Rule("GET", "/console", "open"),
    Rule(ANY, "/console/{path}", "open"),
    Rule("GET", "/v2/health/live", "open"),
    Rule("GET", "/v2/health/ready", "open"),
    Rule("GET", "/metrics", "read"),
    Rule("GET", "/openapi.json", "read"),
    Rule("GET", "/v1/functions", "read"),
    Rule("GET", FN, "read"),
    Rule("PUT", FN, "deploy", "function.deploy"),
    Rule("DELETE", FN, "deploy", "function.delete"),
    Rule("POST", f"{FN}/invoke", "invoke"),
    Rule("GET", f"{FN}/logs", "read"),
    Rule("GET", f"{FN}/versions", "read"),
    Rule("POST", f"{FN}/versions", "deploy", "function.publish"),
    Rule("DELETE", f"{FN}/versions/{{version}}", "deploy", "function.version.delete"),
    Rule("GET", f"{FN}/aliases", "read"),
    Rule("GET", f"{FN}/aliases/{{alias}}", "read"),
    Rule("PUT", f"{FN}/aliases/{{alias}}", "deploy", "function.alias.put"),
    Rule("DELETE", f"{FN}/aliases/{{alias}}", "deploy", "function.alias.delete"),
    Rule("POST", f"{FN}/aliases/{{alias}}/rollback", "deploy", "function.alias.rollback"),
    Rule("GET", f"{FN}/concurrency", "read"),
    Rule("PUT", f"{FN}/concurrency", "deploy", "function.concurrency.put"),
    Rule("PUT", f"{FN}/provisioned/{{qualifier}}", "deploy", "function.provisioned.put"),
    Rule("DELETE", f"{FN}/provisioned/{{qualifier}}", "deploy", "function.provisioned.delete"),
    Rule("GET", f"{FN}/invocations", "read"),
    Rule("GET", f"{FN}/dead-letters", "read"),
    Rule("POST", f"{FN}/invocations/{{id}}/replay", "invoke"),
    Rule("GET", "/v1/invocations", "read"),
    Rule("GET", "/v1/invocations/{id}", "read"),
    Rule("GET", f"{FN}/triggers", "read"),
    Rule("POST", f"{FN}/triggers", "deploy", "trigger.create"),
    # The function a trigger feeds is looked up by its id (gateway/triggers.py checks it).
    Rule("GET", "/v1/triggers/{id}", "read", named_in_body=True),
    Rule("DELETE", "/v1/triggers/{id}", "deploy", "trigger.delete", named_in_body=True),
    Rule("POST", "/v1/triggers/{id}/enable", "deploy", "trigger.enable", named_in_body=True),
    Rule("POST", "/v1/triggers/{id}/disable", "deploy", "trigger.disable", named_in_body=True),
    Rule("GET", "/v1/queues", "read"),
    # The SQS JSON protocol: the operation is in a header, the queue in the body; any key may
    # call, and the route asks read or invoke of the queue it names (gateway/sqs.py).
    Rule("POST", "/", ANY_ACTION, named_in_body=True),
    Rule("POST", "/v1/events", "events"),
    Rule("POST", "/v1/events/s3", "events"),
    Rule("POST", "/v1/jobs", "invoke", "job.create", named_in_body=True),
    Rule("GET", "/v1/jobs", "read"),
    Rule("GET", "/v1/cost", "read"),
    # An alarm's function is in its body (PUT) or its rule (gateway/alarms.py checks it).
    Rule("GET", "/v1/alarms", "read"),
    Rule("GET", "/v1/alarms/{alarm}", "read", named_in_body=True),
    Rule("PUT", "/v1/alarms/{alarm}", "deploy", "alarm.put", named_in_body=True),
    Rule("DELETE", "/v1/alarms/{alarm}", "deploy", "alarm.delete", named_in_body=True),
    Rule("GET", f"{FN}/metrics", "read"),
    Rule("GET", "/v1/jobs/{id}", "read"),
    Rule("POST", "/v1/jobs/{id}/cancel", "invoke", "job.cancel", named_in_body=True),
    Rule("POST", "/v1/queues/{name}/messages", "invoke"),
    Rule("POST", "/v1/queues/{name}/messages/receive", "invoke"),
    Rule("DELETE", "/v1/queues/{name}/messages/{receipt}", "invoke"),
    Rule("GET", "/v1/instances", "read"),
    Rule("GET", "/v1/keys", "admin"),
    Rule("POST", "/v1/keys", "admin", "keys.create"),
    Rule("DELETE", "/v1/keys/{key}", "admin", "keys.revoke"),
    Rule("POST", "/v1/master-key/rotate", "admin", "master_key.rotate"),
    Rule("GET", "/v1/audit", "admin"),
    Rule("POST", "/2015-03-31/functions/{name}/invocations", "invoke"),
    Rule("GET", LF, "read"),
    Rule("POST", LF, "deploy", "function.create", named_in_body=True),
    Rule("GET", LFN, "read"),
    Rule("DELETE", LFN, "deploy", "function.delete"),
    Rule("GET", f"{LFN}/configuration", "read"),
    Rule("PUT", f"{LFN}/configuration", "deploy", "function.configure"),
    Rule("PUT", f"{LFN}/code", "deploy", "function.deploy"),
    Rule("GET", f"{LFN}/versions", "read"),
    Rule("POST", f"{LFN}/versions", "deploy", "function.publish"),
    Rule("GET", f"{LFN}/aliases", "read"),
    Rule("POST", f"{LFN}/aliases", "deploy", "function.alias.put"),
    Rule("GET", f"{LFN}/aliases/{{alias}}", "read"),
    Rule("PUT", f"{LFN}/aliases/{{alias}}", "deploy", "function.alias.put"),
    Rule("DELETE", f"{LFN}/aliases/{{alias}}", "deploy", "function.alias.delete"),
    Rule("GET", LURL, "read"),
    Rule("POST", LURL, "deploy", "function.url.put"),
    Rule("PUT", LURL, "deploy", "function.url.put"),
    Rule("DELETE", LURL, "deploy", "function.url.delete"),
    Rule("GET", "/2016-08-19/account-settings", "read"),
    Rule("PUT", "/2017-10-31/functions/{name}/concurrency", "deploy", "function.concurrency.put"),
    Rule(
        "DELETE",
        "/2017-10-31/functions/{name}/concurrency",
        "deploy",
        "function.concurrency.delete",
    ),
    Rule("GET", "/2019-09-30/functions/{name}/concurrency", "read"),
    Rule("GET", PC, "read"),
    Rule("PUT", PC, "deploy", "function.provisioned.put"),
    Rule("DELETE", PC, "deploy", "function.provisioned.delete"),
    # GetFunction's Code.Location: the link's signature is its key (lambda_api/code.py).
    Rule("GET", "/v1/code/{digest}", "open"),
    Rule("GET", EIC, "read"),
    Rule("GET", f"{EIC}/list", "read"),
    Rule("PUT", EIC, "deploy", "function.event_invoke_config.put"),
    Rule("POST", EIC, "deploy", "function.event_invoke_config.update"),
    Rule("DELETE", EIC, "deploy", "function.event_invoke_config.delete"),
    Rule("GET", "/v2", "read"),
    Rule("GET", V2, "read"),
    Rule("GET", f"{V2}/ready", "read"),
    Rule("POST", f"{V2}/infer", "invoke"),
    Rule("GET", V2V, "read"),
    Rule("GET", f"{V2V}/ready", "read"),
    Rule("POST", f"{V2V}/infer", "invoke"),
    Rule(ANY, "/fn/{name}", "invoke"),
    Rule(ANY, "/fn/{name}/{path}", "invoke"),
)
_COMPILED = [(rule, rule.pattern) for rule in RULES]
# What an unknown route needs: a key of any kind, so a probe without one learns nothing.
UNKNOWN = Rule(ANY, "", "read")


def rule_for(method: str, path: str) -> tuple[Rule, str]:
    """The rule for a request, and the function it names ("" for none)."""
    for rule, pattern in _COMPILED:
        match = pattern.fullmatch(path)
        if match and rule.method in (method, ANY, "GET" if method == "HEAD" else ""):
            name = match.groupdict().get("name") or ""
            return rule, function_name(name)
    return UNKNOWN, ""


def need_for(method: str, path: str) -> Need | None:
    """What a request needs; None for an open route."""
    rule, function = rule_for(method, path)
    if rule.action == "open":
        return None
    return need_of(rule, function)


def need_of(rule: Rule, function: str) -> Need:
    return Need(rule.action, IN_BODY if rule.named_in_body else function)


def function_ref(raw: str) -> tuple[str, str]:
    """A name, ``name:qualifier``, or an ARN ``arn:aws:lambda:REGION:ACCOUNT:function:NAME[:Q]``
    (the Lambda API takes all three) -> (the function's name, the qualifier or "")."""
    raw = unquote(raw)
    if raw.startswith("arn:"):
        parts = raw.split(":")
        if len(parts) > 6:
            return parts[6], ":".join(parts[7:])
        return raw, ""
    name, _, qualifier = raw.partition(":")
    return name, qualifier


def function_name(raw: str) -> str:
    return function_ref(raw)[0]

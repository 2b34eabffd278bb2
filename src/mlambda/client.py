"""HTTP client for the CLI (and scripts); maps error responses back to mlambda errors."""

from __future__ import annotations

import builtins
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from mlambda import errors

# Invocations may take as long as a function's timeout plus its init: no read timeout.
TIMEOUT = httpx.Timeout(10.0, read=None)


class Client:
    def __init__(self, url: str, api_key: str | None = None, ca_file: Path | None = None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        # https: the certificate is always verified, against ca_file when one is given.
        verify = ssl.create_default_context()
        if ca_file is not None:
            verify.load_verify_locations(cafile=str(ca_file))
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=TIMEOUT, verify=verify
        )

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        self._raise_for_error(response)
        return response

    def _unreachable(self, exc: Exception) -> errors.ConnectionFailed:
        return errors.ConnectionFailed(
            f"cannot reach mlambda at {self.url} ({exc}); is `mlambda serve` running? "
            "(set --url or MLAMBDA_URL)"
        )

    @staticmethod
    def _raise_for_error(response: httpx.Response) -> None:
        if response.is_success:
            return
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = {"errorMessage": response.text or response.reason_phrase}
        if not isinstance(body, dict):
            body = {"errorMessage": str(body)}
        function_error = errors.FUNCTION_ERROR_HEADER in response.headers
        raise errors.from_response(response.status_code, body, function_error)

    def deploy(
        self,
        name: str,
        archive: bytes,
        publish: bool = False,
        alias: str | None = None,
        description: str = "",
    ) -> dict[str, Any]:
        params: dict[str, str] = {}
        if publish or alias:
            params["publish"] = "1"
        if alias:
            params["alias"] = alias
        if description:
            params["description"] = description
        response = self._request(
            "PUT",
            f"/v1/functions/{name}",
            params=params,
            content=archive,
            headers={"Content-Type": "application/gzip"},
        )
        return response.json()

    def publish(self, name: str, description: str = "") -> dict[str, Any]:
        body = {"description": description}
        return self._request("POST", f"/v1/functions/{name}/versions", json=body).json()

    def versions(self, name: str) -> builtins.list[dict[str, Any]]:
        return self._request("GET", f"/v1/functions/{name}/versions").json()["versions"]

    def delete_version(self, name: str, version: str) -> dict[str, Any]:
        return self._request("DELETE", f"/v1/functions/{name}/versions/{version}").json()

    def aliases(self, name: str) -> builtins.list[dict[str, Any]]:
        return self._request("GET", f"/v1/functions/{name}/aliases").json()["aliases"]

    def alias(self, name: str, alias: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/functions/{name}/aliases/{alias}").json()

    def set_alias(
        self,
        name: str,
        alias: str,
        version: str,
        weights: dict[str, float] | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"version": version, "weights": weights or {}}
        if description is not None:
            body["description"] = description
        return self._request("PUT", f"/v1/functions/{name}/aliases/{alias}", json=body).json()

    def rollback(self, name: str, alias: str) -> dict[str, Any]:
        return self._request("POST", f"/v1/functions/{name}/aliases/{alias}/rollback").json()

    def delete_alias(self, name: str, alias: str) -> None:
        self._request("DELETE", f"/v1/functions/{name}/aliases/{alias}")

    def concurrency(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/functions/{name}/concurrency").json()

    def set_reserved(self, name: str, reserved: int | None) -> dict[str, Any]:
        body = {"reserved": reserved}
        return self._request("PUT", f"/v1/functions/{name}/concurrency", json=body).json()

    def set_provisioned(self, name: str, qualifier: str, requested: int | None) -> None:
        path = f"/v1/functions/{name}/provisioned/{qualifier}"
        if requested is None:
            self._request("DELETE", path)
        else:
            self._request("PUT", path, json={"requested": requested})

    def invoke(self, name: str, payload: bytes) -> bytes:
        response = self._request(
            "POST",
            f"/v1/functions/{name}/invoke",
            content=payload,
            headers={"Content-Type": "application/json"},
        )
        return response.content

    def invoke_async(self, name: str, payload: bytes) -> dict[str, Any]:
        response = self._request(
            "POST",
            f"/v1/functions/{name}/invoke",
            params={"mode": "async"},
            content=payload,
            headers={"Content-Type": "application/json"},
        )
        return response.json()

    def invocation(self, invocation_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/invocations/{invocation_id}").json()

    def invocations(
        self, name: str | None = None, state: str | None = None, limit: int = 100
    ) -> builtins.list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if state:
            params["state"] = state
        path = f"/v1/functions/{name}/invocations" if name else "/v1/invocations"
        return self._request("GET", path, params=params).json()["invocations"]

    def replay(self, name: str, invocation_id: str) -> dict[str, Any]:
        path = f"/v1/functions/{name}/invocations/{invocation_id}/replay"
        return self._request("POST", path).json()

    def queues(self) -> builtins.list[dict[str, Any]]:
        return self._request("GET", "/v1/queues").json()["queues"]

    def send_message(self, queue: str, body: bytes) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        return self._request(
            "POST", f"/v1/queues/{queue}/messages", content=body, headers=headers
        ).json()

    def receive_messages(
        self, queue: str, most: int = 1, visibility_s: int = 30
    ) -> builtins.list[dict[str, Any]]:
        params = {"max_messages": str(most), "visibility_timeout_s": str(visibility_s)}
        path = f"/v1/queues/{queue}/messages/receive"
        return self._request("POST", path, params=params).json()["messages"]

    def delete_message(self, queue: str, receipt: str) -> None:
        self._request("DELETE", f"/v1/queues/{queue}/messages/{receipt}")

    def triggers(self, name: str) -> builtins.list[dict[str, Any]]:
        return self._request("GET", f"/v1/functions/{name}/triggers").json()["triggers"]

    def add_trigger(self, name: str, settings: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", f"/v1/functions/{name}/triggers", json=settings).json()

    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", "/v1/jobs", json=body).json()

    def jobs(self) -> builtins.list[dict[str, Any]]:
        return self._request("GET", "/v1/jobs").json()["jobs"]

    def job(self, job_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/jobs/{job_id}").json()

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        return self._request("POST", f"/v1/jobs/{job_id}/cancel").json()

    def cost(self, since: str, by: str) -> dict[str, Any]:
        return self._request("GET", "/v1/cost", params={"since": since, "by": by}).json()

    def alarms(self) -> builtins.list[dict[str, Any]]:
        return self._request("GET", "/v1/alarms").json()["alarms"]

    def alarm(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/alarms/{name}").json()

    def put_alarm(self, name: str, rule: dict[str, Any]) -> dict[str, Any]:
        return self._request("PUT", f"/v1/alarms/{name}", json=rule).json()

    def delete_alarm(self, name: str) -> None:
        self._request("DELETE", f"/v1/alarms/{name}")

    def metrics(
        self, name: str, metric: str, statistic: str, period: int, since: str
    ) -> dict[str, Any]:
        params = {"metric": metric, "statistic": statistic, "period": period, "since": since}
        return self._request("GET", f"/v1/functions/{name}/metrics", params=params).json()

    def put_events(self, entries: builtins.list[dict[str, Any]]) -> dict[str, Any]:
        return self._request("POST", "/v1/events", json={"Entries": entries}).json()

    def trigger(self, trigger_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/triggers/{trigger_id}").json()

    def set_trigger_enabled(self, trigger_id: str, enabled: bool) -> dict[str, Any]:
        action = "enable" if enabled else "disable"
        return self._request("POST", f"/v1/triggers/{trigger_id}/{action}").json()

    def delete_trigger(self, trigger_id: str) -> None:
        self._request("DELETE", f"/v1/triggers/{trigger_id}")

    def list(self) -> list[dict[str, Any]]:
        return self._request("GET", "/v1/functions").json()["functions"]

    def get(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/functions/{name}").json()

    def processes(self) -> builtins.list[dict[str, Any]]:
        response = self._request("GET", "/v1/instances")
        return response.json()["processes"]

    def remove(self, name: str) -> dict[str, Any]:
        return self._request("DELETE", f"/v1/functions/{name}").json()

    def create_key(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", "/v1/keys", json=request).json()

    def list_keys(self) -> builtins.list[dict[str, Any]]:
        return self._request("GET", "/v1/keys").json()["keys"]

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        return self._request("DELETE", f"/v1/keys/{key_id}").json()

    def rotate_master_key(self) -> dict[str, Any]:
        return self._request("POST", "/v1/master-key/rotate").json()

    def audit(self, **params: str) -> builtins.list[dict[str, Any]]:
        return self._request("GET", "/v1/audit", params=params).json()["entries"]

    def verify_audit(self) -> dict[str, Any]:
        return self._request("GET", "/v1/audit", params={"verify": "1"}).json()

    def logs(self, name: str, tail: int = 100, follow: bool = False, **query: str) -> Iterator[str]:
        """The function's log; ``query``: since, filter, request_id, format (given ones)."""
        params = {"tail": str(tail), "follow": "1" if follow else "0"}
        params.update({key: value for key, value in query.items() if value})
        try:
            with self._http.stream("GET", f"/v1/functions/{name}/logs", params=params) as response:
                if not response.is_success:
                    response.read()
                    self._raise_for_error(response)
                yield from response.iter_text()
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None

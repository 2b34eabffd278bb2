"""`mlambda serve` as a subprocess on a free port with a temporary data dir."""

from __future__ import annotations

import functools
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mlambda import bundle
from mlambda.client import Client

pytestmark = pytest.mark.system


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A running `mlambda serve`; ``client`` talks to it with the admin key."""

    def __init__(
        self,
        data_dir: Path,
        *extra: str,
        cwd: Path | None = None,
        prefix: tuple[str, ...] = (),
        ca_file: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir_arg = data_dir  # as given to --data-dir: may be relative to cwd
        self.cwd = cwd
        self.data_dir = cwd / data_dir if cwd is not None else data_dir
        self.port = free_port()
        # With ca_file the server speaks HTTPS (its certificate signed by that CA).
        self.ca_file = ca_file
        self.verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            self.verify = ssl.create_default_context(cafile=str(ca_file))
        self.url = f"{'https' if ca_file else 'http'}://127.0.0.1:{self.port}"
        self.extra = extra
        # A command that runs serve (as another user, in a namespace...): it execs its arguments.
        self.prefix = prefix
        self.env = env or {}  # added to the environment serve runs in
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.data_dir.parent / f"serve-{self.port}.log"

    def start(self) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLAMBDA_", "OTEL_"))}
        env.update(self.env)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *self.prefix,
                    *(sys.executable, "-m", "mlambda", "serve", "--port", str(self.port)),
                    *("--data-dir", str(self.data_dir_arg), "--log-level", "warning", *self.extra),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.cwd,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited:\n{self.log.read_text()}")
            try:
                healthz = httpx.get(f"{self.url}/healthz", timeout=1, verify=self.verify)
                if healthz.status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"serve did not become healthy:\n{self.log.read_text()}")

    @property
    def key(self) -> str:
        return (self.data_dir / "admin.key").read_text().strip()

    @functools.cached_property
    def client(self) -> Client:
        return Client(self.url, self.key, ca_file=self.ca_file)

    def deploy(self, directory: Path) -> dict:
        spec_name = directory.name
        return self.client.deploy(spec_name, bundle.pack(directory))

    def deploy_path(self, path: Path, **options: object) -> dict:
        """Deploy what `mlambda deploy PATH` takes: a directory, a model file or directory."""
        archive, spec = bundle.pack_path(path, **options)  # type: ignore[arg-type]
        return self.client.deploy(spec.name, archive)

    def http(self, method: str, path: str, **kwargs) -> httpx.Response:  # type: ignore[no-untyped-def]
        headers = {"Authorization": f"Bearer {self.key}", **kwargs.pop("headers", {})}
        return httpx.request(
            method, self.url + path, headers=headers, timeout=60, verify=self.verify, **kwargs
        )

    def cli(self, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLAMBDA_", "OTEL_"))}
        env.update(self.env)
        env |= {"MLAMBDA_URL": self.url, "MLAMBDA_DATA_DIR": str(self.data_dir)}
        return subprocess.run(
            [sys.executable, "-m", "mlambda", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            input=input.decode() if input else None,
        )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if "client" in self.__dict__:
            self.__dict__.pop("client").close()
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def lambda_client(
    server: Server, secret: str | None = None, key_id: str = "mlambda", region: str = "us-east-1"
):  # type: ignore[no-untyped-def]
    """boto3's Lambda client pointed at ``server``, signing with an API key, never retrying."""
    import boto3
    import botocore.config

    return boto3.client(
        "lambda",
        endpoint_url=server.url,
        region_name=region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret or server.key,
        config=botocore.config.Config(retries={"max_attempts": 0}),
    )


def aws_cli(server: Server, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``aws lambda ARGS`` (the AWS CLI v1 from PyPI) against ``server``, signed with the admin
    key, never retrying."""
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "mlambda",
        "AWS_SECRET_ACCESS_KEY": server.key,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
    }
    aws = os.path.join(os.path.dirname(sys.executable), "aws")
    return subprocess.run(
        [aws, "--endpoint-url", server.url, "lambda", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


# Every system test runs against both ways of starting instances.
BACKENDS = ["process", "zygote"]


@pytest.fixture(params=BACKENDS)
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    running = Server(tmp_path / "data", "--backend", request.param).start()
    yield running
    running.stop()


@pytest.fixture(scope="module", params=BACKENDS)
def shared_server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Server]:
    """One server for a module's tests that do not disturb each other."""
    data = tmp_path_factory.mktemp("shared") / "data"
    running = Server(data, "--backend", request.param).start()
    yield running
    running.stop()

"""Brokers of the test's own, on free ports, that a test may kill and start again on the same
data: Redis with its append-only file (fsync on every write), NATS with JetStream on disk.
Without the server binary the tests skip locally and fail in CI, where both are installed."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.system.conftest import free_port


class Broker:
    """One broker process; ``url`` stays the same across ``stop()`` and ``start()``."""

    binary = ""

    def __init__(self, data: Path) -> None:
        path = shutil.which(self.binary) or shutil.which(self.binary, path="/usr/sbin:/usr/bin")
        if path is None:
            reason = f"{self.binary} is not installed; the broker tests need it"
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)
        self.path = path
        self.data = data
        data.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data / "broker.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        raise NotImplementedError

    def start(self) -> Broker:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                time.sleep(0.3)  # listening is not yet ready (JetStream, the AOF loaded)
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.binary} did not start:\n{self.log.read_text()}")

    def stop(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=15)


class RedisBroker(Broker):
    binary = "redis-server"
    # "always": each write is on disk before Redis answers; "everysec" (Redis's default with the
    # append-only file) writes each to the OS at once, as SQLite's WAL does, and syncs each second.
    fsync = "always"

    def command(self) -> list[str]:
        return [
            self.path,
            *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data)),
            *("--appendonly", "yes", "--appendfsync", self.fsync, "--save", ""),
        ]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class NatsBroker(Broker):
    binary = "nats-server"

    def command(self) -> list[str]:
        return [self.path, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.data)]

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"


class MosquittoBroker(Broker):
    """Mosquitto with persistence, keeping every QoS 1 message of a session that is away (its
    default keeps 1000 and drops the rest) and letting 100 be unacknowledged at once."""

    binary = "mosquitto"

    def command(self) -> list[str]:
        config = self.data / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {self.data}/\n"
            "max_queued_messages 0\nmax_inflight_messages 100\n"
            # As whoever runs the test: as root it would become "mosquitto", which cannot
            # write its database into the test's folder.
            f"user {getpass.getuser()}\n"
        )
        return [self.path, "-c", str(config)]

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


BROKERS = {"redis": RedisBroker, "nats": NatsBroker}


class MotoS3(Broker):
    """moto's server: a real S3 protocol endpoint on a free port (what boto3 talks to in the
    object trigger tests), its buckets in memory."""

    binary = "python3"

    def __init__(self, data: Path) -> None:
        try:
            import moto.server  # noqa: F401
        except ImportError:
            reason = "moto[server] is not installed; the object trigger tests need it"
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)
        super().__init__(data)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

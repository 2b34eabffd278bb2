"""The gateway in-process (httpx ASGITransport) over a real Platform and local backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mlambda.gateway.app import create_app
from mlambda.platform import Platform
from mlambda.settings import Settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    running = Platform(Settings.from_env({}, data_dir=tmp_path / "data"))
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
async def http(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(platform))
    headers = {"Authorization": f"Bearer {platform.api_key}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://mlambda", headers=headers, timeout=30
    ) as client:
        yield client

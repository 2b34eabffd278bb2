"""serve's startup (startup.py) over a real Platform: a --deploy directory deployed before and
unchanged since is known by its fingerprint, not packed again; a changed one, or one whose
stored artifact was corrupted, is packed and deployed as any deploy is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlambda import bundle
from mlambda.errors import InvalidSpec
from mlambda.settings import Settings
from mlambda.startup import Boot

pytestmark = pytest.mark.anyio

HANDLER = "def handler(event, context):\n    return {'echo': event, 'v': 1}\n"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({}, data_dir=tmp_path / "data", backend="process", auth=False)


async def _serve(settings: Settings, directory: Path) -> tuple[bool, str, dict[str, object]]:
    """One startup with ``--deploy directory`` and a call: (changed, digest, answer)."""
    boot = Boot(settings, [directory])
    platform = await boot.platform()
    try:
        [(_, record, changed)] = [d async for d in boot.deployments(platform)]
        invocation = await platform.invoke(record.name, b'{"a": 1}')
        return changed, record.digest, json.loads(invocation.body)
    finally:
        await boot.close()
        await platform.stop()


def _no_packing(*args: object, **kwargs: object) -> None:
    raise AssertionError("packed, though the directory had not changed")


async def test_an_unchanged_directory_is_deployed_again_without_packing(
    settings, make_function, monkeypatch
):
    directory = make_function("echo", HANDLER)
    changed, digest, _ = await _serve(settings, directory)
    assert changed
    monkeypatch.setattr(bundle, "pack_path", _no_packing)
    assert await _serve(settings, directory) == (False, digest, {"echo": {"a": 1}, "v": 1})


async def test_a_changed_directory_is_packed_and_deployed(settings, make_function):
    directory = make_function("echo", HANDLER)
    _, first, _ = await _serve(settings, directory)
    (directory / "app.py").write_text(HANDLER.replace("'v': 1", "'v': 2"))
    changed, digest, answer = await _serve(settings, directory)
    assert changed and digest != first and answer["v"] == 2


async def test_a_corrupted_artifact_is_stored_again_from_the_directory(settings, make_function):
    directory = make_function("echo", HANDLER)
    _, digest, _ = await _serve(settings, directory)
    artifact = settings.data_dir / "artifacts" / "sha256" / digest[7:9] / digest[7:]
    artifact.chmod(0o644)
    raw = bytearray(artifact.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    artifact.write_bytes(bytes(raw))
    assert await _serve(settings, directory) == (False, digest, {"echo": {"a": 1}, "v": 1})


async def test_other_limits_check_the_bundle_again(settings, make_function, monkeypatch):
    directory = make_function("echo", HANDLER)
    await _serve(settings, directory)
    stricter = Settings.from_env(
        {}, data_dir=settings.data_dir, backend="process", auth=False, max_bundle_files=1
    )
    with pytest.raises(InvalidSpec, match="max_bundle_files"):
        await _serve(stricter, directory)


async def test_a_directory_that_is_no_function_fails_as_a_deploy_does(settings, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidSpec, match="not a model directory"):
        await _serve(settings, tmp_path / "empty")

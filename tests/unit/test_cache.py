"""The node cache: a tree unpacked once, checked against its manifest, unpacked again if it
was altered, and collected once no function uses it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mlambda import bundle, unpacking
from mlambda.cache import BundleCache
from mlambda.store import MemoryStore

HANDLER = "def handler(event, context):\n    return 'original'\n"


@pytest.fixture
def cache(tmp_path: Path) -> BundleCache:
    return BundleCache(tmp_path / "cache", MemoryStore(), unpacking.Limits())


@pytest.fixture
def digest(cache: BundleCache, make_function) -> str:
    directory = make_function("echo", HANDLER)
    (directory / "lib").mkdir()
    (directory / "lib" / "util.py").write_text("X = 1\n")
    return cache.store.put(bundle.pack(directory))


def test_a_tree_is_unpacked_once_read_only_and_readable_by_others(cache, digest):
    root = cache.prepare(digest)
    assert cache.prepare(digest) == root
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o222 == 0, path  # nobody writes, not even the owner's uid
        assert mode & 0o444 == 0o444, path  # the function's own uid reads it
    assert stat.S_IMODE((root / "lib").stat().st_mode) == 0o555
    manifest = cache.root / (root.name + ".manifest")
    assert stat.S_IMODE(manifest.stat().st_mode) == 0o600


def _alter(path: Path, text: str) -> None:
    path.chmod(0o644)
    path.write_text(text)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(
            lambda root: _alter(root / "app.py", "def handler(e, c):\n    return 'x'\n"),
            id="changed-file",
        ),
        pytest.param(lambda root: (root / "app.py").chmod(0o777), id="changed-mode"),
        pytest.param(
            lambda root: (
                (root / "lib").chmod(0o755) or (root / "lib" / "evil.py").write_text("import os\n")
            ),
            id="added-file",
        ),
        pytest.param(
            lambda root: (root / "lib").chmod(0o755) or (root / "lib" / "util.py").unlink(),
            id="removed-file",
        ),
    ],
)
def test_an_altered_tree_is_found_and_unpacked_again(cache, digest, tamper):
    root = cache.prepare(digest)
    tamper(root)
    again = cache.prepare(digest)
    assert (again / "app.py").read_text() == HANDLER
    assert (again / "lib" / "util.py").read_text() == "X = 1\n"
    assert not (again / "lib" / "evil.py").exists()
    assert stat.S_IMODE((again / "app.py").stat().st_mode) == 0o444


def test_a_tree_without_a_manifest_is_not_trusted(cache, digest):
    root = cache.prepare(digest)
    (cache.root / (root.name + ".manifest")).unlink()
    _alter(root / "app.py", "tampered = True\n")
    assert (cache.prepare(digest) / "app.py").read_text() == HANDLER


def test_collect_removes_trees_no_function_uses_and_keeps_the_rest(cache, digest, make_function):
    other = cache.store.put(bundle.pack(make_function("other", "x = 1\n", handler="app:x")))
    cache.prepare(digest)
    cache.prepare(other)
    (cache.root / ".unpack-leftover").mkdir()
    assert cache.collect({digest}) == [other]
    assert cache.task_root(digest).is_dir()
    assert sorted(p.name for p in cache.root.iterdir()) == sorted(
        [cache.task_root(digest).name, cache.task_root(digest).name + ".manifest"]
    )

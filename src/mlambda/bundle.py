"""Bundles: pack a function directory into a deterministic archive; unpack it into the node cache.

The archive is a gzip'd tar with sorted entries and zeroed times and owners, so the same files
always give the same bytes and the same sha256: deploying unchanged code is then a no-op.
"""

from __future__ import annotations

import collections.abc
import contextlib
import gzip
import hashlib
import io
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path

import msgspec

from mlambda import unpacking
from mlambda.errors import InvalidSpec
from mlambda.runtime.loaders import FRAMEWORKS, detect
from mlambda.runtimes import BOOTSTRAP
from mlambda.spec import NAME_PATTERN, SPEC_FILE, FunctionSpec, parse_spec

# Never shipped: caches and tooling state that differ between machines but not in meaning.
EXCLUDED_DIRS = frozenset({"__pycache__", ".git", ".hg", ".venv", ".mlambda", ".pytest_cache"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
EXCLUDED_NAMES = frozenset({".DS_Store"})
# An mlambda.toml is a few lines; a bound keeps a hostile one from costing the parser much.
MAX_SPEC_BYTES = 256 * 1024
# Names what pack writes for given files: change it with anything that changes those bytes, so
# that fingerprints taken before no longer stand for the new archives.
PACK_FORMAT = 1


def pack(directory: Path) -> bytes:
    """Archive every file under ``directory`` (symlinks followed) into deterministic bytes."""
    directory = Path(directory)
    if not (directory / SPEC_FILE).is_file():
        raise InvalidSpec(f"{directory}: no {SPEC_FILE} here; a function directory needs one")
    return _archive((path.relative_to(directory).as_posix(), path) for path in _files(directory))


def _archive(entries: collections.abc.Iterable[tuple[str, Path | bytes]]) -> bytes:
    return pack_files(
        (name, source, False) if isinstance(source, bytes)
        else (name, source.read_bytes(), os.access(source, os.X_OK))
        for name, source in entries
    )  # fmt: skip


def pack_files(files: collections.abc.Iterable[tuple[str, bytes, bool]]) -> bytes:
    """A bundle of (path, content, executable) files: the same files give the same bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, executable in sorted(files, key=lambda entry: entry[0]):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if executable else 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    # mtime=0 keeps the gzip header, and so the digest, independent of the clock.
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=6) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def pack_path(
    path: Path, *, name: str | None = None, framework: str = "", trust_pickle: bool = False
) -> tuple[bytes, FunctionSpec]:
    """Bundle what ``mlambda deploy PATH`` names: a function directory (with mlambda.toml), a
    model file, or a model directory (sentence-transformers); returns (archive, spec)."""
    if name is not None and not NAME_PATTERN.fullmatch(name):
        raise InvalidSpec(f"--name must be 1-64 letters, digits, '-' or '_', got {name!r}")
    path = Path(path)
    spec_path = path / SPEC_FILE
    if spec_path.is_file():
        if framework or trust_pickle:
            raise InvalidSpec(
                f"{path} has its own {SPEC_FILE}: set framework / trust_pickle there "
                "(--framework and --trust-pickle are for a bare model file or directory)"
            )
        spec = parse_spec(spec_path.read_text(), source=str(spec_path), name=name)
        return pack(path), spec
    if path.is_file():
        model_name = path.name
        entries: list[tuple[str, Path | bytes]] = [(model_name, path)]
    elif path.is_dir():
        files = _files(path)
        names = frozenset(f.relative_to(path).as_posix() for f in files)
        if not framework and detect(str(path), True, names) is None:
            raise InvalidSpec(
                f"{path}: no {SPEC_FILE} here, and it is not a model directory "
                "(a sentence-transformers model has modules.json); a function directory "
                f"needs {SPEC_FILE}"
            )
        model_name = "model"
        entries = [(f"model/{f.relative_to(path).as_posix()}", f) for f in files]
    else:
        raise InvalidSpec(f"{path}: no such file or directory")
    table: dict[str, object] = {"name": name or _function_name(path), "model": model_name}
    if framework:
        table["framework"] = framework
    if trust_pickle:
        table["trust_pickle"] = True
    text = "[function]\n" + "".join(
        f"{key} = {msgspec.json.encode(value).decode()}\n" for key, value in table.items()
    )
    spec = parse_spec(text, source=f"{path} (no {SPEC_FILE}: deployed as a model)")
    entries.append((SPEC_FILE, text.encode()))
    return _archive(entries), spec


def _function_name(path: Path) -> str:
    stem = path.name if path.is_dir() else path.name.split(".")[0]
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:64]
    return name or "model"


def _files(directory: Path) -> list[Path]:
    found = []
    seen: set[str] = set()
    for root, dirs, files in os.walk(directory, followlinks=True):
        # Symlinks are followed, so a link to an ancestor would loop: visit each real dir once.
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if d not in EXCLUDED_DIRS)
        for name in sorted(files):
            if name in EXCLUDED_NAMES or name.endswith(EXCLUDED_SUFFIXES):
                continue
            path = Path(root, name)
            if path.is_file():
                found.append(path)
    return sorted(found)


def read_spec(
    archive: bytes, *, name: str | None = None, limits: unpacking.Limits | None = None
) -> FunctionSpec:
    """Validate an uploaded bundle and return its spec (``name`` overrides function.name).
    Every member is checked and counted against ``limits`` (see ``archive``) on the way."""
    text, members = None, {}
    for member, content in unpacking.members(
        archive, limits or unpacking.Limits(), read=lambda n: n == SPEC_FILE
    ):
        members[member.name] = member
        if content is not None:
            text = content.decode("utf-8", errors="replace")
    return _validated(text, members, name)


def directory_spec(directory: Path) -> FunctionSpec:
    """The spec ``read_spec`` finds in ``pack(directory)``, read from the files themselves
    (no archive: the limits, which need one, are not checked)."""
    directory = Path(directory)
    members = {}
    for path in _files(directory):
        member = tarfile.TarInfo(path.relative_to(directory).as_posix())
        member.mode = 0o755 if os.access(path, os.X_OK) else 0o644
        members[member.name] = member
    spec_file = directory / SPEC_FILE
    text = (
        spec_file.read_bytes().decode("utf-8", errors="replace") if SPEC_FILE in members else None
    )
    return _validated(text, members, None)


def fingerprint(directory: Path) -> str:
    """What ``pack(directory)`` depends on, hashed: each file's path, executable bit and
    content. Packing is deterministic, so an equal fingerprint means an equal archive: a
    deploy of an unchanged directory is known without packing it (gzip is most of the time a
    large model's deploy takes)."""
    directory = Path(directory)
    digest = hashlib.sha256(f"mlambda bundle {PACK_FORMAT}\0".encode())
    for path in _files(directory):
        executable = os.access(path, os.X_OK)
        digest.update(f"{path.relative_to(directory).as_posix()}\0{executable:d}\0".encode())
        with path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return "sha256:" + digest.hexdigest()


def _validated(
    text: str | None, members: dict[str, tarfile.TarInfo], name: str | None
) -> FunctionSpec:
    if text is None:
        raise InvalidSpec(f"bundle has no {SPEC_FILE} at its root")
    if len(text) > MAX_SPEC_BYTES:
        raise InvalidSpec(f"{SPEC_FILE} is over {MAX_SPEC_BYTES} bytes")
    spec = parse_spec(text, name=name, name_from="the function name in the deploy URL")
    if spec.is_provided:
        _check_bootstrap(members)
    elif spec.is_model:
        return _check_model(spec, members)
    else:
        _check_handler_module(spec, set(members))
    return spec


def _check_bootstrap(members: dict[str, tarfile.TarInfo]) -> None:
    """A provided runtime starts the bundle's ``bootstrap``: it must be there, executable."""
    member = members.get(BOOTSTRAP)
    if member is None or not (member.isfile() or member.issym()):
        raise InvalidSpec(
            f"{SPEC_FILE}: function.runtime is a provided runtime, but the bundle has no "
            f"{BOOTSTRAP!r} file at its root: the executable that serves the calls through the "
            "Lambda Runtime API (docs/lambda.md)"
        )
    if member.isfile() and not member.mode & 0o111:
        raise InvalidSpec(
            f"{SPEC_FILE}: the bundle's {BOOTSTRAP!r} is not executable; "
            f"chmod +x {BOOTSTRAP} and deploy again"
        )


def _check_model(spec: FunctionSpec, members: dict[str, tarfile.TarInfo]) -> FunctionSpec:
    """The model path must be in the bundle; an unset framework is chosen from it."""
    model = spec.model.strip("/")
    prefix = model + "/"
    inside = frozenset(n[len(prefix) :] for n in members if n.startswith(prefix))
    is_file = model in members and members[model].isfile()
    if not is_file and not inside:
        raise InvalidSpec(f"{SPEC_FILE}: function.model {spec.model!r} is not in the bundle")
    framework = spec.framework or detect(model, not is_file, inside)
    if framework is None:
        known = sorted({s for f in FRAMEWORKS.values() for s in f.suffixes} | {".json"})
        raise InvalidSpec(
            f"{SPEC_FILE}: cannot tell the framework of {spec.model!r} from its name "
            f"(known suffixes: {', '.join(known)}); set function.framework to one of "
            f"{', '.join(FRAMEWORKS)}"
        )
    if spec.handler:
        base = spec.handler.replace(".", "/")
        if f"{base}.py" not in members and f"{base}/__init__.py" not in members:
            raise InvalidSpec(
                f"{SPEC_FILE}: function.handler {spec.handler!r} (the hooks module) is not in "
                f"the bundle: no {base}.py"
            )
    return msgspec.structs.replace(spec, framework=framework)


def _check_handler_module(spec: FunctionSpec, names: set[str]) -> None:
    base = spec.handler_module.replace(".", "/")
    candidates = [f"{base}.py", f"{base}/__init__.py"]
    if any(c in names for c in candidates):
        return
    if any(n.startswith(base + ".") and n.endswith(".so") for n in names):
        return
    raise InvalidSpec(
        f"{SPEC_FILE}: function.handler {spec.handler!r} names module "
        f"{spec.handler_module!r}, but the bundle has no {candidates[0]} or {candidates[1]}"
    )


def unpack(archive: bytes, target: Path, limits: unpacking.Limits | None = None) -> Path:
    """Extract into ``target`` atomically; files become read-only, as Lambda's task root is,
    and readable (with their directories) by the function's own uid."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
    try:
        unpacking.extract(archive, staging, limits or unpacking.Limits())
        inner = [p for p in staging.rglob("*") if p.is_dir() and not p.is_symlink()]
        for directory in [staging, *inner]:
            directory.chmod(0o555)
        staging.rename(target)
    except OSError:
        if target.is_dir():  # another deploy of the same digest won the race
            return target
        raise
    finally:
        if staging.exists():
            make_removable(staging)
            shutil.rmtree(staging, ignore_errors=True)
    return target


def make_removable(tree: Path) -> None:
    """Give the owner write access back to a read-only tree, so it can be deleted."""
    for path in [tree, *tree.rglob("*")]:
        if not path.is_symlink():
            with contextlib.suppress(OSError):
                path.chmod(0o755 if path.is_dir() else 0o644)

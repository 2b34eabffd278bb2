"""Every command and snippet in README.md and docs/ runs against a live platform, so the docs
cannot drift from the code.

- ```console blocks: each `$ command` runs (in order, one workspace per page) and must exit 0, or
  the code its comment names (`# ... exits 3`); the lines shown under it must match what it
  prints, where `...` stands for anything and numbers, ids and digests may differ.
- ```python blocks run; a block whose first line is `# path/file.py` (or `.toml`) is written to
  that path of the page's workspace instead, for the commands after it.
- ```toml blocks must be a valid mlambda.toml (fragments are read under a minimal [function]),
  or a valid alarms file ([[alarm]] tables);
  ```json blocks must parse.
- `<!-- docs-test: skip: REASON -->` on the line before a block leaves it out, with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlambda.events.triggers.config import parse_triggers
from mlambda.observe.alarm_rule import rule_from_dict
from mlambda.spec import spec_from_dict
from tests.system.conftest import Server

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
SKIP = re.compile(r"<!-- docs-test: skip: (.+?) -->\s*$")
FILE_BLOCK = re.compile(r"# (\S+\.(?:py|toml))\n")
EXAMPLES = ("hello", "fraud", "iris")
# Commands the test cannot run as written, and what it does instead.
NOT_RUN = {
    "make serve": "compared with the banner of the test platform, started as make serve does",
    "source .venv/bin/activate": "the test runs with the virtual environment's PATH",
}


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    text: str
    skip: str


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(page, line, match[1], match[2], skip[1] if skip else ""))
    return found


def commands(text: str) -> list[tuple[str, str]]:
    """(command, the output shown under it) for each `$ ` line, continuation lines joined."""
    result: list[tuple[str, list[str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            command = line[2:]
            while command.endswith("\\") and i + 1 < len(lines):
                i += 1
                command = command[:-1] + " " + lines[i].strip()
            result.append((command, []))
        elif result:
            result[-1][1].append(line)
        i += 1
    return [(command, "\n".join(output).strip()) for command, output in result]


def pattern(shown: str) -> re.Pattern[str]:
    """What the shown output promises: `...` is anything; numbers, hex ids and digests vary."""
    token = re.compile(
        r"(?P<any>\.\.\.)|(?P<hex>(?<!\w)(?=[0-9a-f-]{6})[0-9a-f]*\d[0-9a-f]*(?:-[0-9a-f]+)*(?!\w))"
        r"|(?P<id>[A-Z0-9]{16,})"
        r"|(?P<num>-?\d+(?:\.\d+)*(?:e[-+]?\d+)?)|(?P<space>\s+)|(?P<char>.)",
        re.S,
    )
    parts = []
    for match in token.finditer(shown):
        kind = match.lastgroup
        parts.append(
            {
                "any": r".*?",
                "hex": r"[0-9a-f][0-9a-f-]*",
                "id": r"[A-Z0-9]+",
                "num": r"-?[\d.]+(?:e[-+]?\d+)?",
                "space": r"\s+",
            }.get(kind or "", re.escape(match[0]))
        )
    return re.compile("".join(parts), re.S)


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """The platform as `make serve` runs it: the examples trained and deployed, data in
    ./.mlambda of the working directory."""
    home = tmp_path_factory.mktemp("docs")
    for name in EXAMPLES:
        shutil.copytree(
            ROOT / "examples" / name,
            home / "examples" / name,
            ignore=shutil.ignore_patterns("*.joblib", "*.skops", "__pycache__"),
        )
    for script in ("fraud/train.py", "iris/train.py"):
        subprocess.run(
            [sys.executable, str(home / "examples" / script)], check=True, capture_output=True
        )
    deploys = [arg for name in EXAMPLES for arg in ("--deploy", f"examples/{name}")]
    running = Server(Path(".mlambda"), "--log-level", "info", *deploys, cwd=home).start()
    yield running
    running.stop()


def _environment(server: Server) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLAMBDA_", "AWS_"))}
    bin_dir = os.path.dirname(sys.executable)
    env["PATH"] = f"{bin_dir}:{env.get('PATH', '')}"
    env["MLAMBDA_URL"] = server.url
    # The names the docs give the key in their examples.
    env["MLAMBDA_API_KEY"] = env["KEY"] = server.key
    return env


def _local(text: str, server: Server) -> str:
    return text.replace("127.0.0.1:8080", f"127.0.0.1:{server.port}")


def _workspace(server: Server, page: Path) -> Path:
    """A page's own working directory: the examples and the platform's data dir, as after
    `make serve` in a clone."""
    assert server.cwd is not None
    workspace = server.cwd / "pages" / page.relative_to(ROOT).as_posix().replace("/", "_")
    workspace.mkdir(parents=True, exist_ok=True)
    for name in ("examples", ".mlambda"):
        if not (workspace / name).exists():
            (workspace / name).symlink_to(server.cwd / name)
    return workspace


def _check_console(block: Block, server: Server, workspace: Path) -> None:
    env = _environment(server)
    for command, shown in commands(block.text):
        where = f"{block.page.name}:{block.line}: $ {command}"
        if command in NOT_RUN:
            if command == "make serve":
                banner = _local(shown, server)
                assert pattern(banner).match(server.log.read_text().strip()), (
                    f"{where}\nshown:\n{banner}\nprinted:\n{server.log.read_text()}"
                )
            continue
        if re.match(r"(\S*/)?pip install ", command):
            _check_extras(command, where)
            continue
        if "--follow" in command:
            _check_follows(command, server, workspace, where)
            continue
        expected = re.search(r"exits (\d+)", command.partition(" #")[2])
        done = subprocess.run(
            ["bash", "-c", _local(command, server)],
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        printed = (done.stdout + done.stderr).strip()
        code = int(expected[1]) if expected else 0
        assert done.returncode == code, f"{where}\nexit {done.returncode}:\n{printed}"
        if shown:
            wanted = _local(shown, server)
            # What a terminal shows: stdout alone (curl's progress meter is for pipes), or with
            # the errors written to stderr.
            seen = (done.stdout.strip(), printed)
            assert any(pattern(wanted).fullmatch(text) for text in seen), (
                f"{where}\nshown:\n{wanted}\nprinted:\n{printed}"
            )


def _check_follows(command: str, server: Server, workspace: Path, where: str) -> None:
    """A command that keeps printing must still be running a moment later."""
    follower = subprocess.Popen(
        ["bash", "-c", _local(command, server)],
        cwd=workspace,
        env=_environment(server),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        follower.wait(timeout=2)
    except subprocess.TimeoutExpired:
        return
    finally:
        follower.kill()
        follower.wait()
        assert follower.stdout is not None
        output = follower.stdout.read()
        follower.stdout.close()
    raise AssertionError(f"{where}: exited {follower.returncode}: {output}")


def _check_extras(command: str, where: str) -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    named = re.findall(r"\[([\w,-]+)\]", command)
    assert named, f"{where}: names no extra"
    for extra in ",".join(named).split(","):
        assert extra in extras, f"{where}: no extra {extra!r} in pyproject.toml"


def _check_python(block: Block, server: Server, workspace: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _local(block.text, server)],
        cwd=workspace,
        env=_environment(server),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{block.page.name}:{block.line}:\n{done.stdout}{done.stderr}"


def _check_toml(block: Block) -> None:
    """A whole [function] table, or a fragment of one (read with a name and handler added),
    and [[triggers]] tables."""
    document = tomllib.loads(block.text)
    where = f"{block.page.name}:{block.line}"
    if set(document) == {"alarm"}:
        for alarm in document["alarm"]:
            rule_from_dict(alarm)
        return
    assert document and set(document) <= {"function", "triggers"}, (
        f"{where}: settings go under [function] or [[triggers]]"
    )
    if "triggers" in document:
        parse_triggers(document["triggers"], where)
    if "function" not in document:
        return
    table = document["function"]
    if "handler" not in table and "model" not in table:
        table = {"handler": "app:handler", **table}
    spec_from_dict({"name": "docs", **table}, source=where)


def _write(block: Block, workspace: Path) -> bool:
    match = FILE_BLOCK.match(block.text)
    if block.lang not in ("python", "toml") or not match:
        return False
    path = workspace / match[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(block.text)
    return True


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_command_and_snippet_of_the_page_works(page, platform):
    workspace = _workspace(platform, page)
    for block in blocks(page):
        if block.skip:
            continue
        written = _write(block, workspace)
        if block.lang == "console":
            _check_console(block, platform, workspace)
        elif block.lang == "python" and not written:
            _check_python(block, platform, workspace)
        elif block.lang == "toml":
            _check_toml(block)
        elif block.lang == "json":
            json.loads(block.text)


def test_every_skip_gives_its_reason():
    for page in PAGES:
        for block in blocks(page):
            if block.skip:
                assert len(block.skip.split()) >= 3, f"{page.name}:{block.line}: {block.skip!r}"


@pytest.mark.parametrize(
    ("shown", "printed", "matches"),
    [
        ('{"outputs": [0, 2]}', '{"outputs": [1, 2]}', True),
        ('{"outputs": [0, 2]}', '{"outputs": [0]}', False),
        ("deployed iris $LATEST (sha256:...)", "deployed iris $LATEST (sha256:ab12)", True),
        ("fraud  $LATEST  96cbee2d3b62  512 MB", "fraud      $LATEST  0a1b2c3d4e5f  512 MB", True),
        ("hello: Ada", "hello: Bob", False),
    ],
)
def test_shown_output_is_matched_loosely_only_where_it_may_differ(shown, printed, matches):
    assert bool(pattern(shown).fullmatch(printed)) is matches

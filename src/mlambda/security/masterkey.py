"""Where the master keyring comes from: a file (the default), an environment variable, or a command.

The command is the seam for a KMS or a vault: whatever it prints on stdout is read like a key
file. Key material never appears in a message; paths, variable names and commands do.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Protocol

from mlambda.security.crypto import MasterKeyError, MasterKeys

DEFAULT_ENV_NAME = "MLAMBDA_MASTER_KEY"
# Long enough for a vault or KMS round trip with a retry, short enough that serve does not hang.
DEFAULT_COMMAND_TIMEOUT_S = 30.0
_PRIVATE_MODE_MASK = 0o066
_STDERR_LINE_MAX = 200


class KeySource(Protocol):
    """Where the master keys live.

    Invariants: load() returns at least one key; rotate() returns the keyring to use from now on,
    whose primary is new, with the old keys still in it for reading; finish() is called once
    everything is re-wrapped under the new primary and may drop the old keys where the source is
    the platform's own. Every failure is a MasterKeyError that says what to do."""

    def describe(self) -> str: ...

    def load(self) -> MasterKeys: ...

    def rotate(self, current: MasterKeys) -> MasterKeys: ...

    def finish(self, keys: MasterKeys) -> None: ...


class FileSource:
    """A key file the platform owns: created on first use, rewritten on rotation, kept 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> str:
        return f"file {self.path}"

    def load(self) -> MasterKeys:
        """The file's keys; a missing file is created holding one new key."""
        if not self.path.exists():
            keys = MasterKeys.generate()
            try:
                self._write(keys, replace=False)
                return keys
            except FileExistsError:
                pass  # another process created it first: its key is the one to use
        return self._read()

    def rotate(self, current: MasterKeys) -> MasterKeys:
        """A new primary first, then ``current``, then any other key the file holds now: the
        file keeps every key until finish(), so a crash mid-rotation loses nothing."""
        rotated = self._read().with_primary_first(current.with_new_primary())
        self._write(rotated, replace=True)
        return rotated

    def finish(self, keys: MasterKeys) -> None:
        self._write(keys.only_primary(), replace=True)

    def _read(self) -> MasterKeys:
        try:
            mode = self.path.stat().st_mode & 0o777
            if mode & _PRIVATE_MODE_MASK:
                raise MasterKeyError(
                    f"master key {self.describe()} is readable or writable by group or others "
                    f"(mode {mode:04o}); run: chmod 600 {self.path}"
                )
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise MasterKeyError(f"cannot read master key {self.describe()}: {error}") from None
        return MasterKeys.parse(text, self.describe())

    def _write(self, keys: MasterKeys, *, replace: bool) -> None:
        try:
            _write_private(self.path, keys.to_text(), replace=replace)
        except FileExistsError:
            raise  # not a failure: load() reads the file that appeared meanwhile
        except OSError as error:
            raise MasterKeyError(f"cannot write master key {self.describe()}: {error}") from None


def _write_private(path: Path, text: str, *, replace: bool) -> None:
    """Write ``text`` to ``path`` as mode 0600, whole or not at all, durably.

    ``replace=False`` refuses (FileExistsError) when ``path`` appeared meanwhile, so two
    processes starting together cannot each generate a key and one lose the other's."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # mkstemp creates the file 0600 from the start: the key is never readable by others.
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as temp:
            temp.write(text)
            temp.flush()
            os.fsync(temp.fileno())
        # Both are atomic: readers see the old file or the new one, never half of one.
        if replace:
            os.replace(temp_name, path)
        else:
            os.link(temp_name, path)
        _fsync_directory(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry itself reaches the disk.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class EnvSource:
    """Keys from an environment variable, several separated by commas or newlines."""

    def __init__(self, value: str, name: str = DEFAULT_ENV_NAME) -> None:
        self.value = value
        self.name = name

    def describe(self) -> str:
        return f"environment variable {self.name}"

    def load(self) -> MasterKeys:
        return MasterKeys.parse(self.value.replace(",", "\n"), self.describe())

    def rotate(self, current: MasterKeys) -> MasterKeys:
        """The environment cannot change under a running process, so the operator puts the new
        key first and restarts; rotation then re-wraps under that first key."""
        if len(current.ids) > 1:
            return current
        raise MasterKeyError(
            f"{self.describe()} holds a single master key, and an environment cannot change "
            f"under a running process: put a new key first in {self.name}, keep the old one "
            "after it (separated by a comma), restart mlambda serve, then rotate again"
        )

    def finish(self, keys: MasterKeys) -> None:
        """Nothing to drop here: the operator removes the old key from the variable."""


class CommandSource:
    """Keys printed on stdout by an operator's command run with ``sh -c`` (a KMS, a vault)."""

    def __init__(self, command: str, timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S) -> None:
        self.command = command
        self.timeout_s = timeout_s

    def describe(self) -> str:
        return f"command {self.command!r}"

    def load(self) -> MasterKeys:
        return MasterKeys.parse(self._run(), f"the output of {self.describe()}")

    def rotate(self, current: MasterKeys) -> MasterKeys:
        """The command's keys first, then those of ``current`` it no longer lists, so data
        wrapped by the old key stays readable until it is re-wrapped."""
        answered = self.load()
        if answered.primary_id == current.primary_id:
            raise MasterKeyError(
                f"{self.describe()} still answers with the same primary key "
                f"({current.primary_id}); rotate the key at its source first"
            )
        return current.with_primary_first(answered)

    def finish(self, keys: MasterKeys) -> None:
        """Nothing to drop here: the command's owner retires the old key at its source."""

    def _run(self) -> str:
        """The command's stdout; MasterKeyError on a timeout, a failure or no output."""
        try:
            returncode, stdout, stderr = _run_shell(self.command, self.timeout_s)
        except subprocess.TimeoutExpired as expired:
            raise MasterKeyError(
                f"{self.describe()} did not finish within {self.timeout_s:g}s and was killed"
                + _stderr_tail(expired.stderr)
            ) from None
        except OSError as error:
            raise MasterKeyError(f"cannot run {self.describe()}: {error}") from None
        if returncode != 0:
            raise MasterKeyError(
                f"{self.describe()} {_exit_status(returncode)}" + _stderr_tail(stderr)
            )
        text = stdout.decode("utf-8", errors="replace")
        if not text.strip():
            raise MasterKeyError(
                f"{self.describe()} exited with status 0 but printed no key on stdout"
                + _stderr_tail(stderr)
            )
        return text


def _run_shell(command: str, timeout_s: float) -> tuple[int, bytes, bytes]:
    # A session of its own: a timeout then kills the whole group, not only `sh` while the
    # programs it started keep the pipes open (and this process waiting).
    with subprocess.Popen(
        ["sh", "-c", command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            _, stderr = process.communicate()
            raise subprocess.TimeoutExpired(command, timeout_s, stderr=stderr) from None
    return process.returncode, stdout, stderr


def _exit_status(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


def _stderr_tail(stderr: bytes | None) -> str:
    """The last line of stderr, for the message; stdout is never shown, it may hold a key."""
    lines = (stderr or b"").decode("utf-8", errors="replace").strip().splitlines()
    if not lines:
        return " (stderr was empty)"
    return f"; stderr ended with: {lines[-1].strip()[:_STDERR_LINE_MAX]}"


def source_for(*, file: Path, env_value: str | None, command: str) -> KeySource:
    """The configured source: a command (if non-empty) wins, then the environment variable's
    value (if set and non-empty), then the key file."""
    if command.strip():
        return CommandSource(command)
    if env_value:
        return EnvSource(env_value)
    return FileSource(file)

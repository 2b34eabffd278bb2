"""Key sources: the platform's own key file, an environment variable, an operator's command."""

from __future__ import annotations

import base64
import shlex
import stat
import time
from pathlib import Path

import pytest

from mlambda.security.crypto import MasterKeyError, MasterKeys
from mlambda.security.masterkey import CommandSource, EnvSource, FileSource, source_for

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
TEXT_A = base64.b64encode(KEY_A).decode()
TEXT_B = base64.b64encode(KEY_B).decode()
ID_A = MasterKeys([KEY_A]).primary_id
ID_B = MasterKeys([KEY_B]).primary_id


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _write_key_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_a_missing_key_file_is_created_0600_with_one_key(tmp_path):
    path = tmp_path / "state" / "secrets" / "master.key"
    keys = FileSource(path).load()
    assert len(keys.ids) == 1
    assert _mode(path) == 0o600
    assert FileSource(path).load() == keys
    assert [p.name for p in path.parent.iterdir()] == ["master.key"]  # no temp file left


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_a_key_file_others_can_read_or_write_is_refused_saying_chmod_600(tmp_path, mode):
    path = _write_key_file(tmp_path / "master.key", TEXT_A, mode)
    with pytest.raises(MasterKeyError, match="chmod 600") as raised:
        FileSource(path).load()
    assert str(path) in str(raised.value)
    assert TEXT_A not in str(raised.value)


def test_an_existing_key_file_is_read_not_replaced(tmp_path):
    path = _write_key_file(tmp_path / "master.key", f"{TEXT_A}\n{TEXT_B}\n")
    assert FileSource(path).load().ids == [ID_A, ID_B]


def test_a_broken_key_file_names_the_file_and_line(tmp_path):
    path = _write_key_file(tmp_path / "master.key", f"{TEXT_A}\nnot a key\n")
    with pytest.raises(MasterKeyError, match=f"file {path}, line 2"):
        FileSource(path).load()


def test_rotation_keeps_both_keys_in_the_file_until_finish_drops_the_old(tmp_path):
    path = _write_key_file(tmp_path / "master.key", TEXT_A)
    source = FileSource(path)
    rotated = source.rotate(source.load())
    assert rotated.ids[1:] == [ID_A]
    # A crash here (rotated, not finished) must leave a file that still opens old data.
    assert FileSource(path).load() == rotated
    assert _mode(path) == 0o600

    source.finish(rotated)
    assert FileSource(path).load().ids == [rotated.primary_id]
    assert _mode(path) == 0o600


def test_rotation_keeps_a_key_the_file_gained_since_it_was_loaded(tmp_path):
    path = _write_key_file(tmp_path / "master.key", TEXT_A)
    source = FileSource(path)
    loaded = source.load()
    _write_key_file(path, f"{TEXT_B}\n{TEXT_A}\n")
    rotated = source.rotate(loaded)
    assert rotated.ids[1:] == [ID_A, ID_B]


@pytest.mark.parametrize(
    "value", [f"{TEXT_A},{TEXT_B}", f"{TEXT_A}\n{TEXT_B}\n", f" {TEXT_A} , {TEXT_B} "]
)
def test_the_environment_holds_keys_separated_by_commas_or_newlines(value):
    assert EnvSource(value).load().ids == [ID_A, ID_B]


def test_an_environment_with_one_key_cannot_rotate_and_says_how():
    source = EnvSource(TEXT_A, name="MY_KEY")
    with pytest.raises(MasterKeyError, match="put a new key first in MY_KEY") as raised:
        source.rotate(source.load())
    assert "restart" in str(raised.value)
    assert TEXT_A not in str(raised.value)


def test_an_environment_with_a_new_key_first_rotates_to_it_and_drops_nothing():
    source = EnvSource(f"{TEXT_B},{TEXT_A}")
    current = source.load()
    assert source.rotate(current) == current
    assert current.primary_id == ID_B
    source.finish(current)
    assert source.load() == current


def test_an_environment_error_names_the_variable():
    with pytest.raises(MasterKeyError, match="environment variable MLAMBDA_MASTER_KEY, line 2"):
        EnvSource(f"{TEXT_A},oops").load()


def test_a_command_printing_a_key_is_read_like_a_key_file():
    source = CommandSource(f"printf '%s\\n' {TEXT_A}")
    assert source.load().ids == [ID_A]
    assert source.describe() == f"command {source.command!r}"


def test_a_failing_command_names_itself_its_status_and_its_last_stderr_line():
    source = CommandSource("echo first >&2; echo 'vault: permission denied' >&2; exit 3")
    with pytest.raises(MasterKeyError) as raised:
        source.load()
    message = str(raised.value)
    assert source.command in message
    assert "status 3" in message
    assert "vault: permission denied" in message
    assert "first" not in message.replace(source.command, "")


def test_a_failing_command_never_shows_its_stdout(tmp_path):
    key_file = _write_key_file(tmp_path / "k", TEXT_A)
    with pytest.raises(MasterKeyError, match="status 1") as raised:
        CommandSource(f"cat {shlex.quote(str(key_file))}; exit 1").load()
    assert TEXT_A not in str(raised.value)


def test_a_command_printing_nothing_is_refused():
    with pytest.raises(MasterKeyError, match="printed no key"):
        CommandSource("true").load()


def test_a_command_that_hangs_is_killed_with_its_children_after_the_timeout(tmp_path):
    marker = tmp_path / "survived"
    source = CommandSource(f"echo waiting >&2; sleep 0.5; touch {marker}", timeout_s=0.1)
    with pytest.raises(MasterKeyError, match=r"did not finish within 0.1s.*waiting"):
        source.load()
    time.sleep(0.7)  # past the moment a surviving child would have touched the marker
    assert not marker.exists()


def test_a_command_still_answering_the_same_key_cannot_rotate():
    source = CommandSource(f"printf '%s\\n' {TEXT_A}")
    with pytest.raises(MasterKeyError, match="rotate the key at its source first"):
        source.rotate(source.load())


def test_a_command_answering_a_new_key_rotates_to_it_keeping_the_old(tmp_path):
    answer = _write_key_file(tmp_path / "answer", TEXT_A)
    source = CommandSource(f"cat {shlex.quote(str(answer))}")
    current = source.load()
    answer.write_text(TEXT_B)
    rotated = source.rotate(current)
    assert rotated.ids == [ID_B, ID_A]
    source.finish(rotated)
    assert source.load().ids == [ID_B]


@pytest.mark.parametrize(
    ("env_value", "command", "expected"),
    [
        ("k", "vault read", CommandSource),
        (None, "vault read", CommandSource),
        ("k", "", EnvSource),
        ("k", "   ", EnvSource),
        ("", "", FileSource),
        (None, "", FileSource),
    ],
)
def test_a_command_wins_over_the_environment_which_wins_over_the_file(
    tmp_path, env_value, command, expected
):
    source = source_for(file=tmp_path / "m.key", env_value=env_value, command=command)
    assert type(source) is expected


@pytest.mark.parametrize(
    ("source", "description"),
    [
        (FileSource(Path("/srv/m/master.key")), "file /srv/m/master.key"),
        (EnvSource(TEXT_A), "environment variable MLAMBDA_MASTER_KEY"),
        (
            CommandSource("vault read -field=key secret/m"),
            "command 'vault read -field=key secret/m'",
        ),
    ],
)
def test_a_source_describes_where_it_is_without_key_material(source, description):
    assert source.describe() == description

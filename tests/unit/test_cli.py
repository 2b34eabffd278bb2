"""The CLI mirrors the settings, and its help is there for every command."""

from __future__ import annotations

import dataclasses

import pytest

from mlambda import cli
from mlambda.settings import Settings

# Settings that are deliberately not flags: the keys (a flag would show them in `ps`), the
# inherited environment, and auth (a negative flag, --no-auth, checked below).
NOT_FLAGS = {"api_key", "instance_env", "auth", "master_key", "otel_endpoint"}


def _flags(command: str) -> set[str]:
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    sub = subparsers.choices[command]  # type: ignore[index]
    return {a.dest for a in sub._actions if a.option_strings}


def test_every_server_setting_is_a_serve_flag():
    client_only = set(cli.CLIENT_FIELDS) - {"data_dir"}  # data_dir is both serve's and theirs
    fields = {f.name for f in dataclasses.fields(Settings)} - NOT_FLAGS - client_only
    assert fields <= _flags("serve")
    assert set(cli.SERVE_FIELDS) == fields
    assert "no_auth" in _flags("serve")


@pytest.mark.parametrize("command", ["deploy", "invoke", "ls", "ps", "show", "rm", "logs", "audit"])
def test_client_commands_take_the_client_settings(command):
    assert set(cli.CLIENT_FIELDS) <= _flags(command)


def test_flags_override_the_environment(monkeypatch):
    monkeypatch.setenv("MLAMBDA_PORT", "9000")
    args = cli.build_parser().parse_args(["serve", "--port", "9100", "--no-auth"])
    settings = cli._settings(args)
    assert settings.port == 9100 and settings.auth is False
    args = cli.build_parser().parse_args(["serve"])
    assert cli._settings(args).port == 9000


def test_no_command_prints_help_and_exits_2(capsys):
    assert cli.main([]) == 2
    assert "deploy" in capsys.readouterr().out


def test_unreachable_server_is_a_clear_error(capsys):
    code = cli.main(["ls", "--url", "http://127.0.0.1:9"])
    assert code == 7
    assert "cannot reach mlambda at http://127.0.0.1:9" in capsys.readouterr().err


def test_a_missing_event_file_is_a_clear_error_before_any_request(capsys, tmp_path):
    missing = tmp_path / "missing.json"
    # port 9 is closed: had the CLI gone to the server first, the exit code would be 7
    code = cli.main(["invoke", "hello", "--data", f"@{missing}", "--url", "http://127.0.0.1:9"])
    assert code == 2
    err = capsys.readouterr().err
    expected = f"error: cannot read the event file {str(missing)!r}: No such file or directory"
    assert err.strip() == expected


def test_invoke_help_describes_its_argument(capsys):
    with pytest.raises(SystemExit):
        cli.main(["invoke", "--help"])
    out = capsys.readouterr().out
    assert "NAME" in out and "the function to invoke" in out

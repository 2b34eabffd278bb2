"""Settings read once from MLAMBDA_* variables; overrides win; instances inherit little."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlambda.settings import INSTANCE_ENV_PASSTHROUGH, Settings


def test_an_empty_environment_gives_the_defaults():
    assert Settings.from_env({}) == Settings()


def test_the_defaults_are_safe_for_a_laptop():
    settings = Settings()
    assert settings.host == "127.0.0.1"
    assert settings.auth is True
    assert settings.api_key is None
    assert settings.data_dir == Path(".mlambda")
    assert settings.max_payload_bytes == 6 * 1024 * 1024


@pytest.mark.parametrize(
    ("variable", "raw", "field", "value"),
    [
        ("MLAMBDA_HOST", "0.0.0.0", "host", "0.0.0.0"),
        ("MLAMBDA_PORT", "9000", "port", 9000),
        ("MLAMBDA_PORT", " 9001 ", "port", 9001),
        ("MLAMBDA_DATA_DIR", "/srv/mlambda", "data_dir", Path("/srv/mlambda")),
        ("MLAMBDA_URL", "http://fn.internal:8080", "url", "http://fn.internal:8080"),
        ("MLAMBDA_API_KEY", "sekrit", "api_key", "sekrit"),
        ("MLAMBDA_MAX_PAYLOAD_BYTES", "1024", "max_payload_bytes", 1024),
        ("MLAMBDA_MAX_BUNDLE_BYTES", "2048", "max_bundle_bytes", 2048),
        ("MLAMBDA_MAX_LOG_BYTES", "4096", "max_log_bytes", 4096),
        ("MLAMBDA_LOG_LEVEL", "debug", "log_level", "debug"),
        ("MLAMBDA_AUTH", "true", "auth", True),
        ("MLAMBDA_AUTH", "TRUE", "auth", True),
        ("MLAMBDA_AUTH", "1", "auth", True),
        ("MLAMBDA_AUTH", "yes", "auth", True),
        ("MLAMBDA_AUTH", "on", "auth", True),
        ("MLAMBDA_AUTH", "false", "auth", False),
        ("MLAMBDA_AUTH", "False", "auth", False),
        ("MLAMBDA_AUTH", "0", "auth", False),
        ("MLAMBDA_AUTH", "no", "auth", False),
        ("MLAMBDA_AUTH", "off", "auth", False),
    ],
)
def test_each_setting_is_read_from_its_variable(variable, raw, field, value):
    settings = Settings.from_env({variable: raw})
    assert getattr(settings, field) == value
    assert type(getattr(settings, field)) is type(value)


@pytest.mark.parametrize("variable", ["MLAMBDA_PORT", "MLAMBDA_MAX_PAYLOAD_BYTES"])
@pytest.mark.parametrize("raw", ["eighty", "80.5", ""])
def test_a_bad_integer_raises_value_error_naming_the_variable(variable, raw):
    with pytest.raises(ValueError) as caught:
        Settings.from_env({variable: raw})
    assert str(caught.value) == f"{variable} must be an integer, got {raw!r}"


@pytest.mark.parametrize("raw", ["maybe", "2", ""])
def test_a_bad_boolean_raises_value_error_naming_the_variable(raw):
    with pytest.raises(ValueError) as caught:
        Settings.from_env({"MLAMBDA_AUTH": raw})
    assert str(caught.value) == f"MLAMBDA_AUTH must be true or false, got {raw!r}"


def test_variables_without_the_prefix_are_ignored():
    assert Settings.from_env({"PORT": "1", "HOST": "example", "mlambda_port": "2"}) == Settings()


def test_overrides_win_over_the_environment():
    settings = Settings.from_env(
        {"MLAMBDA_PORT": "9000", "MLAMBDA_AUTH": "true"}, port=9100, auth=False
    )
    assert (settings.port, settings.auth) == (9100, False)


def test_an_override_of_none_leaves_the_environment_value():
    settings = Settings.from_env({"MLAMBDA_PORT": "9000"}, port=None, api_key=None)
    assert settings.port == 9000
    assert settings.api_key is None


def test_a_data_dir_override_becomes_a_path():
    assert Settings.from_env({}, data_dir="/tmp/mlambda-data").data_dir == Path("/tmp/mlambda-data")


def test_key_file_lives_in_the_data_dir():
    assert Settings.from_env({"MLAMBDA_DATA_DIR": "/srv/m"}).key_file == Path("/srv/m/admin.key")


def test_from_env_reads_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv("MLAMBDA_PORT", "9321")
    assert Settings.from_env().port == 9321


def test_instance_env_carries_only_the_passthrough_variables():
    environ = {
        "PATH": "/usr/bin",
        "HOME": "/home/fn",
        "LANG": "C.UTF-8",
        "HF_HOME": "/models",
        "MLAMBDA_API_KEY": "platform-secret",
        "MLAMBDA_DATA_DIR": "/srv/m",
        "AWS_SECRET_ACCESS_KEY": "aws-secret",
        "AWS_ACCESS_KEY_ID": "AKIA",
        "DATABASE_URL": "postgresql://u:p@db/m",
        "PYTHONSTARTUP": "/evil.py",
    }
    settings = Settings.from_env(environ)
    assert dict(settings.instance_env) == {
        "PATH": "/usr/bin",
        "HOME": "/home/fn",
        "LANG": "C.UTF-8",
        "HF_HOME": "/models",
    }
    carried = repr(settings.instance_env)
    assert "platform-secret" not in carried
    assert "aws-secret" not in carried


def test_instance_env_follows_the_passthrough_order():
    environ = {key: key.lower() for key in reversed(INSTANCE_ENV_PASSTHROUGH)}
    settings = Settings.from_env(environ)
    assert [key for key, _ in settings.instance_env] == list(INSTANCE_ENV_PASSTHROUGH)


def test_instance_env_cannot_be_set_through_a_variable():
    settings = Settings.from_env({"MLAMBDA_INSTANCE_ENV": "SECRET=1"})
    assert settings.instance_env == ()


@pytest.mark.parametrize("secret", ["MLAMBDA_API_KEY", "AWS_SECRET_ACCESS_KEY"])
def test_secrets_are_not_passed_through(secret):
    assert secret not in INSTANCE_ENV_PASSTHROUGH

"""mlambda.toml parsing: defaults, ranges, and errors that name the field and the fix."""

from __future__ import annotations

import pytest

from mlambda.errors import InvalidSpec
from mlambda.spec import RESERVED_ENV, FunctionSpec, parse_spec, spec_from_dict

MINIMAL = '[function]\nname = "echo"\nhandler = "app:handler"\n'


def _parse(*lines: str, base: str = MINIMAL, **kwargs: str) -> FunctionSpec:
    return parse_spec(base + "\n".join(lines) + "\n", **kwargs)


def _error(*lines: str, base: str = MINIMAL, **kwargs: str) -> str:
    with pytest.raises(InvalidSpec) as caught:
        _parse(*lines, base=base, **kwargs)
    return str(caught.value)


def test_minimal_spec_takes_the_documented_defaults():
    spec = _parse()
    assert spec == FunctionSpec(name="echo", handler="app:handler")
    assert spec.description == ""
    assert spec.memory_mb == 512
    assert spec.timeout_s == 30.0
    assert spec.init_timeout_s == 60.0
    assert spec.concurrency == 1
    assert (spec.min_instances, spec.max_instances) == (0, 4)
    assert spec.keep_alive_s == 300.0
    assert spec.queue_timeout_s is None
    assert spec.preload == []
    assert spec.env == {}


def test_every_field_written_in_the_table_is_read():
    spec = _parse(
        'description = "echoes"',
        "memory_mb = 1024",
        "timeout_s = 2.5",
        "init_timeout_s = 120",
        "concurrency = 8",
        "min_instances = 1",
        "max_instances = 3",
        "keep_alive_s = 10",
        "queue_timeout_s = 0.5",
        'preload = ["numpy", "json"]',
        "[function.env]",
        'MODEL = "small"',
    )
    assert spec.description == "echoes"
    assert spec.memory_mb == 1024
    assert spec.timeout_s == 2.5
    assert spec.init_timeout_s == 120.0
    assert spec.concurrency == 8
    assert (spec.min_instances, spec.max_instances) == (1, 3)
    assert spec.keep_alive_s == 10.0
    assert spec.queue_timeout_s == 0.5
    assert spec.preload == ["numpy", "json"]
    assert spec.env == {"MODEL": "small"}


def test_an_integer_for_a_seconds_field_becomes_a_float():
    spec = _parse("timeout_s = 5")
    assert spec.timeout_s == 5.0
    assert isinstance(spec.timeout_s, float)


def test_handler_splits_into_module_and_function_at_the_colon():
    spec = _parse(base='[function]\nname = "echo"\nhandler = "pkg.app:predict"\n')
    assert spec.handler_module == "pkg.app"
    assert spec.handler_function == "predict"


def test_to_dict_round_trips_through_spec_from_dict():
    spec = _parse("memory_mb = 256", 'preload = ["json"]', "[function.env]", 'A = "1"')
    assert spec_from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("memory_mb", "64"),
        ("memory_mb", "32768"),
        ("timeout_s", "0.001"),
        ("timeout_s", "900"),
        ("init_timeout_s", "0.001"),
        ("init_timeout_s", "900"),
        ("concurrency", "1"),
        ("concurrency", "1000"),
        ("min_instances", "0"),
        ("max_instances", "1"),
        ("max_instances", "1000"),
        ("keep_alive_s", "0"),
        ("keep_alive_s", "604800"),
        ("queue_timeout_s", "0"),
        ("queue_timeout_s", "900"),
    ],
)
def test_numbers_at_the_ends_of_their_range_are_accepted(field, value):
    spec = _parse(f"{field} = {value}")
    assert getattr(spec, field) == float(value)


def test_min_instances_may_reach_the_top_of_its_range_with_max_instances():
    spec = _parse("min_instances = 1000", "max_instances = 1000")
    assert spec.min_instances == spec.max_instances == 1000


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("memory_mb", "63", "63"),
        ("memory_mb", "32769", "32769"),
        ("timeout_s", "0", "0.0"),
        ("timeout_s", "900.5", "900.5"),
        ("timeout_s", "inf", "inf"),
        ("timeout_s", "nan", "nan"),
        ("init_timeout_s", "0", "0.0"),
        ("init_timeout_s", "901", "901.0"),
        ("concurrency", "0", "0"),
        ("concurrency", "1001", "1001"),
        ("min_instances", "-1", "-1"),
        ("max_instances", "0", "0"),
        ("max_instances", "1001", "1001"),
        ("keep_alive_s", "-1", "-1.0"),
        ("keep_alive_s", "604801", "604801.0"),
        ("queue_timeout_s", "-0.5", "-0.5"),
        ("queue_timeout_s", "901", "901.0"),
    ],
)
def test_numbers_out_of_range_are_refused_naming_the_field_and_the_value(field, value, shown):
    message = _error(f"{field} = {value}")
    assert f"function.{field} must be between" in message
    assert message.endswith(f", got {shown}")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('memory_mb = "big"', "function.memory_mb: expected `int`, got `str`"),
        ("memory_mb = true", "function.memory_mb: expected `int`, got `bool`"),
        ("memory_mb = 512.5", "function.memory_mb: expected `int`, got `float`"),
        ('timeout_s = "30"', "function.timeout_s: expected `float"),
        ('preload = "numpy"', "function.preload: expected `array`, got `str`"),
        ("preload = [1]", "function.preload[0]: expected `str`, got `int`"),
        ("env = {A = 1}", "function.env"),
        ("name = 5", "function.name: expected `str`, got `int`"),
    ],
)
def test_a_value_of_the_wrong_type_names_the_field(line, expected):
    base = '[function]\nhandler = "app:handler"\n' if line.startswith("name") else MINIMAL
    assert expected in _error(line, base=base)


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [
        ("memroy_mb", "memory_mb"),
        ("memory", "memory_mb"),
        ("timeout", "timeout_s"),
        ("keepalive_s", "keep_alive_s"),
        ("max_instance", "max_instances"),
        ("handlr", "handler"),
    ],
)
def test_an_unknown_field_gets_did_you_mean(typo, suggestion):
    message = _error(f"{typo} = 1")
    assert f"unknown field function.{typo}" in message
    assert f"(did you mean function.{suggestion}?)" in message


def test_an_unknown_field_with_nothing_close_gets_no_suggestion():
    message = _error("zzz = 1")
    assert "unknown field function.zzz" in message
    assert "did you mean" not in message


@pytest.mark.parametrize("field", ["name", "handler"])
def test_a_missing_required_field_is_named(field):
    other = 'handler = "app:handler"' if field == "name" else 'name = "echo"'
    message = _error(base=f"[function]\n{other}\n")
    assert f"function.{field} is required" in message


@pytest.mark.parametrize("text", ["", 'name = "echo"\n', 'function = "echo"\n'])
def test_a_file_without_the_function_table_says_so(text):
    message = _error(base=text)
    assert "missing the [function] table" in message


@pytest.mark.parametrize(
    ("handler", "suggestion"),
    [
        ("app.handler", "app:handler"),
        ("pkg.app.predict", "pkg.app:predict"),
    ],
)
def test_handler_with_dot_instead_of_colon_suggests_the_colon_form(handler, suggestion):
    message = _error(base=f'[function]\nname = "echo"\nhandler = "{handler}"\n')
    assert "function.handler must be 'module:function'" in message
    assert repr(handler) in message
    assert f"(did you mean '{suggestion}'?)" in message


@pytest.mark.parametrize(
    "handler",
    ["app", ":handler", "app:", "1app:handler", "app:handler.x", "app:1x", "app handler", ""],
)
def test_a_handler_not_shaped_module_colon_function_is_refused(handler):
    message = _error(base=f'[function]\nname = "echo"\nhandler = "{handler}"\n')
    assert f"function.handler must be 'module:function', got {handler!r}" in message
    assert "did you mean" not in message


@pytest.mark.parametrize("name", ["a", "a" * 64, "My_fn-2", "0"])
def test_names_of_letters_digits_dashes_and_underscores_are_accepted(name):
    assert _parse(base=f'[function]\nname = "{name}"\nhandler = "app:handler"\n').name == name


@pytest.mark.parametrize("name", ["", "a" * 65, "has space", "slash/name", "dot.name", "ünï"])
def test_a_bad_name_is_refused_with_the_rule_and_the_value(name):
    message = _error(base=f'[function]\nname = "{name}"\nhandler = "app:handler"\n')
    assert "function.name must be 1-64 letters, digits, '-' or '_'" in message
    assert repr(name) in message


def test_min_instances_above_max_instances_is_refused_naming_both():
    message = _error("min_instances = 5", "max_instances = 2")
    assert "function.min_instances (5) must not exceed function.max_instances (2)" in message


def test_min_instances_equal_to_max_instances_is_accepted():
    spec = _parse("min_instances = 2", "max_instances = 2")
    assert spec.min_instances == spec.max_instances == 2


@pytest.mark.parametrize("key", ["1BAD", "A-B", "A B", "", "É"])
def test_an_env_key_that_is_not_a_variable_name_is_refused(key):
    message = _error("[function.env]", f'"{key}" = "x"')
    assert f"function.env key {key!r} is not a valid variable name" in message


@pytest.mark.parametrize("key", sorted(RESERVED_ENV))
def test_a_reserved_env_name_is_refused(key):
    message = _error("[function.env]", f'{key} = "x"')
    assert f"function.env.{key} is reserved" in message


def test_env_keys_of_letters_digits_and_underscores_are_kept():
    spec = _parse("[function.env]", '_PRIVATE = "1"', 'model_2 = "small"')
    assert spec.env == {"_PRIVATE": "1", "model_2": "small"}


@pytest.mark.parametrize("table", ["build", "functions", "function2"])
def test_an_unknown_top_level_table_is_refused(table):
    message = _error(f"[{table}]", "x = 1")
    assert f"unknown table [{table}]" in message
    assert "settings go under [function]" in message


def test_invalid_toml_is_refused_naming_the_source():
    with pytest.raises(InvalidSpec) as caught:
        parse_spec("[function\nname = ", source="fns/echo/mlambda.toml")
    assert str(caught.value).startswith("fns/echo/mlambda.toml: not valid TOML")


def test_every_message_starts_with_the_source():
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(MINIMAL + "memory_mb = 1\n", source="fns/echo/mlambda.toml")
    assert str(caught.value).startswith("fns/echo/mlambda.toml: function.memory_mb")


def test_invalid_spec_is_a_400_invalid_parameter_value():
    with pytest.raises(InvalidSpec) as caught:
        _parse("memory_mb = 1")
    assert caught.value.status == 400
    assert caught.value.error_type == "InvalidParameterValueException"


def test_the_name_argument_overrides_function_name():
    assert _parse(name="renamed").name == "renamed"


def test_the_name_argument_supplies_a_missing_function_name():
    spec = parse_spec('[function]\nhandler = "app:handler"\n', name="given")
    assert spec.name == "given"


def test_the_name_argument_is_validated_like_function_name():
    message = _error(name="bad name")
    # Blamed on the name given, not on the file's function.name.
    assert message.startswith("the function name must be 1-64")
    assert "'bad name'" in message
    assert "mlambda.toml" not in message


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ((), 30.0),
        (("timeout_s = 7",), 7.0),
        (("queue_timeout_s = 2",), 2.0),
        (("timeout_s = 7", "queue_timeout_s = 0"), 0.0),
    ],
)
def test_queue_timeout_defaults_to_timeout_s_unless_set(lines, expected):
    assert _parse(*lines).queue_timeout == expected


def test_a_name_with_a_trailing_newline_is_refused():
    message = _error(base='[function]\nname = "echo\\n"\nhandler = "app:handler"\n')
    assert "function.name" in message


def test_a_handler_with_a_trailing_newline_is_refused():
    message = _error(base='[function]\nname = "echo"\nhandler = "app:handler\\n"\n')
    assert "function.handler" in message


def test_an_env_key_with_a_trailing_newline_is_refused():
    message = _error("[function.env]", '"KEY\\n" = "x"')
    assert "function.env key" in message


@pytest.mark.parametrize("handler", ["app.:handler", "pkg..app:handler"])
def test_a_handler_module_with_an_empty_segment_is_refused(handler):
    message = _error(base=f'[function]\nname = "echo"\nhandler = "{handler}"\n')
    assert "function.handler must be 'module:function'" in message


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('description = "' + "x" * 2000 + '"', "description"),
        ("preload = [" + ", ".join(f'"m{i}"' for i in range(70)) + "]", "preload"),
        ('[function.env]\nBIG = "' + "x" * 70000 + '"', "at most 65536"),
    ],
)
def test_absurd_values_are_refused_naming_the_field(extra, message):
    text = '[function]\nname = "f"\nhandler = "app:handler"\n' + extra + "\n"
    with pytest.raises(InvalidSpec, match=message):
        parse_spec(text)


def test_secrets_are_checked_like_env_and_redacted_for_the_registry():
    text = '[function]\nname = "f"\nhandler = "app:handler"\n[function.secrets]\nTOKEN = "s3cret"\n'
    spec = parse_spec(text)
    assert spec.secrets == {"TOKEN": "s3cret"}
    assert spec.redacted().secrets == {"TOKEN": ""}
    with pytest.raises(InvalidSpec, match=r"both function\.env and function\.secrets"):
        parse_spec(text + '[function.env]\nTOKEN = "x"\n')
    with pytest.raises(InvalidSpec, match=r"function\.secrets\.LAMBDA_TASK_ROOT is reserved"):
        parse_spec(text.replace("TOKEN", "LAMBDA_TASK_ROOT"))


def test_cpu_may_be_proportional_to_memory_and_nothing_else_in_words():
    spec = spec_from_dict({"name": "f", "handler": "app:handler", "cpu": "proportional"})
    assert spec.cpu == "proportional"
    with pytest.raises(InvalidSpec) as caught:
        spec_from_dict({"name": "f", "handler": "app:handler", "cpu": "fast"})
    assert 'function.cpu must be a number of cores or "proportional"' in str(caught.value)
    assert "'fast'" in str(caught.value)

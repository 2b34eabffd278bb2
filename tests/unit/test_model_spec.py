"""Model functions in mlambda.toml and bundles: fields, pickle refusal, framework detection."""

from __future__ import annotations

import dataclasses
import io
import re
import tarfile
from pathlib import Path

import pytest

from mlambda import bundle
from mlambda.errors import InvalidSpec
from mlambda.runtime.loaders import FRAMEWORKS, detect
from mlambda.spec import BatchSpec, FunctionSpec, parse_spec

MODEL = '[function]\nname = "iris"\nmodel = "model.onnx"\n'


def _parse(*lines: str, base: str = MODEL) -> FunctionSpec:
    return parse_spec(base + "\n".join(lines) + "\n")


def _error(*lines: str, base: str = MODEL) -> str:
    with pytest.raises(InvalidSpec) as caught:
        _parse(*lines, base=base)
    return str(caught.value)


def _tar(*members: tuple[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return raw.getvalue()


def _names(archive: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return tar.getnames()


def _model_dir(root: Path, name: str = "minilm") -> Path:
    directory = root / name
    (directory / "1_Pooling").mkdir(parents=True)
    (directory / "modules.json").write_text("[]")
    (directory / "model.safetensors").write_bytes(b"weights")
    (directory / "1_Pooling" / "config.json").write_text("{}")
    return directory


# -- mlambda.toml ---------------------------------------------------------------------------


def test_a_model_function_needs_no_handler():
    spec = _parse()
    assert spec.is_model
    assert (spec.model, spec.handler, spec.framework) == ("model.onnx", "", "")
    assert spec.trust_pickle is False
    assert spec.batch is None


def test_a_function_with_neither_handler_nor_model_is_told_about_both():
    message = _error(base='[function]\nname = "iris"\n')
    assert "function.handler is required" in message
    assert "function.model" in message


@pytest.mark.parametrize("hooks", ["hooks", "pkg.hooks", "_private"])
def test_a_model_functions_handler_names_a_hooks_module(hooks):
    assert _parse(f'handler = "{hooks}"').handler == hooks


@pytest.mark.parametrize("hooks", ["hooks:preprocess", "hooks/pre", "my-hooks", "1hooks"])
def test_a_model_functions_handler_must_be_a_module_name(hooks):
    message = _error(f'handler = "{hooks}"')
    assert "with function.model, function.handler names a module" in message
    assert message.endswith(f"got {hooks!r}")


@pytest.mark.parametrize("path", ["/models/model.onnx", "../model.onnx", "a/../../model.onnx"])
def test_a_model_path_outside_the_bundle_is_refused(path):
    message = _error(base=f'[function]\nname = "iris"\nmodel = "{path}"\n')
    assert message == (
        f"mlambda.toml: function.model must be a path inside the bundle, got {path!r}"
    )


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_every_built_in_framework_may_be_named(framework):
    assert _parse(f'framework = "{framework}"').framework == framework


@pytest.mark.parametrize(
    ("framework", "hint"),
    [
        ("sklern", " (did you mean 'sklearn'?)"),
        ("pytorh", " (did you mean 'pytorch'?)"),
        ("sentence_transformers", " (did you mean 'sentence-transformers'?)"),
        ("caffe", ""),
    ],
)
def test_an_unknown_framework_is_refused_with_a_did_you_mean(framework, hint):
    message = _error(f'framework = "{framework}"')
    assert f"function.framework {framework!r} is not a built-in runtime{hint};" in message
    assert message.endswith("choose one of " + ", ".join(FRAMEWORKS))


def test_the_frameworks_packages_are_preloaded_before_the_specs_own():
    spec = _parse('framework = "onnx"', 'preload = ["pandas", "numpy"]')
    # onnx reads the weights a template shares, where it is installed (it is, for the tests).
    assert spec.modules_to_preload == ["numpy", "onnxruntime", "onnx", "pandas"]


# -- [function.batch] -----------------------------------------------------------------------


def test_every_batch_field_written_is_read():
    spec = _parse("[function.batch]", "max_size = 32", "max_wait_ms = 5", "max_bytes = 1024")
    assert spec.batch == BatchSpec(max_size=32, max_wait_ms=5.0, max_bytes=1024)


def test_an_empty_batch_table_turns_batching_on_with_the_defaults():
    assert _parse("[function.batch]").batch == BatchSpec(
        max_size=8, max_wait_ms=0.0, max_bytes=6 * 1024 * 1024
    )


def test_batch_may_be_written_inline_and_for_a_code_function():
    base = '[function]\nname = "echo"\nhandler = "app:handler"\n'
    assert _parse("batch = {max_size = 4}", base=base).batch == BatchSpec(max_size=4)


@pytest.mark.parametrize(
    ("field", "hint"),
    [
        ("max_sise", " (did you mean function.batch.max_size?)"),
        ("max_wait", " (did you mean function.batch.max_wait_ms?)"),
        ("timeout", ""),
    ],
)
def test_an_unknown_batch_field_is_named_with_a_hint(field, hint):
    message = _error("[function.batch]", f"{field} = 1")
    assert message == f"mlambda.toml: unknown field function.batch.{field}{hint}"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_size", "1"),
        ("max_size", "4096"),
        ("max_wait_ms", "0"),
        ("max_wait_ms", "10000"),
        ("max_bytes", "1"),
        ("max_bytes", str(64 * 1024 * 1024)),
    ],
)
def test_batch_numbers_at_the_ends_of_their_range_are_accepted(field, value):
    batch = _parse("[function.batch]", f"{field} = {value}").batch
    assert getattr(batch, field) == float(value)


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("max_size", "0", "0"),
        ("max_size", "4097", "4097"),
        ("max_size", "-1", "-1"),
        ("max_wait_ms", "-1", "-1.0"),
        ("max_wait_ms", "10001", "10001.0"),
        ("max_wait_ms", "nan", "nan"),
        ("max_bytes", "0", "0"),
        ("max_bytes", str(64 * 1024 * 1024 + 1), str(64 * 1024 * 1024 + 1)),
    ],
)
def test_batch_numbers_out_of_range_are_refused_naming_the_field(field, value, shown):
    message = _error("[function.batch]", f"{field} = {value}")
    assert f"function.batch.{field} must be between" in message
    assert message.endswith(f", got {shown}")


def test_a_batch_field_of_the_wrong_type_is_named():
    message = _error("[function.batch]", 'max_size = "8"')
    assert message == "mlambda.toml: function.batch.max_size: expected `int`, got `str`"


# -- pickle ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["model.pkl", "model.pickle", "model.joblib", "dir/MODEL.PKL"])
def test_a_pickle_model_without_trust_is_refused_with_how_to_fix(model):
    message = _error(base=f'[function]\nname = "iris"\nmodel = "{model}"\n')
    assert f"refusing to load {model!r}" in message
    assert "run arbitrary code" in message
    assert "skops.io.dump(model, 'model.skops')" in message
    assert "trust_pickle = true" in message
    assert "--trust-pickle" in message


def test_a_pickle_model_with_trust_pickle_is_accepted():
    spec = _parse("trust_pickle = true", base='[function]\nname = "iris"\nmodel = "m.joblib"\n')
    assert spec.trust_pickle is True


def test_a_skops_model_needs_no_trust():
    assert _parse(base='[function]\nname = "iris"\nmodel = "m.skops"\n').model == "m.skops"


# -- framework detection --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "framework"),
    [
        ("model.skops", "sklearn"),
        ("model.joblib", "sklearn"),
        ("model.pkl", "sklearn"),
        ("model.json", "xgboost"),
        ("model.ubj", "xgboost"),
        ("model.txt", "lightgbm"),
        ("model.onnx", "onnx"),
        ("model.pt", "pytorch"),
        ("model.pt2", "pytorch"),
        ("model.tflite", "tflite"),
        ("nested/dir/Model.ONNX", "onnx"),
        ("model.bin", None),
        ("model", None),
    ],
)
def test_a_model_files_suffix_names_its_framework(path, framework):
    assert detect(path, False) == framework


@pytest.mark.parametrize(
    ("files", "framework"),
    [
        ({"modules.json", "model.safetensors"}, "sentence-transformers"),
        ({"config_sentence_transformers.json"}, "sentence-transformers"),
        ({"config.json", "model.safetensors"}, None),
        (set(), None),
    ],
)
def test_a_model_directory_is_known_by_its_marker_files(files, framework):
    assert detect("encoder", True, frozenset(files)) == framework


def test_a_directory_named_like_a_model_file_is_not_detected_by_its_suffix():
    assert detect("model.onnx", True, frozenset({"weights"})) is None


# -- bundles of a bare model ----------------------------------------------------------------


def test_a_bare_model_file_is_bundled_with_a_generated_spec(tmp_path):
    path = tmp_path / "iris.skops"
    path.write_bytes(b"skops")
    archive, spec = bundle.pack_path(path)
    assert _names(archive) == ["iris.skops", "mlambda.toml"]
    assert (spec.name, spec.model) == ("iris", "iris.skops")
    read = bundle.read_spec(archive)
    assert (read.name, read.model, read.framework) == ("iris", "iris.skops", "sklearn")


@pytest.mark.parametrize(
    ("file_name", "function_name"),
    [
        ("iris.v2.onnx", "iris"),
        ("my model (final).onnx", "my-model-final"),
        ("résumé.onnx", "r-sum"),
        ("---.onnx", "model"),
    ],
)
def test_a_bare_model_files_function_is_named_after_its_stem(tmp_path, file_name, function_name):
    path = tmp_path / file_name
    path.write_bytes(b"onnx")
    archive, spec = bundle.pack_path(path)
    assert spec.name == function_name
    assert bundle.read_spec(archive).model == file_name


def test_name_overrides_the_bare_model_files_stem(tmp_path):
    path = tmp_path / "iris.onnx"
    path.write_bytes(b"onnx")
    archive, spec = bundle.pack_path(path, name="flowers")
    assert spec.name == "flowers"
    assert bundle.read_spec(archive).name == "flowers"


def test_framework_given_for_a_bare_model_file_is_kept(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"onnx")
    archive, _ = bundle.pack_path(path, framework="onnx")
    assert bundle.read_spec(archive).framework == "onnx"


def test_a_bare_model_file_of_unknown_kind_is_refused_listing_the_known_suffixes(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"?")
    archive, _ = bundle.pack_path(path)
    with pytest.raises(InvalidSpec) as caught:
        bundle.read_spec(archive)
    message = str(caught.value)
    assert "cannot tell the framework of 'weights.bin' from its name" in message
    for suffix in (".skops", ".joblib", ".json", ".ubj", ".txt", ".onnx", ".pt", ".tflite"):
        assert re.search(rf"{re.escape(suffix)}[,)]", message), suffix
    assert "set function.framework to one of " + ", ".join(FRAMEWORKS) in message


def test_a_bare_pickle_file_is_refused_unless_trusted(tmp_path):
    path = tmp_path / "iris.joblib"
    path.write_bytes(b"pickle")
    with pytest.raises(InvalidSpec, match=re.escape("--trust-pickle")):
        bundle.pack_path(path)
    archive, spec = bundle.pack_path(path, trust_pickle=True)
    assert spec.trust_pickle
    assert bundle.read_spec(archive).framework == "sklearn"


def test_a_sentence_transformers_directory_is_bundled_under_model(tmp_path):
    archive, spec = bundle.pack_path(_model_dir(tmp_path))
    assert _names(archive) == [
        "mlambda.toml",
        "model/1_Pooling/config.json",
        "model/model.safetensors",
        "model/modules.json",
    ]
    assert (spec.name, spec.model) == ("minilm", "model")
    assert bundle.read_spec(archive).framework == "sentence-transformers"


def test_a_directory_that_is_neither_a_function_nor_a_model_is_refused(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"?")
    with pytest.raises(InvalidSpec, match="it is not a model directory"):
        bundle.pack_path(tmp_path)


def test_a_model_directory_of_a_named_framework_needs_no_marker(tmp_path):
    directory = tmp_path / "saved"
    directory.mkdir()
    (directory / "weights.bin").write_bytes(b"?")
    archive, _ = bundle.pack_path(directory, framework="sentence-transformers")
    assert bundle.read_spec(archive).framework == "sentence-transformers"


def test_a_missing_path_is_refused(tmp_path):
    with pytest.raises(InvalidSpec, match="no such file or directory"):
        bundle.pack_path(tmp_path / "absent.onnx")


# -- bundles with mlambda.toml --------------------------------------------------------------


def test_a_function_directory_serving_a_model_keeps_its_own_spec(tmp_path):
    (tmp_path / "mlambda.toml").write_text(MODEL + 'handler = "hooks"\n')
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    (tmp_path / "hooks.py").write_text("def preprocess(rows):\n    return rows\n")
    archive, spec = bundle.pack_path(tmp_path, name="renamed")
    assert _names(archive) == ["hooks.py", "mlambda.toml", "model.onnx"]
    assert spec.name == "renamed"
    read = bundle.read_spec(archive)
    assert (read.framework, read.handler) == ("onnx", "hooks")


def test_a_model_directory_inside_a_function_bundle_is_detected():
    toml = b'[function]\nname = "embed"\nmodel = "encoder"\n'
    archive = _tar(("mlambda.toml", toml), ("encoder/modules.json", b"[]"))
    assert bundle.read_spec(archive).framework == "sentence-transformers"


def test_a_framework_set_in_the_spec_wins_over_the_suffix():
    toml = MODEL.encode() + b'framework = "tflite"\n'
    archive = _tar(("mlambda.toml", toml), ("model.onnx", b"x"))
    assert bundle.read_spec(archive).framework == "tflite"


def test_a_model_path_missing_from_the_bundle_is_refused():
    archive = _tar(("mlambda.toml", MODEL.encode()), ("other.onnx", b"x"))
    with pytest.raises(InvalidSpec) as caught:
        bundle.read_spec(archive)
    assert str(caught.value) == "mlambda.toml: function.model 'model.onnx' is not in the bundle"


def test_a_hooks_module_missing_from_the_bundle_is_refused():
    toml = MODEL.encode() + b'handler = "pkg.hooks"\n'
    archive = _tar(("mlambda.toml", toml), ("model.onnx", b"x"))
    with pytest.raises(InvalidSpec, match=re.escape("(the hooks module) is not in the bundle")):
        bundle.read_spec(archive)
    with_package = _tar(
        ("mlambda.toml", toml), ("model.onnx", b"x"), ("pkg/hooks/__init__.py", b"")
    )
    assert bundle.read_spec(with_package).handler == "pkg.hooks"


# -- edge cases found while writing these tests ---------------------------------


def test_a_model_path_starting_with_dot_slash_is_found():
    toml = b'[function]\nname = "iris"\nmodel = "./model.onnx"\n'
    archive = _tar(("mlambda.toml", toml), ("model.onnx", b"x"))
    assert bundle.read_spec(archive).framework == "onnx"


def test_a_pickle_model_with_a_trailing_slash_is_still_refused():
    toml = b'[function]\nname = "iris"\nmodel = "model.pkl/"\n'
    archive = _tar(("mlambda.toml", toml), ("model.pkl", b"x"))
    with pytest.raises(InvalidSpec, match="refusing to load"):
        bundle.read_spec(archive)


def test_a_runtime_whose_packages_are_missing_is_refused_at_deploy_naming_the_extra(monkeypatch):
    from mlambda.errors import InvalidSpec
    from mlambda.handler_check import check_runtime_installed
    from mlambda.runtime import loaders
    from mlambda.spec import spec_from_dict

    absent = dataclasses.replace(
        loaders.FRAMEWORKS["onnx"], requires=("onnxruntime", "no_such_module_for_mlambda")
    )
    monkeypatch.setitem(loaders.FRAMEWORKS, "onnx", absent)
    spec = spec_from_dict({"name": "m", "model": "m.onnx", "framework": "onnx"})
    with pytest.raises(InvalidSpec) as caught:
        check_runtime_installed(spec)
    assert str(caught.value) == (
        "the onnx runtime needs no_such_module_for_mlambda, which is not installed where "
        "mlambda serve runs: pip install 'mlambda[onnx]' (from the mlambda checkout: "
        "pip install -e '.[onnx]')"
    )
    check_runtime_installed(spec_from_dict({"name": "h", "handler": "app:handler"}))


def test_deploy_flags_for_bare_models_are_refused_for_a_function_directory(tmp_path):
    (tmp_path / "mlambda.toml").write_text('[function]\nname = "m"\nmodel = "m.onnx"\n')
    (tmp_path / "m.onnx").write_bytes(b"onnx")
    for options in ({"framework": "onnx"}, {"trust_pickle": True}):
        with pytest.raises(InvalidSpec, match=r"has its own mlambda\.toml: set framework"):
            bundle.pack_path(tmp_path, **options)


def test_skops_is_preloaded_only_for_skops_files():
    from mlambda.spec import spec_from_dict

    skops_spec = spec_from_dict({"name": "a", "model": "m.skops", "framework": "sklearn"})
    pickled = spec_from_dict(
        {"name": "b", "model": "m.joblib", "framework": "sklearn", "trust_pickle": True}
    )
    assert skops_spec.modules_to_preload == ["numpy", "sklearn", "skops.io"]
    assert pickled.modules_to_preload == ["numpy", "sklearn"]

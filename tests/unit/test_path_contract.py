"""The contract every path module keeps (navigator/paths/base.py ConversionPath), checked per module:
its hooks (through the registry's Plugin), its search space, an import-free available(), a conversion
that validates where the path runs here, a Triton config that survives protobuf text, and a Triton home
for every searched runtime parameter."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from navigator import paths
from navigator.errors import TrialError
from navigator.paths.base import TritonTarget
from navigator.records import Artifact, IOSpec, TensorSpec
from navigator.search import space as space_mod
from navigator.trial.validate import TOLERANCES, tolerance
from navigator.triton import config as triton_config
from navigator.triton import fil, python_backend

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "onnxruntime", "tensorflow", "openvino", "xgboost", "tensorrt")
KINDS = {"torch": "exported", "onnx": "onnx", "tf": "savedmodel", "trees": "xgboost"}
IO = IOSpec((TensorSpec("x", "float32", (None, 16)),), (TensorSpec("y", "float32", (None, 4)),))


def source_of(name: str) -> tuple[str, str]:
    framework = paths.get(name).frameworks[0]
    return framework, KINDS[framework]


def plain(space: space_mod.PathSpace, source: tuple[str, str], overrides: dict) -> dict:
    return {k.split(".", 1)[1]: v for k, v in space_mod.defaults(space, source, overrides).items()}


def variations(name: str) -> list[tuple[str, dict, dict]]:
    """(runtime parameter, params, the same params with only that parameter changed), around the
    defaults, with the parameter's `when` conditions met."""
    space, source = space_mod.load(name), source_of(name)
    out = []
    for p in space_mod.active(space, source):
        if p.stage != "runtime":
            continue
        needs = {k: (v[0] if isinstance(v, list) else v) for k, v in p.when.items()}
        base = plain(space, source, needs)
        values = [v for v in (p.choices or (p.high, p.low)) if v != base.get(p.name)]
        if p.name not in base or not values:
            continue
        other = plain(space, source, {**needs, p.name: values[0]})
        if other.get(p.name) == values[0]:
            out.append((p.name, base, other))
    return out


def artifact_dir(tmp_path: Path, name: str, params: dict) -> Artifact:
    """What a path's triton() reads from its artifact: a model file, a forest saved for FIL (beside the
    artifact or in its fil/), the SavedModel TF-TRT points at, the ORT TensorRT profile."""
    file = tmp_path / "model.bin"
    file.write_bytes(b"x")
    for forest in (tmp_path, tmp_path / "fil"):
        forest.mkdir(exist_ok=True)
        fil.write_meta(forest, "xgboost_json", "multiclass", 16, 4)
        (forest / fil.FILES["xgboost_json"]).write_text("{}")
    (tmp_path / "saved").mkdir(exist_ok=True)
    (tmp_path / "original.txt").write_text(str(tmp_path / "saved"))
    (tmp_path / "trt_profile.json").write_text("{}")
    return Artifact(name, tmp_path, "key", dict(params), file)


def served(artifact: Artifact, name: str, params: dict, target: TritonTarget) -> str:
    """The Triton config text of triton()'s model, or the reason it is refused; with the params its
    python-backend twin reads (twin.json), the home of what a python-backend config does not spell out."""
    try:
        model = paths.get(name).triton(artifact, params, target)
    except TrialError as exc:
        return f"refused: {exc}"
    spec = model.files.get(python_backend.SPEC)
    twin = f"\n# twin: {json.dumps(python_backend.read_spec(spec), sort_keys=True)}" if spec else ""
    return triton_config.to_text(triton_config.build("m", model.io or IO, model, 8)) + twin


# Hooks --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", paths.NAMES)
def test_every_hook_is_present_with_its_default(name):
    module = importlib.import_module(f"navigator.paths.{name}")
    assert paths.problems(module) == []
    plugin = paths.get(name)
    assert plugin.name == name and plugin.frameworks and set(plugin.devices) <= {"cpu", "cuda"}
    assert 0 < plugin.cost_s <= plugin.timeout_s and plugin.engine
    assert all(f in plugin.frameworks for f, _ in plugin.baseline)
    assert set(plugin.twin_only) <= {p.name for p in space_mod.load(name).params if p.stage == "runtime"}


@pytest.mark.parametrize("name", paths.NAMES)
def test_precision_classes_are_declared_and_have_a_tolerance(name):
    plugin = paths.get(name)
    assert set(plugin.precision_classes) <= set(TOLERANCES), "a class validation has no tolerance for"
    space, source = space_mod.load(name), source_of(name)
    points = space_mod.points(space, source, cap=5000) or []
    for convert, runtime in points or [({}, {})]:
        assert plugin.precision({**convert, **runtime}) in plugin.precision_classes


def test_each_role_has_one_path():
    for framework in ("torch", "onnx", "tf", "trees"):
        for device in ("cpu", "cuda"):
            claims = [n for n in paths.NAMES if (framework, device) in paths.get(n).baseline]
            assert len(claims) == 1, (framework, device, claims)
    for device in ("cpu", "cuda"):
        assert [n for n in paths.NAMES if device in paths.get(n).reference] == [paths.reference(device)]
    assert paths.baseline("torch", "cpu") == "eager" and paths.reference("cuda") == "ort_cuda"


def broken_path(**names: object) -> types.ModuleType:
    module = types.ModuleType("navigator_test_broken")
    for hook in paths.REQUIRED:
        setattr(module, hook, getattr(importlib.import_module("navigator.paths.eager"), hook))
    for key, value in names.items():
        setattr(module, key, value)
    return module


@pytest.mark.parametrize("names, expected", [
    ({"precison": lambda params: "fp16"}, "precison looks like a misspelt precision"),
    ({"COSTS_S": 3.0}, "COSTS_S looks like a misspelt COST_S"),
    ({"narrow": 3}, "narrow is not a function"),
    ({"BASELINE": "eager"}, "BASELINE is not a tuple"),
])
def test_a_misspelt_or_mistyped_hook_is_refused(monkeypatch, names, expected):
    module = broken_path(**names)
    assert any(expected in p for p in paths.problems(module))
    with pytest.raises(paths.PathModuleError, match=expected):
        paths.plugin(module)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(paths.EXTRA, "broken", module.__name__)
    [candidate] = paths.candidates("torch", "cpu", ("broken",))
    assert candidate.reason is not None and expected in candidate.reason
    delattr(module, "convert")
    assert "no convert" in paths.problems(module)


def test_a_precision_nobody_declared_is_refused_not_a_key_error():
    plugin = paths.plugin(broken_path(precision=lambda params: "fp4", PRECISION_CLASSES=("fp32",)))
    with pytest.raises(TrialError, match="'fp4', which is not one of its PRECISION_CLASSES"):
        plugin.precision({})
    with pytest.raises(TrialError, match="no validation tolerance for precision 'fp4'"):
        tolerance("fp4")


# Search space and availability ------------------------------------------------------------------------

@pytest.mark.parametrize("name", paths.NAMES)
def test_the_search_space_parses_and_narrows(name):
    space = space_mod.load(name)
    assert space.path == name and space.params
    assert [p.name for p in paths.space(name).params] == [p.name for p in space.params]


@pytest.mark.parametrize("name", paths.NAMES)
def test_available_is_fast_and_imports_no_framework(name):
    code = (f"import json, sys, time\nfrom navigator import paths\nplugin = paths.get({name!r})\n"
            "start = time.perf_counter()\nreason = plugin.available()\n"
            "print(json.dumps({'s': time.perf_counter() - start, 'reason': reason,\n"
            f"                  'imported': [m for m in {HEAVY!r} if m in sys.modules]}}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["imported"] == [] and got["s"] < 1.0, got
    assert got["reason"] is None or isinstance(got["reason"], str)


# Conversion, validation, Triton ----------------------------------------------------------------------------

def small_forest(tmp_path: Path) -> Path:
    """A small XGBoost binary classifier (8 trees of depth 3 on 6 features), saved as JSON."""
    xgb = pytest.importorskip("xgboost")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 6)).astype(np.float32)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 1, "seed": 0},
                        xgb.DMatrix(x, label=(x[:, 0] + x[:, 1] > 0)), num_boost_round=8)
    booster.save_model(str(tmp_path / "forest.json"))
    return tmp_path / "forest.json"


def smallest_source(framework: str, tmp_path: Path):
    """The smallest model of `framework` here: the mlp fixture (torch, ONNX), a small forest (trees)."""
    from navigator.source import load_source

    if framework == "trees":
        return load_source(small_forest(tmp_path), batch=2)
    pytest.importorskip("torch" if framework == "torch" else "onnx")
    fixture = ROOT / "fixtures" / "out" / ("mlp.pt2" if framework == "torch" else "mlp.onnx")
    if not fixture.is_file():
        pytest.skip(f"{fixture} missing (python fixtures/make.py)")
    return load_source(fixture, batch=2)


@pytest.mark.parametrize("name", paths.NAMES)
def test_convert_load_validate_on_the_smallest_fixture(name, tmp_path):
    from navigator.settings import StudySettings
    from navigator.cache import Cache
    from navigator.trial.run import TrialContext, check

    plugin = paths.get(name)
    framework = next((f for f in ("onnx", "torch", "trees") if f in plugin.frameworks), None)
    if framework is None:
        pytest.skip(f"{name} takes {plugin.frameworks}: no small model here (tests/test_tf.py covers it)")
    if plugin.available() is not None:
        pytest.skip(plugin.available())
    source = smallest_source(framework, tmp_path)
    if "int8" in plugin.precision_classes:  # the fixture's generated inputs stand in for real ones
        source.calibration = source.samples
    ctx = TrialContext(source, Cache(tmp_path / "cache", source.fingerprint), StudySettings())
    space = space_mod.load(name)
    config = space_mod.config_of(space, 0, space_mod.defaults(space, (source.framework, source.kind), {}), 2)
    convert, runtime = config.convert, config.runtime
    if "threads" in runtime:  # this pytest process's OpenMP may be capped at 1 thread by earlier tests (tl2cgen checks)
        runtime = {**runtime, "threads": 1}
    artifact = plugin.convert(source, convert, ctx.cache, ctx.target)
    runner = plugin.load(artifact, source, {**convert, **runtime})
    _, validation = check(ctx, config, runner, 2)
    assert validation.ok, validation.reason
    assert runner.host_call(ctx.inputs(2)) is None or callable(runner.host_call(ctx.inputs(2)))
    text = served(artifact, name, {**convert, **runtime}, TritonTarget())
    text = text.split("\n# twin: ")[0]
    assert text.startswith("refused") or triton_config.from_text(text) == triton_config.from_text(
        triton_config.to_text(triton_config.from_text(text)))


@pytest.mark.parametrize("name", paths.NAMES)
@pytest.mark.parametrize("release", [None, "25.02"])
def test_triton_round_trips_through_text_format(name, release, tmp_path):
    space, source = space_mod.load(name), source_of(name)
    params = plain(space, source, {})
    text = served(artifact_dir(tmp_path, name, params), name, params, TritonTarget(release)).split("\n# twin: ")[0]
    if text.startswith("refused"):
        assert "deprecated" in text and release is None, text  # TensorFlow's backend on current servers
        return
    config = triton_config.from_text(text)
    assert triton_config.to_text(config) == text and config.name == "m"


@pytest.mark.parametrize("name", paths.NAMES)
def test_every_searched_runtime_parameter_has_a_triton_home_or_is_twin_only(name, tmp_path):
    """Changing one runtime parameter changes what triton() writes (or whether it can), unless the
    path declares the parameter TWIN_ONLY."""
    plugin = paths.get(name)
    release = "25.02" if "tf" in plugin.frameworks and plugin.frameworks == ("tf",) else None
    homeless = []
    for param, base, other in variations(name):
        artifact = artifact_dir(tmp_path, name, base)
        if served(artifact, name, base, TritonTarget(release)) == served(artifact, name, other, TritonTarget(release)):
            homeless.append(param)
    assert sorted(homeless) == sorted(plugin.twin_only)


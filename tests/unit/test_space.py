"""navigator/search/space.py: YAML parsing, packaged spaces, define-by-run suggestions, defaults, hash."""

from __future__ import annotations

import textwrap

import optuna
import pytest

from navigator import env, paths
from navigator.errors import InputError
from navigator.records import ParamSpec
from navigator.search import space as space_mod
from navigator.search.space import SOURCES, PathSpace, defaults, load, parse, space_hash, suggest

optuna.logging.set_verbosity(optuna.logging.ERROR)

TORCH = ("torch", "module")
ONNX = ("onnx", "onnx")
LABEL = "spaces/demo.yaml"

GOOD = textwrap.dedent(
    """
    path: demo
    params:
      exporter: {stage: convert, choices: [dynamo, torchscript], sources: [torch]}
      threads:  {stage: runtime, int: [1, 8]}
      mode:     {stage: runtime, choices: [sequential, parallel]}
      inter:    {stage: runtime, int: [2, 16], log: true, when: {mode: parallel}}
    """
)


@pytest.fixture
def fixed_ncpu(monkeypatch):
    monkeypatch.setattr(space_mod, "ncpu", lambda: 6)
    return 6


def test_parse_good_yaml():
    space = parse(GOOD, LABEL)
    assert space.path == "demo"
    assert [p.name for p in space.params] == ["exporter", "threads", "mode", "inter"]
    exporter, threads, mode, inter = space.params
    assert exporter == ParamSpec("exporter", "convert", ("dynamo", "torchscript"), sources=("torch",))
    assert (threads.stage, threads.choices, threads.low, threads.high, threads.log) == ("runtime", (), 1, 8, False)
    assert mode.choices == ("sequential", "parallel")
    assert (inter.low, inter.high, inter.log, inter.when) == (2, 16, True, {"mode": "parallel"})


def test_parse_empty_params_mapping():
    assert parse("path: x\nparams: {}\n", LABEL) == PathSpace("x", ())
    assert parse("path: x\n", LABEL) == PathSpace("x", ())


@pytest.mark.parametrize(
    ("param_yaml", "param"),
    [
        ("foo: {choices: [a, b]}", "foo"),  # missing stage
        ("foo: {stage: compile, choices: [a, b]}", "foo"),  # unknown stage
        ("foo: {stage: runtime, choices: [a, b], int: [1, 2]}", "foo"),  # both choices and int
        ("foo: {stage: runtime}", "foo"),  # neither choices nor int
        ("foo: {stage: runtime, choices: [a], frameworks: [torch]}", "foo"),  # unknown key
        ("foo: {stage: runtime, choices: []}", "foo"),  # empty choices
        ("foo: {stage: runtime, choices: a}", "foo"),  # choices not a list
        ("foo: {stage: runtime, int: [1]}", "foo"),  # int not [low, high]
        ("foo: {stage: runtime, int: [5, 2]}", "foo"),  # low > high
        ("foo: {stage: runtime, int: [1, ncpus]}", "foo"),  # bad bound
        ("foo: {stage: runtime, int: [1.5, 4]}", "foo"),  # float bound
        ("foo: {stage: runtime, int: [true, 4]}", "foo"),  # bool is not an int bound
        ("foo: {stage: runtime, choices: [a], when: [x]}", "foo"),  # when not a mapping
        ("foo: [1, 2]", "foo"),  # parameter not a mapping
        # `when` refers to a later param
        ("foo: {stage: runtime, choices: [a], when: {bar: x}}\n  bar: {stage: runtime, choices: [x, y]}", "foo"),
        ("foo: {stage: runtime, choices: [a], when: {foo: a}}", "foo"),  # ... or to itself
    ],
)
def test_parse_bad_param_names_file_and_param(param_yaml, param):
    text = f"path: demo\nparams:\n  ok: {{stage: runtime, choices: [1]}}\n  {param_yaml}\n"
    with pytest.raises(InputError) as info:
        parse(text, LABEL)
    message = str(info.value)
    assert LABEL in message
    assert param in message


def test_parse_unknown_key_is_named():
    with pytest.raises(InputError, match="frameworks"):
        parse("path: d\nparams:\n  foo: {stage: runtime, choices: [a], frameworks: [torch]}\n", LABEL)


def test_parse_when_error_names_the_missing_param():
    text = "path: d\nparams:\n  foo: {stage: runtime, choices: [a], when: {bar: x}}\n  bar: {stage: runtime, choices: [x]}\n"
    with pytest.raises(InputError, match="'foo'.*bar"):
        parse(text, LABEL)


@pytest.mark.parametrize(
    "text",
    [
        "- just\n- a list\n",  # not a mapping
        "hello",  # a scalar
        "",  # empty document
        "params: {}\n",  # no path
        "path: 3\nparams: {}\n",  # path not a string
        "path: d\nparams: [a, b]\n",  # params not a mapping
        "path: d\nparams: {a: [unclosed\n",  # not YAML
    ],
)
def test_parse_bad_document_names_file(text):
    with pytest.raises(InputError, match=LABEL):
        parse(text, LABEL)


def test_parse_sources_given_as_a_scalar_is_rejected_or_kept_whole():
    text = "path: d\nparams:\n  foo: {stage: convert, choices: [a], sources: torch}\n"
    try:
        space = parse(text, LABEL)
    except InputError as exc:
        assert LABEL in str(exc) and "foo" in str(exc)
        return
    assert space.params[0].sources == ("torch",)


def test_ncpu_bound_resolution(fixed_ncpu):
    space = parse("path: d\nparams:\n  t: {stage: runtime, int: [1, ncpu]}\n  u: {stage: runtime, int: [ncpu, ncpu]}\n", LABEL)
    assert (space.params[0].low, space.params[0].high) == (1, fixed_ncpu)
    assert (space.params[1].low, space.params[1].high) == (fixed_ncpu, fixed_ncpu)


def test_ncpu_bound_can_make_low_exceed_high(monkeypatch):
    monkeypatch.setattr(space_mod, "ncpu", lambda: 2)
    with pytest.raises(InputError, match="'t'"):
        parse("path: d\nparams:\n  t: {stage: runtime, int: [4, ncpu]}\n", LABEL)


def test_ncpu_is_affinity_aware(monkeypatch):
    monkeypatch.setattr(env.os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert env.ncpu() == 3


@pytest.mark.parametrize("name", paths.NAMES)
def test_every_packaged_space_loads(name):
    space = load(name)
    assert space.path == name
    assert space.params, f"searchspace/{name}.yaml has no params"
    names = [p.name for p in space.params]
    assert len(names) == len(set(names))
    for p in space.params:
        assert p.stage in ("convert", "runtime"), p
        assert bool(p.choices) != (p.high > 0), p  # exactly one of choices / int
        if not p.choices:
            assert 1 <= p.low <= p.high, p  # thread/stream counts start at one
        for src in p.sources:
            assert src in SOURCES, (name, p)


def test_packaged_ort_cpu_space_matches_the_runtime_mappings():
    from navigator.paths import _ort_triton
    from navigator.runtimes import ort as _ort

    levels = next(p for p in load("ort_cpu").params if p.name == "graph_optimization_level")
    assert set(levels.choices) == set(_ort_triton.TRITON_GRAPH_LEVEL) == set(_ort.LEVELS)


def test_packaged_openvino_precisions_are_known():
    from navigator.paths import _openvino

    precision = next(p for p in load("openvino").params if p.name == "inference_precision")
    assert set(precision.choices) <= set(_openvino.PRECISIONS)


def test_load_unknown_path_raises():
    with pytest.raises(InputError, match="nope"):
        load("nope")


def test_load_override_dir(tmp_path):
    (tmp_path / "ort_cpu.yaml").write_text("path: ort_cpu\nparams:\n  only: {stage: runtime, choices: [1, 2]}\n")
    assert [p.name for p in load("ort_cpu", tmp_path).params] == ["only"]
    # a directory without the file falls back to the packaged space
    assert load("eager", tmp_path) == load("eager")


def test_load_override_with_wrong_path_raises(tmp_path):
    (tmp_path / "ort_cpu.yaml").write_text("path: openvino\nparams: {}\n")
    with pytest.raises(InputError, match="openvino"):
        load("ort_cpu", tmp_path)


def test_suggest_with_a_real_trial_prefixes_names():
    space = load("ort_cpu")
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1)).ask()
    convert, runtime = suggest(trial, space, TORCH)
    assert all(k.startswith("ort_cpu.") for k in trial.params), trial.params
    assert set(convert) == {"exporter", "opset", "fusion"}
    for name, value in {**convert, **runtime}.items():
        assert trial.params[f"ort_cpu.{name}"] == value
    by_name = {p.name: p for p in space.params}
    for name, value in {**convert, **runtime}.items():
        p = by_name[name]
        assert (p.stage == "convert") == (name in convert)
        if p.choices:
            assert value in p.choices
        else:
            assert p.low <= value <= p.high
    assert ("inter_op_num_threads" in runtime) == (runtime["execution_mode"] == "parallel")


def test_suggest_sources_filter_torch_only_params():
    space = load("ort_cpu")
    trial = optuna.create_study().ask()
    convert, runtime = suggest(trial, space, ONNX)
    assert set(convert) == {"fusion"}  # an ONNX file is fused, not exported
    assert not any(k in trial.params for k in ("ort_cpu.exporter", "ort_cpu.opset"))
    assert "graph_optimization_level" in runtime


def test_suggest_sources_match_on_kind():
    space = load("torchscript")
    params = {"torchscript.method": "script", "torchscript.freeze": False, "torchscript.threads": 1}
    convert, _ = suggest(optuna.trial.FixedTrial(params), space, ("torch", "module"))
    assert convert == {"method": "script", "freeze": False}
    # an exported program or a TorchScript source gets no `method` (FixedTrial would take it if asked)
    for kind in ("exported", "torchscript"):
        convert, _ = suggest(optuna.trial.FixedTrial(params), space, ("torch", kind))
        assert convert == {"freeze": False}


ORT_BASE = {
    "ort_cpu.fusion": "off",
    "ort_cpu.graph_optimization_level": "basic",
    "ort_cpu.intra_op_num_threads": 1,
    "ort_cpu.enable_mem_pattern": True,
    "ort_cpu.enable_cpu_mem_arena": False,
}


def test_suggest_when_skips_param_for_sequential():
    # FixedTrial raises for a name it was not given: inter_op_num_threads must not be asked for.
    trial = optuna.trial.FixedTrial({**ORT_BASE, "ort_cpu.execution_mode": "sequential"})
    convert, runtime = suggest(trial, load("ort_cpu"), ONNX)
    assert convert == {"fusion": "off"}
    assert runtime == {
        "graph_optimization_level": "basic",
        "intra_op_num_threads": 1,
        "execution_mode": "sequential",
        "enable_mem_pattern": True,
        "enable_cpu_mem_arena": False,
    }


def test_suggest_when_asks_param_for_parallel():
    trial = optuna.trial.FixedTrial({**ORT_BASE, "ort_cpu.execution_mode": "parallel",
                                     "ort_cpu.inter_op_num_threads": 1})
    _, runtime = suggest(trial, load("ort_cpu"), ONNX)
    assert runtime["execution_mode"] == "parallel"
    assert runtime["inter_op_num_threads"] == 1


def test_suggest_when_with_enqueued_trials():
    space = load("ort_cpu")
    study = optuna.create_study()
    study.enqueue_trial({**ORT_BASE, "ort_cpu.execution_mode": "parallel", "ort_cpu.inter_op_num_threads": 1})
    study.enqueue_trial({**ORT_BASE, "ort_cpu.execution_mode": "sequential"})
    first, second = study.ask(), study.ask()
    _, runtime = suggest(first, space, ONNX)
    assert runtime["execution_mode"] == "parallel" and runtime["inter_op_num_threads"] == 1
    _, runtime = suggest(second, space, ONNX)
    assert runtime["execution_mode"] == "sequential"
    assert "inter_op_num_threads" not in runtime
    assert "ort_cpu.inter_op_num_threads" not in second.params


def test_defaults(fixed_ncpu):
    space = load("ort_cpu")
    onnx_defaults = defaults(space, ONNX, {})
    assert onnx_defaults == {
        "ort_cpu.fusion": "off",
        "ort_cpu.graph_optimization_level": "all",
        "ort_cpu.intra_op_num_threads": fixed_ncpu,  # the high bound
        "ort_cpu.execution_mode": "sequential",
        "ort_cpu.enable_mem_pattern": True,
        "ort_cpu.enable_cpu_mem_arena": True,
    }
    torch_defaults = defaults(space, TORCH, {})
    assert torch_defaults["ort_cpu.exporter"] == "dynamo"
    assert torch_defaults["ort_cpu.opset"] == 18
    # an override flips `when`: the conditional param appears with its default
    parallel = defaults(space, ONNX, {"execution_mode": "parallel", "intra_op_num_threads": 2})
    assert parallel["ort_cpu.execution_mode"] == "parallel"
    assert parallel["ort_cpu.intra_op_num_threads"] == 2
    assert parallel["ort_cpu.inter_op_num_threads"] == fixed_ncpu


def test_defaults_are_accepted_by_suggest():
    """Enqueued defaults (as the study does for baselines) replay through suggest exactly."""
    space = load("ort_cpu")
    d = defaults(space, TORCH, {"execution_mode": "parallel"})
    convert, runtime = suggest(optuna.trial.FixedTrial(d), space, TORCH)
    assert {f"ort_cpu.{k}": v for k, v in {**convert, **runtime}.items()} == d


def _demo(choices=("a", "b"), sources=()):
    return PathSpace("demo", (ParamSpec("x", "runtime", tuple(choices), sources=tuple(sources)),
                              ParamSpec("n", "runtime", (), 1, 4)))


def test_space_hash_is_stable_and_sensitive():
    base = space_hash([_demo()], ONNX, {"paths": ["demo"]})
    assert base == space_hash([_demo()], ONNX, {"paths": ["demo"]})
    assert len(base) == 64
    assert space_hash([_demo(choices=("a", "c"))], ONNX, {"paths": ["demo"]}) != base
    assert space_hash([_demo(choices=("b", "a"))], ONNX, {"paths": ["demo"]}) != base  # order matters
    changed_bound = PathSpace("demo", (_demo().params[0], ParamSpec("n", "runtime", (), 1, 5)))
    assert space_hash([changed_bound], ONNX, {"paths": ["demo"]}) != base
    assert space_hash([_demo()], ONNX, {"paths": ["demo"], "batch_sizes": [1]}) != base


def test_space_hash_ignores_params_inactive_for_the_source():
    torch_only = PathSpace("demo", _demo().params + (ParamSpec("exp", "convert", ("a",), sources=("torch",)),))
    torch_only_changed = PathSpace("demo", _demo().params + (ParamSpec("exp", "convert", ("z",), sources=("torch",)),))
    assert space_hash([torch_only], ONNX, {}) == space_hash([torch_only_changed], ONNX, {})
    assert space_hash([torch_only], TORCH, {}) != space_hash([torch_only_changed], TORCH, {})

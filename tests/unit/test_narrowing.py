"""--search-space DIR: the user keeps a subset of a path's values (search/narrowing.py); the search
proposes nothing else, the baseline and the reference keep their defaults, and a bad file is one line."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from navigator import cli, paths
from navigator.errors import InputError
from navigator.search import narrowing
from navigator.search import space as space_mod

TORCH = ("torch", "exported")


def _dir(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "ss"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text)
    return folder


def test_a_narrowed_space_keeps_the_packaged_order_bounds_and_replaces_presets(tmp_path: Path) -> None:
    folder = _dir(tmp_path, openvino="params:\n  inference_precision: [bf16, f32]\n  num_streams: [1, 1]\n"
                              "presets:\n  - {performance_hint: THROUGHPUT}\n")
    packaged = space_mod.load("openvino")
    space = space_mod.narrowed(packaged, folder)
    specs = {p.name: p for p in space.params}
    assert specs["inference_precision"].choices == ("f32", "bf16")  # packaged order: f32 stays the default
    assert (specs["num_streams"].low, specs["num_streams"].high) == (1, 1)
    assert specs["performance_hint"] == {p.name: p for p in packaged.params}["performance_hint"]  # not named
    assert [p.params for p in space.presets] == [{"performance_hint": "THROUGHPUT"}]
    assert space_mod.narrowed(space_mod.load("eager"), folder) == space_mod.load("eager")  # no file: as packaged
    trial_params = []
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(40):
        trial = study.ask()
        convert, runtime = space_mod.suggest(trial, space, TORCH)
        trial_params.append({**convert, **runtime})
        study.tell(trial, 1.0)
    assert {p["num_streams"] for p in trial_params} == {1}
    assert {p["inference_precision"] for p in trial_params} == {"f32", "bf16"}


def test_the_search_proposes_only_kept_values(tmp_path: Path) -> None:
    from navigator.records import Bench, TrialConfig, TrialOutcome
    from navigator.search.storage import StudyStorage
    from navigator.search.study import Search
    from navigator.settings import StudySettings

    folder = _dir(tmp_path, openvino="params:\n  exporter: [dynamo]\n  opset: [18]\n  performance_hint: [LATENCY]\n"
                                     "  inference_num_threads: [2, 2]\n  num_streams: [1, 2]\n  "
                                     "inference_precision: [f32]\n")
    settings = StudySettings(budget_s=600, sampler="random", search_space=str(folder))
    search = Search(StudyStorage(f"sqlite:///{tmp_path / 'study.db'}"), settings, TORCH, ["openvino"], "fp")
    ran: list[TrialConfig] = []

    def run(config: TrialConfig, timeout: float, bar: float | None = None) -> TrialOutcome:
        ran.append(config)
        return TrialOutcome(config, "ok", bench=Bench(1, 100.0, 1, 1, 1, 1, 1, 0.01, 3, 30, True), duration_s=0.01)

    search.run(run)
    assert sorted(c.runtime["num_streams"] for c in ran) == [1, 2]  # the two points left, each once
    assert {c.runtime["inference_precision"] for c in ran} == {"f32"}


@pytest.mark.parametrize("files, match", [
    ({"openvino": "params:\n  nope: [1]\n"}, "'nope' is not a parameter of openvino"),
    ({"openvino": "params:\n  inference_precision: [fp8]\n"}, r"\['fp8'\] not among its values"),
    ({"openvino": "params:\n  num_streams: [0, 4]\n"}, r"\[0, 4\] is not within"),
    ({"openvino": "params:\n  num_streams: [2]\n"}, r"takes \[low, high\]"),
    ({"openvino": "params:\n  inference_precision: []\n"}, "non-empty list"),
    ({"openvino": "params: [1, 2]\n"}, "needs a 'params' mapping"),
    ({"openvino": "path: eager\nparams: {}\n"}, "declares path 'eager'"),
    ({"openvino": "params: {a: [1\n"}, "not readable YAML"),
    ({"openvino": "params: {}\npresets:\n  - {inference_precision: fp8}\n"}, "preset 1"),
])
def test_a_bad_narrowing_is_one_line_naming_the_file(tmp_path: Path, files: dict[str, str], match: str) -> None:
    folder = _dir(tmp_path, **files)
    with pytest.raises(InputError, match=match) as caught:
        space_mod.narrowed(space_mod.load("openvino"), folder)
    assert "openvino.yaml" in str(caught.value) and "\n" not in str(caught.value)


def test_the_directory_is_checked_before_anything_loads(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a directory"):
        narrowing.directory(tmp_path / "missing", paths.NAMES)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no <path>.yaml"):
        narrowing.directory(tmp_path / "empty", paths.NAMES)
    with pytest.raises(InputError, match="no conversion path named 'openvin'"):
        narrowing.directory(_dir(tmp_path, openvin="params: {}\n"), paths.NAMES)


def test_the_baseline_and_the_reference_keep_their_defaults(tmp_path: Path) -> None:
    keep = {"ort_cpu": space_mod.load("ort_cpu"), "eager": space_mod.load("eager")}
    narrowing.keeps_references(keep, TORCH, "cpu")  # as packaged: nothing to say
    folder = _dir(tmp_path, ort_cpu="params:\n  graph_optimization_level: [basic]\n")
    spaces = {**keep, "ort_cpu": paths.space("ort_cpu", "torch", str(folder))}
    with pytest.raises(InputError, match="ort_cpu with its defaults is this study's reference"):
        narrowing.keeps_references(spaces, TORCH, "cpu")
    (folder / "ort_cpu.yaml").write_text("params:\n  graph_optimization_level: [all, basic]\n")  # default kept
    narrowing.keeps_references({**keep, "ort_cpu": paths.space("ort_cpu", "torch", str(folder))}, TORCH, "cpu")


def test_the_cli_refuses_a_bad_narrowing_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"  # never read: the narrowing is checked before the model loads
    for files, named in (({"nonsense": "params: {}\n"}, "nonsense"),
                         ({"openvino": "params:\n  inference_precision: [fp8]\n"}, "['fp8'] not among")):
        folder = tmp_path / named[:4]
        folder.mkdir()
        for name, text in files.items():
            (folder / f"{name}.yaml").write_text(text)
        out = tmp_path / "out"
        result = CliRunner().invoke(cli.app, ["optimize", "--model", str(model), "--search-space", str(folder),
                                              "--out", str(out), "--budget", "10s"])
        err = result.stderr if hasattr(result, "stderr") else result.output
        assert result.exit_code == 2, err
        assert err.startswith("navigator: error: --search-space") and named in err and len(err.splitlines()) == 1
        assert not out.exists()

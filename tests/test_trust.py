"""Trust to unpickle is given per invocation (--trust-pickle, trust_pickle=True), never read from a report
or a study: every command of the CLI that takes a path, and every API entry that loads a model, is fed
hostile pickles (their __reduce__ / __setstate__ writes a marker file) and the payload must never run.

The commands and their path options are read from the typer app, so that a new command or option
with a path fails this test until the walk below says how to feed it."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import navigator  # noqa: E402
from navigator.cli import app  # noqa: E402
from navigator.errors import InputError, UntrustedPickleError  # noqa: E402
from navigator.records import (Bench, OutputCheck, Result, TrialConfig, TrialOutcome, Validation,  # noqa: E402
                               to_dict)
from navigator.source import load_source  # noqa: E402

SPEC = "input:float32:-1x4"


class Payload:
    """Unpickling it runs exec(code): the code writes the marker file."""

    def __init__(self, marker: Path) -> None:
        self.code = f"open({str(marker)!r}, 'w').write('ran')"

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (exec, (self.code,))


EVIL_CLASS = '''
from pathlib import Path
MARKER = {marker!r}

class Evil:
    def __init__(self):
        self.weights = [1.0]

    def __setstate__(self, state):
        Path(MARKER).write_text("ran")
        self.__dict__.update(state)
'''


@dataclass
class Kit:
    """The hostile files, and benign ones to pass next to them."""

    tmp: Path
    marker: Path
    models: dict[str, Path]  # hostile model files by kind
    data: dict[str, Path]  # hostile --input-data files
    benign: Path  # a TorchScript model with one input, `input`
    base_report: Path  # a report of the benign model with a winner, claiming trust_pickle
    live_report: Path  # a report as a live module's run writes it: no fingerprint, trust_pickle true
    run_dir: Path  # a hostile output directory: its report names a hostile model, claiming trust
    storage: Callable[[Path], str]  # a shared study (SQLite) whose creator published this model

    def fresh(self) -> str:
        return str(self.tmp / f"out{len(list(self.tmp.glob('out*')))}")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _report(directory: Path, model: Path, fingerprint: str | None) -> Path:
    ok = Validation(True, "", (OutputCheck("output__0", 0.0, 0.0, 1e-4, 1e-3, 0, True),))
    bench = Bench(1, 1000.0, 1, 1, 1, 1, 1.0, 0.01, 3, 100, True)
    winner = TrialOutcome(TrialConfig(1, "eager", {}, {}, 1), "ok", validation=ok, bench=bench)
    result = Result("m", "throughput", (winner,), winner, winner, 1.0, None, None)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "report.json"
    source = {"model": str(model), "input_spec": SPEC, "input_data": None, "trust_pickle": True,
              "fingerprint": fingerprint}
    path.write_text(json.dumps({**to_dict(result), "source": source,
                                "settings": {"batch_sizes": [1], "objective": "throughput", "window_s": 0.05}}))
    _validation(directory)
    return path


def _validation(directory: Path) -> None:
    """Readable validation data (no pickles), which the gate's output check reads before any model."""
    (directory / "validation").mkdir(exist_ok=True)
    np.savez(directory / "validation" / "inputs.npz", input=np.zeros((2, 4), np.float32))
    np.savez(directory / "validation" / "reference.npz", output__0=np.zeros((2, 2), np.float32))


def _shared_study(tmp: Path, model: Path) -> str:
    import optuna

    from navigator.api import published
    from navigator.records import SourceRecord
    from navigator.settings import StudySettings

    url = f"sqlite:///{tmp / f'study-{model.stem}.db'}"
    study = optuna.create_study(storage=url, study_name="s", load_if_exists=True)
    for key, value in published(StudySettings(), SourceRecord(str(model), SPEC)).items():
        study.set_user_attr(key, value)
    study.set_user_attr("identity", {"fingerprint": "0" * 64})
    return url


@pytest.fixture
def kit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Kit:
    marker = tmp_path / "payload-ran"
    blob = pickle.dumps(Payload(marker))
    models = {"torch.save zip": tmp_path / "zip.pt", "raw pickle": tmp_path / "raw.pt",
              "tree .pkl": tmp_path / "forest.pkl", "tree .joblib": tmp_path / "forest.joblib"}
    torch.save({"weights": Payload(marker)}, models["torch.save zip"])
    for name in ("raw pickle", "tree .pkl", "tree .joblib"):
        models[name].write_bytes(blob)
    skops = pytest.importorskip("skops.io")
    (tmp_path / "evilmod.py").write_text(EVIL_CLASS.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path))
    import evilmod  # type: ignore[import-not-found]

    models["skops, untrusted type"] = tmp_path / "forest.skops"
    skops.dump({"model": evilmod.Evil()}, models["skops, untrusted type"])
    data = {"zip": models["torch.save zip"], "raw pickle": tmp_path / "inputs.npz"}
    data["raw pickle"].write_bytes(blob)
    benign = tmp_path / "benign.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(4, 2)), str(benign))
    run_dir = tmp_path / "run"
    _report(run_dir, models["torch.save zip"], _sha(models["torch.save zip"]))
    (run_dir / "source").mkdir()
    shutil.copy(models["torch.save zip"], run_dir / "source" / "model.pt")
    for name in ("inputs.npz", "reference.npz"):
        (run_dir / "validation" / name).write_bytes(blob)
    (run_dir / "model_repository" / "m").mkdir(parents=True)
    (run_dir / "model_repository" / "m" / "config.pbtxt").write_text('name: "m"\n')
    assert not marker.exists()
    return Kit(tmp_path, marker, models, data, benign, _report(tmp_path / "base", benign, _sha(benign)),
               _report(tmp_path / "live", benign, None), run_dir, lambda m: _shared_study(tmp_path, m))


def test_the_hostile_files_do_run_their_payload_when_trusted(kit: Kit) -> None:
    """The marker detects unpickling: each hostile model, loaded with trust, runs its payload."""
    for name, path in kit.models.items():
        with pytest.raises(InputError):  # what the payload leaves behind is no model
            load_source(str(path), input_spec=SPEC, trust_pickle=True)
        assert kit.marker.exists(), name
        kit.marker.unlink()


def test_untrusted_pickles_are_refused_with_untrusted_pickle_error(kit: Kit) -> None:
    for name, path in kit.models.items():
        with pytest.raises(UntrustedPickleError, match="--trust-pickle"):
            load_source(str(path), input_spec=SPEC)
        assert not kit.marker.exists(), name


# How the walk feeds each path option of each command: (command, option) -> argument lists, each made
# from the kit and one hostile file of the option's kind. OUTPUTS are written, never read as a model.
Feed = Callable[[Kit, Path], list[str]]
MODEL_FEEDS: dict[tuple[str, str], Feed] = {
    ("optimize", "model"): lambda k, f: ["optimize", "--model", str(f), "--input-spec", SPEC, "--out", k.fresh(),
                                         "--budget", "5s", "--no-progress"],
    ("worker", "model"): lambda k, f: ["worker", "--storage", k.storage(k.benign), "--study", "s", "--model", str(f),
                                       "--out", k.fresh(), "--budget", "5s", "--no-progress"],
    ("report", "model"): lambda k, f: ["report", "--storage", k.storage(k.benign), "--study", "s", "--model", str(f),
                                       "--out", k.fresh()],
    ("check", "model"): lambda k, f: ["check", "--baseline", str(k.base_report), "--model", str(f), "--input-spec",
                                      SPEC, "--out", k.fresh(), "--budget", "5s"],
    ("check", "baseline_model"): lambda k, f: ["check", "--baseline", str(k.live_report), "--model", str(k.benign),
                                               "--baseline-model", str(f), "--out", k.fresh(), "--budget", "5s"],
}
DATA_FEEDS: dict[tuple[str, str], Feed] = {
    ("optimize", "input_data"): lambda k, f: ["optimize", "--model", str(k.benign), "--input-data", str(f),
                                              "--out", k.fresh(), "--budget", "5s", "--no-progress"],
    ("worker", "input_data"): lambda k, f: ["worker", "--storage", k.storage(k.benign), "--study", "s",
                                            "--input-data", str(f), "--out", k.fresh(), "--budget", "5s"],
    ("report", "input_data"): lambda k, f: ["report", "--storage", k.storage(k.benign), "--study", "s",
                                            "--input-data", str(f), "--out", k.fresh()],
    ("check", "input_data"): lambda k, f: ["check", "--baseline", str(k.base_report), "--model", str(k.benign),
                                           "--input-data", str(f), "--out", k.fresh(), "--budget", "5s"],
    ("optimize", "calibration"): lambda k, f: ["optimize", "--model", str(k.benign), "--input-spec", SPEC,
                                               "--calibration-data", str(f), "--out", k.fresh(), "--budget", "5s",
                                               "--no-progress"],
}
# Options naming a directory of YAML files (read with yaml.safe_load only): fed a directory whose
# <path>.yaml is the hostile file.
def _space_dir(k: Kit, f: Path) -> str:
    folder = Path(k.fresh())
    folder.mkdir()
    shutil.copyfile(f, folder / "openvino.yaml")
    return str(folder)


SPACE_FEEDS: dict[tuple[str, str], Feed] = {
    ("optimize", "search_space"): lambda k, f: ["optimize", "--model", str(k.benign), "--input-spec", SPEC,
                                                "--search-space", _space_dir(k, f), "--out", k.fresh(),
                                                "--budget", "5s", "--no-progress"],
}
# Options naming a run's directory or report: fed the hostile run directory (its report.json names a
# hostile model and claims the run trusted it; its source/ and validation/ files are pickles).
RUN_FEEDS: dict[tuple[str, str], tuple[Feed, str]] = {
    ("serve-check", "out"): (lambda k, d: ["serve-check", str(d)], "no readable validation data"),
    ("report", "directory"): (lambda k, d: ["report", str(d)], "no navigator study"),
    ("check", "baseline"): (lambda k, d: ["check", "--baseline", str(d / "report.json"), "--model", str(k.benign),
                                          "--out", k.fresh(), "--budget", "5s"], "no readable validation data"),
    ("check", "candidate"): (lambda k, d: ["check", "--baseline", str(d / "report.json"),
                                           "--candidate", str(d / "report.json")], "no readable validation data"),
    ("export", "out"): (lambda k, d: ["export", str(d), "--trial", "1", "--to", k.fresh()], "--trust-pickle"),
}
OUTPUTS = {("optimize", "out"), ("worker", "out"), ("report", "out"), ("check", "out"), ("check", "summary"),
           ("check", "junit"), ("export", "to")}


def _path_options() -> set[tuple[str, str]]:
    """(command, parameter) for every parameter of the typer app's commands typed Path."""
    found = set()
    for command in app.registered_commands:
        name = command.name or command.callback.__name__.replace("_", "-")
        for param, hint in typing.get_type_hints(command.callback).items():
            if Path in (hint, *typing.get_args(hint)) or any(Path in typing.get_args(a) for a in typing.get_args(hint)):
                found.add((name, param))
    return found


def test_every_path_option_is_in_the_walk() -> None:
    walked = set(MODEL_FEEDS) | set(DATA_FEEDS) | set(SPACE_FEEDS) | set(RUN_FEEDS) | OUTPUTS
    missing = _path_options() - walked
    assert not missing, f"path options the hostile-pickle walk does not feed: {sorted(missing)}"
    assert ("check", "baseline_model") in _path_options()  # the enumeration does see the options


def _exit_code(command: str, kind: str) -> int:
    """What the refusal exits with: 2 everywhere, but `navigator check` tells an untrusted pickle (4) and
    an unreadable model or input file (3) apart (docs/ci.md); a run directory whose validation files are
    pickles is refused (2) before any model of it is opened."""
    if command != "check" or kind == "run dir":
        return 2
    return 3 if kind.startswith("data:") else 4


def _walk() -> list[tuple[str, str, Feed, str, str]]:
    """(command, option, feed, hostile file kind, what the refusal must say)."""
    cases = [(c, o, feed, kind, "--trust-pickle") for (c, o), feed in MODEL_FEEDS.items()
             for kind in ("torch.save zip", "raw pickle", "tree .pkl", "tree .joblib", "skops, untrusted type")]
    cases += [(c, o, feed, "data:" + kind, "not a readable .npz") for (c, o), feed in DATA_FEEDS.items()
              for kind in ("zip", "raw pickle")]
    cases += [(c, o, feed, "space:" + kind, "--search-space") for (c, o), feed in SPACE_FEEDS.items()
              for kind in ("torch.save zip", "raw pickle", "tree .pkl")]
    cases += [(c, o, feed, "run dir", says) for (c, o), (feed, says) in RUN_FEEDS.items()]
    return cases


@pytest.mark.parametrize("command,option,feed,kind,says", _walk(), ids=lambda v: v if isinstance(v, str) else "")
def test_hostile_pickle_never_runs(kit: Kit, command: str, option: str, feed: Feed, kind: str, says: str) -> None:
    from typer.testing import CliRunner

    hostile = kit.run_dir if kind == "run dir" else kit.data[kind[5:]] if kind.startswith("data:") else \
        kit.models[kind.removeprefix("space:")]
    result = CliRunner().invoke(app, feed(kit, hostile))
    assert not kit.marker.exists(), f"navigator {command} --{option} ran the payload of a {kind}"
    expected = _exit_code(command, kind)
    assert result.exit_code == expected, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output and says in result.output, result.output


def test_api_entries_never_take_trust_from_a_report_or_a_study(kit: Kit) -> None:
    from navigator import workers

    evil = kit.models["torch.save zip"]
    with pytest.raises(UntrustedPickleError):  # the report claims the run trusted the model
        navigator.load_runner(navigator.load_result(kit.run_dir))
    with pytest.raises(UntrustedPickleError):
        navigator.check(kit.live_report, model=str(kit.benign), baseline_model=evil, budget="5s",
                        out=kit.fresh())
    readable = Path(kit.fresh())  # the hostile run with readable validation data: its model is what is refused
    shutil.copytree(kit.run_dir, readable)
    _validation(readable)
    with pytest.raises(UntrustedPickleError):
        navigator.check(readable / "report.json", model=str(kit.benign), budget="5s", out=kit.fresh())
    with pytest.raises(UntrustedPickleError):  # the study's creator's model path, this machine's trust
        workers.worker(kit.storage(evil), "s", out=kit.fresh(), budget="5s", progress=False)
    with pytest.raises(UntrustedPickleError):
        workers.report(kit.storage(evil), "s", kit.fresh())
    assert not kit.marker.exists()


def test_a_baseline_model_that_is_not_the_measured_one_is_refused_before_it_is_opened(kit: Kit) -> None:
    """Even with trust: the recorded hash is compared first, so another file is never unpickled."""
    with pytest.raises(InputError, match="not the one .* measured.*--baseline-model"):
        navigator.check(kit.base_report, model=str(kit.benign), baseline_model=kit.models["torch.save zip"],
                        trust_pickle=True, budget="5s", out=kit.fresh())
    assert not kit.marker.exists()


def test_runner_of_a_reloaded_result_needs_trust_for_a_pickled_model(kit: Kit, tmp_path: Path) -> None:
    """The run's model is a torch.save pickle: a later load_runner(load_result(...)) unpickles it only with
    trust_pickle=True, whatever the report recorded."""
    model = torch.nn.Sequential(torch.nn.Linear(4, 2))
    path = tmp_path / "seq.pt"
    torch.save(model, path)
    report = _report(tmp_path / "seqrun", path, _sha(path))
    result = navigator.load_result(report.parent)
    with pytest.raises(UntrustedPickleError):
        navigator.load_runner(result)
    from navigator.results import load_source_of

    assert load_source_of(result, 1, trust_pickle=True).kind == "module"



# The candidate's inputs of `navigator check --model`, and the warning on generated integer inputs.

class Renamed(torch.nn.Module):
    """The baseline's layer with its input named `features` instead of `x`."""

    def __init__(self, lin: torch.nn.Linear) -> None:
        super().__init__()
        self.lin = lin

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.lin(features)


class Plain(Renamed):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


def test_check_model_takes_the_candidates_input_spec_and_data(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    lin = torch.nn.Linear(4, 2)
    base_model, cand_model = tmp_path / "base.pt", tmp_path / "cand.pt"
    torch.jit.save(torch.jit.script(Plain(lin)), str(base_model))
    torch.jit.save(torch.jit.script(Renamed(lin)), str(cand_model))
    fast = ["--path", "eager", "--budget", "5s"]
    proc = run_cli("optimize", "--model", str(base_model), "--input-spec", "x:float32:-1x4", "--out",
                   str(tmp_path / "base"), "--trials", "1", "--window", "0.05", "--no-progress", *fast)
    assert proc.returncode == 0, proc.stderr
    report = str(tmp_path / "base" / "report.json")
    proc = run_cli("check", "--baseline", report, "--model", str(cand_model), "--out", str(tmp_path / "c0"), *fast)
    # x: the baseline's spec; a model that does not take its inputs is an invalid model to the gate (exit 3)
    assert proc.returncode == 3 and "do not match the model's inputs ['features']" in proc.stderr
    proc = run_cli("check", "--baseline", report, "--model", str(cand_model), "--input-spec", "features:float32:-1x4",
                   "--out", str(tmp_path / "c1"), "--rounds", "3", *fast)
    assert proc.returncode in (0, 1), proc.stderr
    assert "navigator check" in proc.stdout and "validation | pass" in proc.stdout
    data = tmp_path / "rows.npz"
    np.savez(data, rows=np.ones((4, 4), np.float32))  # one input: any array name
    proc = run_cli("check", "--baseline", report, "--model", str(cand_model), "--input-data", str(data),
                   "--out", str(tmp_path / "c2"), "--rounds", "3", *fast)
    assert proc.returncode in (0, 1), proc.stderr
    recorded = json.loads((tmp_path / "c2" / "report.json").read_text())
    assert recorded["source"]["input_data"] == str(data.resolve())


def test_generated_integer_inputs_warn_once_and_the_report_notes_it(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    model = tmp_path / "ids.pt"
    torch.jit.save(torch.jit.script(torch.nn.Embedding(10, 3)), str(model))  # forward(input): token ids
    proc = run_cli("optimize", "--model", str(model), "--input-spec", "input:int64:-1x8", "--out", str(tmp_path / "o"),
                   "--path", "eager", "--budget", "5s", "--trials", "1", "--window", "0.05", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("navigator: warning:")
                and "the machine is loaded" not in line]  # this machine's load is not the model's
    assert len(warnings) == 1 and "input" in warnings[0] and "--input-data" in warnings[0], proc.stderr
    notes = json.loads((tmp_path / "o" / "report.json").read_text())["notes"]
    assert any("drawn at random" in n and "--input-data" in n for n in notes), notes

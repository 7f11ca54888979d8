"""The user metric: its spec and trust rule, the checks on what it returns, --max-metric-drop's parse and
its constraint (the Objective's, the trial worker's, TPE's constraints_func)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from navigator import objective as objectives
from navigator.errors import InputError
from navigator.records import Bench, IOSpec, TensorSpec, TrialConfig, TrialOutcome
from navigator.settings import StudySettings, parse_metric_drop
from navigator.source import ModelSource
from navigator.source import metric as metric_mod
from navigator.cache import Cache
from navigator.trial.run import TrialContext, metric_check

IO = IOSpec((TensorSpec("x", "float32", (None, 8)),), (TensorSpec("logits", "float32", (None, 4)),))
X = np.random.default_rng(0).standard_normal((256, 8)).astype(np.float32)
W = np.random.default_rng(1).standard_normal((8, 4)).astype(np.float32)
LABELS = (X @ W).argmax(1)


def top1(runner) -> float:
    """Honest top-1 agreement with the fp32 labels over 256 samples."""
    return float((runner({"x": X})[0].argmax(1) == LABELS).mean())


def bench(throughput: float) -> Bench:
    return Bench(1, throughput, 1, 1, 1, 1, 1, 0.01, 3, 30, True)


def outcome(number: int, throughput: float, metric: float | None) -> TrialOutcome:
    return TrialOutcome(TrialConfig(number, "ort_cpu", {}, {}, 1), "ok", bench=bench(throughput), metric=metric)


@pytest.mark.parametrize("text, parsed", [("0.5%", (0.005, True)), ("0.01", (0.01, False)), ("0", (0.0, False)),
                                          (" 100% ", (1.0, True))])
def test_max_metric_drop_parses(text, parsed):
    assert parse_metric_drop(text) == pytest.approx(parsed)


@pytest.mark.parametrize("text", ["abc", "-1%", "150%", "-0.1", "nan", "inf", "%", ""])
def test_a_malformed_max_metric_drop_is_one_input_error(text):
    with pytest.raises(InputError, match="--max-metric-drop"):
        StudySettings(max_metric_drop=text)


def test_the_floor_is_relative_with_a_percent_and_absolute_otherwise():
    assert objectives.metric_floor(0.9, "10%") == pytest.approx(0.81)
    assert objectives.metric_floor(-2.0, "10%") == pytest.approx(-2.2)  # a negative metric: of its magnitude
    assert objectives.metric_floor(0.9, "0.05") == pytest.approx(0.85)


def test_a_trial_over_the_drop_never_ranks_whatever_its_speed():
    settings = StudySettings(metric_source=0.95, max_metric_drop="1%")
    goal = objectives.for_study(settings)
    fast_lossy, slow_exact, unknown = outcome(1, 900.0, 0.90), outcome(2, 100.0, 0.95), outcome(3, 999.0, None)
    within = outcome(4, 200.0, 0.95 * 0.99)
    assert [o.config.number for o in goal.rank([fast_lossy, slow_exact, unknown, within])] == [4, 2]
    assert goal.violations(fast_lossy)[0] == pytest.approx(0.9405 - 0.90)
    assert goal.violations(unknown) == (1.0,)
    timed_out = TrialOutcome(TrialConfig(5, "eager", {}, {}, 1), "timeout", error="no answer within 28 s")
    assert goal.violations(timed_out) == (0.0,) and goal.broken(timed_out) == ""  # nothing measured to break
    assert [o.config.number for o in objectives.for_study(StudySettings()).rank([fast_lossy, slow_exact])] == [1, 2]


def test_the_sampler_sees_a_trial_over_the_drop_as_infeasible(tmp_path):
    """The constraint reaches TPE: named on the trial (optuna 5) or through constraints_func (optuna 4)."""
    import optuna

    from navigator.search.proposals import CONSTRAINTS_ATTR, constraints_func
    from navigator.search.study import Search

    settings = StudySettings(metric_source=0.95, max_metric_drop="1%")
    assert constraints_func(StudySettings()) is None
    study = optuna.create_study(direction="maximize")
    search = Search.__new__(Search)
    search.settings = settings
    for metric in (0.90, 0.95):
        trial = study.ask()
        search._constrain(trial, outcome(trial.number, 100.0, metric))
        study.tell(trial, 100.0)
    lossy, exact = study.get_trials()
    assert lossy.user_attrs[CONSTRAINTS_ATTR] == [pytest.approx(0.0405)]
    if hasattr(optuna.trial.Trial, "set_constraint"):
        assert lossy.constraints == {"within_metric_drop": pytest.approx(0.0405)}
        assert exact.constraints == {"within_metric_drop": pytest.approx(-0.0095)}
    else:
        assert constraints_func(settings)(lossy) == [pytest.approx(0.0405)]


class Lossy:
    """A runner of the same classifier whose weights lost precision (as an int8 path may)."""

    def __init__(self, noise: float) -> None:
        self.w = W + np.random.default_rng(2).standard_normal(W.shape).astype(np.float32) * noise

    def __call__(self, feeds):
        return [feeds["x"] @ self.w]


def context(tmp_path: Path, metric, **settings) -> TrialContext:
    source = ModelSource("onnx", "onnx", "demo", None, None, IO, "fingerprint", {"x": X})
    return TrialContext(source, Cache(tmp_path / "cache", "fingerprint"), StudySettings(**settings), metric)


def test_the_worker_rule_keeps_a_close_trial_and_rejects_a_lossy_one_with_both_values(tmp_path):
    ctx = context(tmp_path, top1, metric_source=1.0, max_metric_drop="1%")
    config = TrialConfig(1, "ort_cpu", {}, {}, 1)
    assert metric_check(ctx, config, Lossy(0.0)) == (1.0, "", "")
    value, status, why = metric_check(ctx, config, Lossy(0.5))
    assert status == "invalid" and value < 0.99
    assert f"metric {value:.6g} vs the source's 1: below the 0.99 that --max-metric-drop 1% allows" == why
    assert metric_check(context(tmp_path, top1), config, Lossy(0.5)) == (value, "", "")  # no drop: recorded only


def test_a_metric_failing_on_a_trial_fails_that_trial(tmp_path):
    def picky(runner):
        if isinstance(runner, Lossy):
            raise ValueError("only the source")
        return 1.0

    value, status, why = metric_check(context(tmp_path, picky), TrialConfig(1, "ort_cpu", {}, {}, 1), Lossy(0.0))
    assert (value, status) == (None, "failed")
    assert why == "the metric raised ValueError: only the source on this trial"


def test_an_error_whose_message_ends_in_its_cause_names_the_cause():
    from navigator.errors import one_line

    interpreter = RuntimeError("The following operation failed in the TorchScript interpreter.\n"
                               "Traceback of TorchScript (most recent call last):\n  graph_module.py(493): __call__\n"
                               "RuntimeError: The size of tensor a (16) must match the size of tensor b (8)\n")
    assert one_line(interpreter) == ("RuntimeError: The following operation failed in the TorchScript interpreter. ... "
                                     "RuntimeError: The size of tensor a (16) must match the size of tensor b (8)")
    assert one_line(ValueError("bad input\nsee the docs")) == "ValueError: bad input"


@pytest.mark.parametrize("returned, message", [
    (float("nan"), "returned nan, not a finite number"), (float("inf"), "returned inf"),
    ("0.9", "returned str '0.9', not a number"), (None, "returned NoneType"), (True, "returned bool"),
    (np.array([0.5, 0.6]), "returned ndarray")])
def test_a_metric_must_give_a_finite_number(returned, message):
    with pytest.raises(metric_mod.MetricError, match=message):
        metric_mod.evaluate(lambda r: returned, None)


def test_numpy_scalars_are_numbers():
    assert metric_mod.evaluate(lambda r: np.float32(0.25), None) == 0.25
    assert metric_mod.evaluate(lambda r: np.array(0.5), None) == 0.5


def test_a_metric_spec_is_imported_only_with_trust(tmp_path, monkeypatch):
    file = tmp_path / "mymetric.py"
    file.write_text("import numpy as np\n\ndef score(runner):\n    return 0.5\n")
    with pytest.raises(InputError, match="pass --trust-pickle"):
        metric_mod.load(f"{file}:score", trust=False)
    assert metric_mod.load(f"{file}:score", trust=True)(None) == 0.5
    monkeypatch.chdir(tmp_path)
    assert metric_mod.load("mymetric:score", trust=True)(None) == 0.5
    for spec, message in [(f"{file}:nothing", "has no function 'nothing'"), ("score", "is not path/to/file.py"),
                          (f"{tmp_path / 'absent.py'}:f", "no such file"), ("no_such_mod_xyz:f", "importing")]:
        with pytest.raises(InputError, match=message):
            metric_mod.load(spec, trust=True)


def test_a_file_metric_travels_by_value(tmp_path):
    """The worker needs no import of the user's file: cloudpickle saves its function and globals."""
    file = tmp_path / "m.py"
    file.write_text("SCALE = 3.0\n\ndef score(runner):\n    return SCALE * runner()\n")
    saved = metric_mod.save(metric_mod.load(f"{file}:score", trust=True), tmp_path / "saved")
    file.unlink()
    assert metric_mod.restore(str(saved))(lambda: 2.0) == 6.0


def test_a_worker_given_no_metric_cannot_pass_a_metric_constraint(tmp_path):
    config = TrialConfig(1, "ort_cpu", {}, {}, 1)
    ctx = context(tmp_path, None, metric_source=1.0, max_metric_drop="1%")
    assert metric_check(ctx, config, Lossy(0.0)) == (
        None, "invalid", "the study has --max-metric-drop but this worker has no --metric")
    assert metric_check(context(tmp_path, None), config, Lossy(0.0)) == (None, "", "")


def test_a_fast_finalist_outside_the_constraint_is_never_deployed():
    """A baseline is re-measured with the finalists whatever its metric; only ranked trials deploy."""
    from navigator.records import Finalist
    from navigator.search.finalists import deploy_order

    goal = objectives.for_study(StudySettings(metric_source=0.95, max_metric_drop="1%"))
    baseline, exact, close = outcome(0, 900.0, None), outcome(1, 100.0, 0.95), outcome(2, 90.0, 0.95)
    ranked = goal.rank([baseline, exact, close])
    finalists = [Finalist(n, "ort_cpu", role, (t,), (1.0,)) for n, role, t in
                 [(0, "baseline", 900.0), (2, "top 2", 95.0), (1, "top 1", 94.0)]]
    order, dropped = deploy_order(finalists, ranked, goal)
    assert [o.config.number for o in order] == [2, 1] and dropped == []


def test_a_worker_takes_the_study_metric_or_says_what_its_trials_lack(capsys):
    """A study that only records a metric (no drop) takes a worker without one, with a warning; a study
    without a metric refuses one (its trials would differ from the others')."""
    from navigator.workers import _metric

    recorded = StudySettings(metric_source=0.9)
    assert _metric(None, recorded, False, "s") is None
    assert "study 's' records a user metric on its trials; this worker's trials will have none" in capsys.readouterr().err
    assert _metric(top1, recorded, False, "s") is top1  # a live function needs no trust
    with pytest.raises(InputError, match="study 's' has no user metric"):
        _metric(top1, StudySettings(), False, "s")
    with pytest.raises(InputError, match="--max-metric-drop 1% of a user metric"):
        _metric(None, StudySettings(metric_source=0.9, max_metric_drop="1%"), False, "s")

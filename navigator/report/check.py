"""The CI regression gate: is a candidate model's best serving configuration slower or less correct than
the baseline's?

Criteria (each one a JUnit test case):
- validation: the candidate has a winner, i.e. a trial that matched its source model within tolerance;
  where both reports carry a user metric, the candidate's may not drop by more than max_metric_drop;
- outputs: the candidate's winner, run on the baseline's validation inputs, gives the baseline's
  reference outputs within tolerance (drift.py): a model that got fast by computing something else fails;
- winner path: the path that won for the baseline still has a valid trial in the candidate;
- throughput / p99 latency: the candidate's winner is not worse than the baseline's by more than
  max_regression *beyond measurement noise*: a regression is declared only when the whole 95% confidence
  interval of the candidate/baseline ratio lies past the allowed margin. The intervals come from the
  repeated measurements in the reports (the finalists' interleaved rounds, bootstrapped), or, when the
  gate benchmarks (`--model`), from both winners re-measured here in interleaved rounds and paired by
  round, so that a slow moment of a noisy CI runner hits both sides alike.

Exit codes (`navigator check`): 0 pass, 1 regression or output drift, 2 usage error (flags, unreadable
reports), 3 invalid model file, 4 pickle refused without --trust-pickle, 5 no valid trial.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from navigator.errors import InputError, InvalidModelError, NavigatorError, UntrustedPickleError
from navigator.records import MEASURED, Result

Z95 = 1.96
PASS, REGRESSION, USAGE, INVALID_MODEL, UNTRUSTED_PICKLE, NO_VALID_TRIAL = range(6)


class NoValidTrialError(InputError):
    """The baseline has no winner to compare with (exit code NO_VALID_TRIAL)."""


def exit_code_of(exc: NavigatorError) -> int:
    """The gate's exit code for an error that stopped it."""
    for cls, code in ((UntrustedPickleError, UNTRUSTED_PICKLE), (InvalidModelError, INVALID_MODEL),
                      (NoValidTrialError, NO_VALID_TRIAL)):
        if isinstance(exc, cls):
            return code
    return USAGE


@dataclass(frozen=True)
class Side:
    """One side's winner and the repeated measurements of it."""

    label: str
    report: str
    path: str | None
    number: int | None
    batch_size: int | None
    throughput: tuple[float, ...]
    p99_ms: tuple[float, ...]
    cv: float  # the winner's own benchmark windows' coefficient of variation (noise when unrepeated)
    max_abs: float
    valid_paths: tuple[str, ...]
    failure: str  # why there is no winner ("" when there is one)
    metric: float | None = None
    measured: str = ""  # with --model: the configuration measured, when not this side's own winner


@dataclass(frozen=True)
class Criterion:
    name: str
    ok: bool
    detail: str
    ratio: float | None = None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Verdict:
    """The gate's answer: `regression` is True when any criterion failed (exit code 1)."""

    baseline: Side
    candidate: Side
    criteria: tuple[Criterion, ...]
    max_regression: float
    mode: str  # "reports" (figures from both report.json) or "interleaved" (re-measured here)

    @property
    def regression(self) -> bool:
        return not all(c.ok for c in self.criteria)

    @property
    def exit_code(self) -> int:
        if self.candidate.failure:
            return NO_VALID_TRIAL
        return REGRESSION if self.regression else PASS


def side(label: str, result: Result) -> Side:
    """A report's winner with its repeated measurements (the finalists' rounds, or its one figure) and
    the user metric's value on it, where the run had one."""
    w, metric = result.winner, result.metric.get("winner")
    valid = tuple(dict.fromkeys(o.config.path for o in result.outcomes
                                if o.status in MEASURED and o.validation and o.validation.ok))
    if w is None or w.bench is None:
        reasons = sorted({f"{o.config.path}: {o.status}" for o in result.outcomes})
        return Side(label, str(result.report), None, None, None, (), (), 0.0, math.nan, valid,
                    "no trial passed validation (" + ", ".join(reasons[:6]) + ")", metric)
    mine = next((f for f in result.finalists if f.number == w.config.number), None)
    thr = mine.throughput if mine else (w.bench.throughput,)
    p99 = mine.p99_ms if mine else (w.bench.p99_ms,)
    err = max((c.max_abs for c in w.validation.outputs), default=0.0) if w.validation else math.nan
    return Side(label, str(result.report), w.config.path, w.config.number, w.config.batch_size, tuple(thr),
                tuple(p99), w.bench.cv, err, valid, "", metric)


def ratio_interval(cand: tuple[float, ...], base: tuple[float, ...], paired: bool, noise: float = 0.0,
                   seed: int = 0) -> tuple[float, float, float]:
    """Median ratio candidate/baseline and its 95% bootstrap interval: per-round ratios when paired,
    else the two samples resampled independently. With too few repeats to bootstrap, the interval is
    the ratio widened by `noise` (the relative noise of the figures) instead of pretending it is exact."""
    a, b = np.asarray(cand, dtype=float), np.asarray(base, dtype=float)
    if paired and a.size == b.size:
        r = a / b
        ratio = float(np.median(r))
        if r.size >= 3 and np.ptp(r) > 0:
            return ratio, *_bootstrap((r,), lambda x, axis: np.median(x, axis=axis), seed)
    else:
        ratio = float(np.median(a) / np.median(b))
        if min(a.size, b.size) >= 3:
            def stat(x: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
                return np.median(x, axis=axis) / np.median(y, axis=axis)

            return ratio, *_bootstrap((a, b), stat, seed)
    spread = math.exp(Z95 * noise)
    return ratio, ratio / spread, ratio * spread


def _bootstrap(data: tuple[np.ndarray, ...], stat: Any, seed: int) -> tuple[float, float]:
    from scipy import stats

    ci = stats.bootstrap(data, stat, confidence_level=0.95, method="percentile", n_resamples=2000,
                         vectorized=True, rng=np.random.default_rng(seed)).confidence_interval
    return float(ci.low), float(ci.high)


def _speed(name: str, cand: Side, base: Side, paired: bool, margin: float) -> Criterion:
    """throughput: regression when the interval's top is below 1 - margin; p99: when its bottom is
    above 1 + margin."""
    noise = math.hypot(cand.cv, base.cv)
    if name == "throughput":
        ratio, low, high = ratio_interval(cand.throughput, base.throughput, paired, noise)
        ok = high >= 1 - margin
        word = "slower" if ratio < 1 else "faster"
        figure = f"{np.median(cand.throughput):.1f} vs {np.median(base.throughput):.1f} inferences/s"
        change = abs(1 - ratio)
    else:
        ratio, low, high = ratio_interval(cand.p99_ms, base.p99_ms, paired, noise)
        ok = low <= 1 + margin
        word = "slower" if ratio > 1 else "faster"
        figure = f"p99 {np.median(cand.p99_ms):.3f} vs {np.median(base.p99_ms):.3f} ms"
        change = abs(ratio - 1)
    verdict = "within the allowed margin or measurement noise" if ok else "regression beyond measurement noise"
    detail = (f"{figure}: candidate/baseline {ratio:.3f} (95% CI {low:.3f}-{high:.3f}), {change:.1%} {word}; "
              f"allowed {margin:.0%}: {verdict}")
    if cand.batch_size != base.batch_size:
        detail += f" (batch {cand.batch_size} vs {base.batch_size})"
    return Criterion(name, ok, detail, ratio, low, high)


def evaluate(base: Side, cand: Side, max_regression: float, paired: bool,
             max_metric_drop: float = 0.0, outputs: Criterion | None = None) -> Verdict:
    """Every criterion for a candidate against a baseline; `outputs`: the output check (drift.py)."""
    if base.failure:
        raise NoValidTrialError(f"the baseline {base.report} has no winner to compare with: {base.failure}")
    criteria = []
    if cand.failure:
        criteria.append(Criterion("validation", False, f"candidate: {cand.failure}"))
    else:
        text = f"the candidate's winner matches its source model (max abs error {cand.max_abs:.3g})"
        criteria.append(Criterion("validation", True, text))
    if outputs is not None:
        criteria.append(outputs)
    if cand.metric is not None and base.metric is not None:
        drop = base.metric - cand.metric
        criteria.append(Criterion("metric", drop <= max_metric_drop,
                                  f"metric {cand.metric:.6g} vs {base.metric:.6g} (drop allowed "
                                  f"{max_metric_drop:.6g})"))
    gone = base.path not in cand.valid_paths
    criteria.append(Criterion("winner path", not gone,
                              f"{base.path} (the baseline's winner) " + (
                                  "has no valid trial in the candidate" if gone else "is still valid")))
    if not cand.failure:
        criteria += [_speed("throughput", cand, base, paired, max_regression),
                     _speed("p99 latency", cand, base, paired, max_regression)]
    return Verdict(base, cand, tuple(criteria), max_regression, "interleaved" if paired else "reports")


def check(baseline: str | Path, candidate: str | Path | None = None, *, model: Any = None,
          budget: str | float = "2m", out: str | Path | None = None, max_regression: float = 0.10,
          max_metric_drop: float = 0.0, rounds: int = 7, paths: list[str] | None = None,
          baseline_model: str | Path | None = None, trust_pickle: bool = False,
          progress: bool = False, input_spec: str | None = None, input_data: str | Path | None = None) -> Verdict:
    """Compare a candidate with a baseline report.json; `verdict.exit_code` is 0 (pass), 1 (regression
    or output drift) or 5 (the candidate has no valid trial).

    Args:
        baseline: the baseline run's report.json.
        candidate: the candidate run's report.json (compares the recorded figures), or
        model: a candidate model (file or live object): it is optimized here (`budget`, same batch sizes
            and objective as the baseline, output in `out`), then both winners are re-measured
            interleaved for `rounds` rounds.
        max_regression: allowed slowdown (0.10 = 10%) of throughput and of p99 latency.
        max_metric_drop: allowed drop of the user metric where both reports have one.
        baseline_model: the baseline's model file when it moved since its report was written.
        trust_pickle: allow unpickling a torch.save or scikit-learn pickle model file (the candidate's
            and the baseline's; never taken from the baseline's report).
        input_spec, input_data: with `model`, the candidate's inputs, as `optimize` takes them
            (default: the baseline's recorded --input-spec).

    Raises:
        InputError: unreadable or malformed reports, both or neither of candidate/model, bad margins;
            InvalidModelError, UntrustedPickleError, NoValidTrialError (see exit_code_of).
    """
    from navigator.results import read_report

    if (candidate is None) == (model is None):
        raise InputError("give exactly one of --candidate REPORT.json and --model MODEL")
    if not 0 <= max_regression < 1:
        raise InputError(f"--max-regression {max_regression} must be in [0, 1), e.g. 0.1 for 10%")
    base_path = Path(baseline)
    base = side("baseline", read_report(base_path))
    if candidate is not None:
        cand = side("candidate", read_report(Path(candidate)))
        return evaluate(base, cand, max_regression, paired=False, max_metric_drop=max_metric_drop,
                        outputs=_outputs(base, cand, trust_pickle))
    from navigator.report.remeasure import optimize_and_remeasure

    if base.failure:  # before spending the budget
        raise NoValidTrialError(f"the baseline {base_path} has no winner to compare with: {base.failure}")
    if isinstance(model, (str, Path)) and not Path(model).exists():
        raise InputError(f"--model {model}: no such file or directory")
    from navigator.serving import load_validation

    load_validation(base_path.parent / "validation")  # the output check's data, before spending the budget
    cand, base = optimize_and_remeasure(base_path, base, model, budget=budget, out=out, rounds=rounds,
                                        paths=paths, baseline_model=baseline_model, progress=progress,
                                        trust_pickle=trust_pickle, input_spec=input_spec,
                                        input_data=input_data)
    return evaluate(base, cand, max_regression, paired=True, max_metric_drop=max_metric_drop,
                    outputs=_outputs(base, cand, trust_pickle))


def _outputs(base: Side, cand: Side, trust_pickle: bool) -> Criterion | None:
    """The output check of `cand` against `base` (None where either has no winner)."""
    from navigator.report import drift

    if base.failure or cand.failure:
        return None
    return drift.criterion(Path(base.report), Path(cand.report), trust_pickle)

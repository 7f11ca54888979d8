"""The budget of a study: wall-clock time of whole runs (search, finalists, deploy), summed over reruns.

A local study records the seconds its runs spent (SPENT_ATTR), so that a rerun with the same budget finds
none left. A shared study counts trial time summed over its workers instead (they run side by side).
One run ends within the budget plus a grace of max(60 s, 10%): the search stops early enough to leave the
finalists their reserve (sized from the study's own measured trials) and the deploy its share, and no
trial may run past what is left plus half the grace.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable

from navigator.records import PRECISION_ROLES, Params, TrialOutcome
from navigator.search.finalists import precision_roles
from navigator.settings import StudySettings
from navigator.trial.bench import MIN_CALLS_PER_WINDOW, STABLE_WINDOWS

if TYPE_CHECKING:
    from navigator.paths.base import Plugin

SPENT_ATTR = "spent_s"  # study user attribute: seconds the runs of a local study spent, all phases
DEPLOY_S = 8.0  # kept for writing the repository and the reports (a cached conversion, files, plots)
MIN_TRIAL_S = 20.0  # the shortest trial timeout: a trial cut shorter could never finish
LOAD_OVERHEAD_S = 1.0  # per finalist: convert from the cache, build the inputs
COST_SHARE = 0.25  # a trial expected to cost more of what is left waits while cheaper paths are untried
SCREEN_TOP = 3  # a trial is measured in full only while its short first figure could enter the top 3


@dataclass
class Budget:
    """`total_s` of budget, `prior_s` of it spent by earlier runs; `trial_spent` replaces the clock in a
    shared study (trial time summed over workers); `deadline` is a worker's own limit (monotonic)."""

    total_s: float
    prior_s: float = 0.0
    started: float = field(default_factory=time.monotonic)
    deadline: float | None = None
    reserve_s: float = 0.0  # the finalists' reserve
    trial_spent: Callable[[], float] | None = None

    def spent(self) -> float:
        return self.trial_spent() if self.trial_spent else self.prior_s + time.monotonic() - self.started

    def left(self) -> float:
        left = self.total_s - self.spent()
        return left if self.deadline is None else min(left, self.deadline - time.monotonic())

    def grace(self) -> float:
        return max(60.0, 0.1 * self.total_s)

    def search_left(self) -> float:
        """Seconds the search may still start trials in: the finalists' reserve and the deploy are not
        its to spend."""
        return self.left() - self.reserve_s - DEPLOY_S

    def trial_timeout(self, own_s: float) -> float:
        """A trial's timeout: its path's own, capped by what the search has left plus half the grace."""
        return min(own_s, max(MIN_TRIAL_S, self.search_left() + self.grace() / 2))

    def finalist_plan(self, load_s: float, round_s: float, want: int) -> tuple[int, float]:
        """(rounds, timeout) for re-measuring finalists that take `load_s` to load and `round_s` a round:
        as many of `want` rounds as fit in what is left; 2 where only the grace has room; 0 (skip)
        where not even that fits."""
        window = self.left() - DEPLOY_S
        if self.trial_spent is not None:  # a shared study kept the reserve out of its summed trial time
            window = max(window, self.reserve_s)
        rounds = min(want, int(max(window - load_s, 0.0) // max(round_s, 1e-3)))
        if rounds < 2:
            rounds = 2 if load_s + 2 * round_s <= window + self.grace() / 2 else 0
        return rounds, max(window, load_s + rounds * round_s) + self.grace() / 2


def window_s(o: TrialOutcome, settings: StudySettings) -> float:
    """How long one benchmark window of this trial lasts (time windows stretch to MIN_CALLS_PER_WINDOW
    calls of a slow model)."""
    mean = o.bench.mean_ms / 1e3 if o.bench else 0.0
    if settings.window_calls:
        return settings.window_calls * mean
    return max(settings.window_s, MIN_CALLS_PER_WINDOW * mean)


def entry_cost(o: TrialOutcome, settings: StudySettings) -> tuple[float, float]:
    """(load, one round) seconds of re-measuring a trial's configuration, from its own trial: its load
    time and a warm-up of two windows, then per round a quarter-window warm-up and as many windows as
    its own measurement took to settle."""
    window = window_s(o, settings)
    windows = o.bench.windows if o.bench else STABLE_WINDOWS
    return o.load_s + LOAD_OVERHEAD_S + 2 * window, (windows + 0.25) * window


def finalists_cost(chosen: list[TrialOutcome], settings: StudySettings) -> tuple[float, float]:
    """(load, one round) seconds of re-measuring all `chosen` configurations."""
    costs = [entry_cost(o, settings) for o in chosen]
    return sum(c[0] for c in costs), sum(c[1] for c in costs)


def reserve(measured: list[TrialOutcome], settings: StudySettings) -> float:
    """Seconds kept for the finalists (the top k, the baseline, ONNX Runtime's defaults, and once a
    quantized trial is measured the best of each precision group, search.finalists.precision_roles): at
    the mean cost of the study's measured trials, or by the window settings before there are any; a
    third of the budget at most (the search comes first)."""
    count = settings.finalists + 2 + (len(PRECISION_ROLES) if precision_roles(measured) else 0)
    if measured:
        costs = [entry_cost(o, settings) for o in measured]
        load, one = statistics.mean(c[0] for c in costs), statistics.mean(c[1] for c in costs)
    else:
        load, one = 2 * settings.window_s + LOAD_OVERHEAD_S, (STABLE_WINDOWS + 0.25) * settings.window_s
    return min(count * (load + settings.rounds * one), settings.budget_s / 3)


def screen_bar(outcomes: list[TrialOutcome], objective: str) -> float | None:
    """The figure a new trial's short first measurement is held against: the SCREEN_TOP-th best full
    measurement of the study (throughput per second, or p99 ms); None while fewer trials have one,
    so that the first ones are all measured in full."""
    full = [o.bench for o in outcomes if o.status == "ok" and o.bench is not None]
    if len(full) < SCREEN_TOP:
        return None
    if objective == "throughput":
        return sorted((b.throughput for b in full), reverse=True)[SCREEN_TOP - 1]
    return sorted(b.p99_ms for b in full)[SCREEN_TOP - 1]


def _cost_key(path: Plugin, params: Params) -> tuple[Any, ...]:
    """The values of the params that decide a path's trial cost (its COST_BY, e.g. torch.compile's mode)."""
    return tuple(params.get(k) for k in sorted(path.cost_by))


@dataclass
class _Durations:
    """The durations of a group of finished trials: those that ended by themselves (summed, counted) and
    the longest one stopped by its timeout (a trial cut there says only that the cost is at least that)."""

    total_s: float = 0.0
    count: int = 0
    longest_cut_s: float = 0.0

    def add(self, o: TrialOutcome) -> None:
        if o.status == "timeout":
            self.longest_cut_s = max(self.longest_cut_s, o.duration_s)
        else:
            self.total_s, self.count = self.total_s + o.duration_s, self.count + 1

    def cost(self, declared: float) -> float:
        return max(self.total_s / self.count if self.count else declared, self.longest_cut_s)


class Costs:
    """Seconds a trial is expected to take, for one study's paths: each path's Plugin (its COST_S and
    COST_BY tables) is read once, and what the study learns from its finished trials is added as they
    finish (`learn`), so that weighing a proposed trial reads neither the registry nor every outcome."""

    def __init__(self, path_names: list[str], outcomes: Iterable[TrialOutcome] = ()) -> None:
        from navigator import paths

        self.plugins = {name: paths.get(name) for name in path_names}
        self.tried: set[str] = set()  # paths with an outcome in the study
        self._same: dict[tuple[str, tuple[Any, ...]], _Durations] = {}  # (path, cost key) -> its trials
        self._path: dict[str, _Durations] = {}  # path -> all its trials
        for o in outcomes:
            self.learn(o)

    def plugin(self, path: str) -> Plugin:
        if path not in self.plugins:  # a path this study does not search
            from navigator import paths

            self.plugins[path] = paths.get(path)
        return self.plugins[path]

    def learn(self, o: TrialOutcome) -> None:
        """Add a finished trial's duration to what its path and its cost key are expected to take (a
        trial of a path this study does not search counts as tried only: its cost is never asked)."""
        self.tried.add(o.config.path)
        if o.duration_s <= 0 or o.config.path not in self.plugins:
            return
        key = _cost_key(self.plugins[o.config.path], {**o.config.convert, **o.config.runtime})
        self._same.setdefault((o.config.path, key), _Durations()).add(o)
        self._path.setdefault(o.config.path, _Durations()).add(o)

    def expected(self, path: str, params: Params) -> float:
        """Seconds a trial of `path` with `params` is expected to take: the mean of the study's own trials
        with the same cost-deciding params; else the path's declared cost for those params (COST_BY); else
        the mean of the path's trials; else its COST_S (a tenth of its timeout where it declares none).
        A trial stopped by its timeout says only that the cost is at least that long."""
        module = self.plugin(path)
        declared = module.cost_s
        for name, table in module.cost_by.items():
            if params.get(name) in table:
                declared = float(table[params[name]])
        same = self._same.get((path, _cost_key(module, params)))
        if same is not None:
            return same.cost(declared)
        mine = None if any(n in params for n in module.cost_by) else self._path.get(path)
        return mine.cost(declared) if mine is not None else declared

    def per_path(self) -> dict[str, float]:
        """Seconds a trial of each searched path is expected to take, whatever its params."""
        return {name: self.expected(name, {}) for name in self.plugins}

    def label(self, path: str, params: Params) -> str:
        """The path and the params that decide its cost, as the report names them."""
        by = sorted(self.plugin(path).cost_by)
        return " ".join([path, *(f"{k}={params[k]}" for k in by if k in params)])

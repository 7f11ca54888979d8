"""Progress bar for a study: budget spent, trials done, best so far (rich)."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from navigator.records import TrialOutcome
from navigator.settings import OptimizeSettings


class Progress:
    def __init__(self, settings: OptimizeSettings, spent_s: float, enabled: bool = True) -> None:
        self.settings = settings
        self.spent_s = spent_s
        self.enabled = enabled
        self.trials = 0
        self.best = ""
        self._best_value: float | None = None
        self._bar: Any = None
        self._task: Any = None
        self._start = time.monotonic()

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.progress import BarColumn, Progress as RichProgress, TextColumn, TimeRemainingColumn

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(),
                                     TextColumn("{task.fields[status]}"), transient=False)
            self._bar.start()
            self._task = self._bar.add_task("searching", total=self.settings.budget_s,
                                            completed=self.spent_s, status="starting")
        return self

    def update(self, outcome: TrialOutcome) -> None:
        self.trials += 1
        b = outcome.bench
        if b is not None:
            # Compare as "higher is better": throughput, or minus p99 latency.
            value = b.throughput if self.settings.objective == "throughput" else -b.p99_ms
            if self._best_value is None or value > self._best_value:
                self._best_value = value
                self.best = f"{b.throughput:.1f}/s" if self.settings.objective == "throughput" else f"{b.p99_ms:.3f} ms p99"
        if self._bar is not None:
            elapsed = self.spent_s + time.monotonic() - self._start
            status = f"trials {self.trials}  last {outcome.config.path}: {outcome.status}  best {self.best or '-'}"
            self._bar.update(self._task, completed=min(elapsed, self.settings.budget_s), status=status)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()

"""What a run shows while it works: a bar of the budget (rich) on a terminal, one line per trial
otherwise; the phase (search, finalists, deploy); messages (resumed, loaded machine) always."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from navigator import objective as objectives
from navigator.records import TrialConfig, TrialOutcome
from navigator.search.budget import Budget
from navigator.settings import StudySettings


class Progress:
    def __init__(self, settings: StudySettings, budget: Budget, enabled: bool = True,
                 tty: bool | None = None) -> None:
        self.settings = settings
        self.goal = objectives.for_study(settings)  # the best is the best within every constraint
        self.budget = budget
        self.enabled = enabled
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.trials = 0
        self.best = ""
        self.said: list[str] = []  # messages shown, in order
        self.warnings: list[str] = []  # warnings shown (once each), for the report
        self._best_value: float | None = None
        self._bar: Any = None
        self._task: Any = None
        self._phase = "searching"

    def __enter__(self) -> Progress:
        if self.enabled and self.tty:
            from rich.progress import BarColumn, Progress as RichProgress, TextColumn, TimeRemainingColumn

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(),
                                     TextColumn("{task.fields[status]}"), transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self._phase, total=self.budget.total_s,
                                            completed=min(self.budget.spent(), self.budget.total_s), status="starting")
        return self

    def say(self, message: str) -> None:
        """A message line (above the bar on a terminal), shown whether or not the bar is."""
        self.said.append(message)
        if self._bar is not None:
            self._bar.console.print(f"navigator: {message}", highlight=False)
        else:
            print(f"navigator: {message}", file=sys.stderr, flush=True)

    def warn(self, message: str) -> None:
        """A warning, shown once (by its first words: a loaded machine is one warning however loaded)."""
        if message and not any(w.split(" (")[0] == f"warning: {message}".split(" (")[0] for w in self.warnings):
            self.warnings.append(f"warning: {message}")
            self.say(f"warning: {message}")

    def start_trial(self, config: TrialConfig) -> None:
        self._refresh(f"trial {config.number} {config.path} running")

    def update(self, outcome: TrialOutcome) -> None:
        self.trials += 1
        b = outcome.bench
        figure = ""
        if b is not None:
            value, figure = self.goal.score(b), self.goal.show(b)  # compared as "higher is better"
            broken = self.goal.broken(outcome)
            figure += f" ({broken})" if broken else ""
            if not broken and (self._best_value is None or value > self._best_value):
                self._best_value, self.best = value, figure
        status = f"trials {self.trials}  last {outcome.config.path}: {outcome.status}  best {self.best or '-'}"
        if self._bar is None and self.enabled:
            print(f"trial {outcome.config.number} {outcome.config.path}: {outcome.status}"
                  f"{' ' + figure if figure else ''} in {outcome.duration_s:.1f} s | spent "
                  f"{self.budget.spent():.0f}/{self.budget.total_s:.0f} s | best {self.best or '-'}",
                  file=sys.stderr, flush=True)
        self._refresh(status)

    def phase(self, name: str, expected_s: float) -> None:
        """The run moves on to `name` (finalists, deploying), expected to take about `expected_s`."""
        self._phase = name
        if self._bar is None and self.enabled:
            about = f", about {expected_s:.0f} s" if expected_s >= 1 else ""
            print(f"{name}{about} | spent {self.budget.spent():.0f}/{self.budget.total_s:.0f} s",
                  file=sys.stderr, flush=True)
        self._refresh(f"best {self.best or '-'}")

    def _refresh(self, status: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=self._phase, status=status,
                             completed=min(self.budget.spent(), self.budget.total_s))

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._refresh(f"trials {self.trials}  best {self.best or '-'}")
            self._bar.stop()

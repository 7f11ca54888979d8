"""What a study already knows, so that no budget goes to repeats.

- A configuration measured before is answered from the study (its stored outcome), not run again.
- A conversion failure whose message (numbers aside) repeats for two conversion settings that differ in
  one parameter does not depend on that parameter: the path's conversion is taken as failing for every
  value of it (an ONNX export that fails for opset 17 and 18 is not tried with the other opsets).
- Each path's space is finite (choices and integer ranges); when every configuration of every path has
  been seen or ruled out, the space is exhausted and the search ends.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass

from navigator.records import Params, TrialConfig, TrialOutcome
from navigator.search.space import PathSpace, points

Point = tuple[str, Params, Params, int]  # path, convert params, runtime params, batch size


def key(path: str, convert: Params, runtime: Params, batch: int) -> str:
    return json.dumps([path, convert, runtime, batch], sort_keys=True)


@dataclass(frozen=True)
class Answer:
    """How the study answers a configuration without running it: `outcome` of trial `number` (a
    repeat), or None where the configuration is ruled out (`reason`)."""

    number: int
    outcome: TrialOutcome | None
    reason: str


@dataclass(frozen=True)
class Failing:
    """A path's conversion fails with `message` whenever its convert params match `fixed`, whatever
    the `free` ones (learnt from `numbers`)."""

    path: str
    fixed: Params
    free: tuple[str, ...]
    message: str
    numbers: tuple[int, ...]

    def matches(self, path: str, convert: Params) -> bool:
        return path == self.path and all(k in convert and convert[k] == v for k, v in self.fixed.items())


def _message(error: str) -> str:
    return re.sub(r"\d+", "N", error)


class Seen:
    def __init__(self, spaces: dict[str, PathSpace], source: tuple[str, str], batch_sizes: tuple[int, ...],
                 seed: int = 0) -> None:
        self.measured: dict[str, TrialOutcome] = {}
        self.failing: list[Failing] = []
        self.uncovered: dict[str, Point] = {}
        self.bounded = True
        self.repeats = 0  # configurations answered from the study in this run
        self.ruled_out = 0  # configurations not run for a failure that does not depend on them
        self.used: dict[str, str] = {}  # the rules that ruled configurations out -> their failure
        self._rng = random.Random(seed)
        for path, space in spaces.items():
            found = points(space, source)
            if found is None:
                self.bounded = False
                continue
            for convert, runtime in found:
                for batch in batch_sizes:
                    self.uncovered[key(path, convert, runtime, batch)] = (path, convert, runtime, batch)

    def add(self, o: TrialOutcome) -> None:
        c = o.config
        self.measured.setdefault(key(c.path, c.convert, c.runtime, c.batch_size), o)
        self.uncovered.pop(key(c.path, c.convert, c.runtime, c.batch_size), None)
        # run_trial sets convert_s once the conversion returned: a failure without it is the conversion's.
        if o.status == "failed" and o.convert_s == 0.0 and c.convert:
            self._conversion_failed(o)

    def drop(self, c: TrialConfig) -> None:
        """A configuration that will not run (skipped for its cost): no longer among the unseen."""
        self.uncovered.pop(key(c.path, c.convert, c.runtime, c.batch_size), None)

    def _conversion_failed(self, o: TrialOutcome) -> None:
        c, message = o.config, _message(o.error)
        known = [f for f in self.failing if f.path == c.path and f.message == message]
        if any(f.matches(c.path, c.convert) for f in known):
            return
        # The same conversion params convert the same way, whatever the runtime params.
        self._rule_out(Failing(c.path, dict(c.convert), (), message, (c.number,)))
        for f in known:  # the same failure where only one conversion param differs: it does not matter
            differ = [k for k, v in f.fixed.items() if c.convert.get(k, v) != v]
            if len(differ) == 1 and set(f.fixed) <= set(c.convert):
                self._rule_out(Failing(c.path, {k: v for k, v in f.fixed.items() if k != differ[0]},
                                       (*f.free, differ[0]), message, (*f.numbers, c.number)))

    def _rule_out(self, failing: Failing) -> None:
        # Two rules of one failure that differ in one fixed param: that param does not matter either.
        for f in list(self.failing):
            if (f.path, f.message, f.free, set(f.fixed)) != (failing.path, failing.message, failing.free,
                                                             set(failing.fixed)):
                continue
            differ = [k for k, v in f.fixed.items() if failing.fixed[k] != v]
            if len(differ) == 1:
                failing = Failing(f.path, {k: v for k, v in f.fixed.items() if k != differ[0]},
                                  (*f.free, differ[0]), f.message, (*f.numbers, *failing.numbers))
        self.failing.append(failing)
        self.uncovered = {k: p for k, p in self.uncovered.items() if not failing.matches(p[0], p[1])}

    def answer(self, config: TrialConfig) -> Answer | None:
        """The study's answer to a configuration it need not run, or None (run it)."""
        old = self.measured.get(key(config.path, config.convert, config.runtime, config.batch_size))
        if old is not None:
            self.repeats += 1
            return Answer(old.config.number, old, f"same configuration as trial {old.config.number}")
        for f in reversed(self.failing):  # the widest rule last learnt first
            if f.matches(config.path, config.convert):
                self.ruled_out += 1
                self.used.setdefault(_why(f), f.message)
                return Answer(f.numbers[-1], None, _why(f))
        return None

    def exhausted(self) -> bool:
        """Every configuration of every path seen or ruled out (never for a path too large to count)."""
        return self.bounded and not self.uncovered

    def unseen(self, first: bool = False) -> Point | None:
        """A configuration not seen yet: the first in file order with `first` (a grid), else at random."""
        if not self.uncovered:
            return None
        if first:
            return next(iter(self.uncovered.values()))
        return self._rng.choice(list(self.uncovered.values()))

    def notes(self) -> list[str]:
        out = []
        if self.repeats:
            out.append(f"{self.repeats} configuration(s) proposed again by the sampler were answered from "
                       "the study, not measured again")
        if self.ruled_out:
            out.append(f"{self.ruled_out} configuration(s) were not run: " + "; ".join(
                f"{why}: {message}" for why, message in self.used.items()))
        return out


def _why(f: Failing) -> str:
    if not f.free:
        return f"{f.path} conversion with these settings failed in trial {f.numbers[0]}"
    return (f"{f.path} conversion fails the same way whatever its {', '.join(f.free)} "
            f"(trials {', '.join(map(str, f.numbers))})")

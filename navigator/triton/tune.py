"""Serving-level search: Triton's own knobs (max_batch_size, dynamic batching, instance count) jointly with
each instance's runtime threads, measured through a real server by perf_analyzer.

Objective: the best throughput over the concurrency range among points whose p99 is within the latency
limit. The server runs in explicit model-control mode; each configuration is loaded with a config override
(the model files stay), measured, and unloaded. The default configuration and the best are re-measured
alternately at the end, so the reported gain is a side-by-side ratio.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from navigator.errors import ServeError
from navigator.records import PerfPoint, ServingConfig, ServingTrial
from navigator.triton.deployment import Deployment


@dataclass(frozen=True)
class TuneSettings:
    batch_size: int  # rows per client request (perf_analyzer -b)
    concurrency: tuple[int, ...]
    budget_s: float
    latency_limit_ms: float | None = None
    interval_ms: int = 1500
    rounds: int = 2  # final alternating re-measurements of the default and the best
    dynamic_batching: bool = True  # False (--no-dynamic-batching): the search never turns it on


def score(points: tuple[PerfPoint, ...], limit_ms: float | None) -> float | None:
    within = [p.throughput for p in points if limit_ms is None or p.p99_ms <= limit_ms]
    return max(within, default=None)


def suggest(trial: Any, batch_size: int, cores: int, streams: bool = False, max_batch: int | None = None,
            batching: bool = True) -> ServingConfig:
    """One point of the serving space (optuna define-by-run); `streams` adds OpenVINO's streams; `max_batch`
    (the largest batch the artifact was validated at, the written default) caps max_batch_size and is one
    of its choices; `batching` False keeps dynamic batching off."""
    sizes = sorted({min(batch_size * m, max_batch or batch_size * m) for m in (1, 2, 4, 8)} | {max_batch or batch_size})
    max_batch = trial.suggest_categorical("max_batch_size", sizes)
    dynamic = trial.suggest_categorical("dynamic_batching", [False, True] if batching else [False])
    delay = trial.suggest_categorical("max_queue_delay_us", [0, 100, 500, 2000]) if dynamic else 0
    instances = trial.suggest_int("instances", 1, max(1, min(4, cores)))
    threads = trial.suggest_int("threads", 1, max(1, cores))
    num_streams = trial.suggest_int("streams", 1, max(1, cores)) if streams else None
    return ServingConfig(max_batch, instances, dynamic, delay, (), threads, num_streams)


class Bench:
    """Load a configuration into the running server, run perf_analyzer over the concurrencies, unload."""

    def __init__(self, server: Any, deployment: Deployment, data: Path, work: Path, settings: TuneSettings):
        import tritonclient.http as http

        self.server, self.deployment, self.data, self.work, self.settings = server, deployment, data, work, settings
        self.client = http.InferenceServerClient(server.http_url, network_timeout=300.0)

    def __call__(self, number: int, config: ServingConfig) -> ServingTrial:
        from google.protobuf import json_format

        from navigator.triton import perf

        name = self.deployment.name
        if not self.server.alive():
            raise ServeError(f"tritonserver ended (exit code {self.server.process.returncode}): {self.server.log_tail()}")
        try:
            override = json_format.MessageToJson(self.deployment.config(config))
            self.client.load_model(name, config=override)
            points = tuple(perf.measure(self.server.grpc_url, name, self.settings.batch_size, c, self.data,
                                        self.work / f"trial-{number}", self.settings.interval_ms)
                           for c in self.settings.concurrency)
        except Exception as exc:  # a configuration the server refuses or that fails under load
            return ServingTrial(number, config, error=" ".join(str(exc).split())[:300])
        finally:
            try:
                self.client.unload_model(name)
            except Exception:
                pass
        return ServingTrial(number, config, points, score(points, self.settings.latency_limit_ms))

    def close(self) -> None:
        self.client.close()


def _median_trial(runs: list[ServingTrial], limit_ms: float | None) -> ServingTrial:
    """One trial whose points are the per-concurrency medians of repeated runs."""
    good = [r for r in runs if r.points]
    if not good:
        return runs[-1]
    points = []
    for i, first in enumerate(good[0].points):
        same = [r.points[i] for r in good]
        med = {k: statistics.median(getattr(p, k) for p in same)
               for k in ("throughput", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "queue_ms", "compute_ms")}
        points.append(PerfPoint(first.concurrency, stable=all(p.stable for p in same), **med))
    return replace(good[0], points=tuple(points), score=score(tuple(points), limit_ms))


def tune(deployment: Deployment, inputs: dict[str, np.ndarray], settings: TuneSettings, work: Path,
         log: Path) -> tuple[ServingTrial, ServingTrial, list[ServingTrial]]:
    """(default, best, every trial): the deployment as written is the default; the best is what the search
    found, re-measured alternately with the default (both as medians of those rounds; the best may then
    lose, and the caller keeps the default). The deployment must be servable here."""
    import optuna

    from navigator.triton import perf
    from navigator.triton import server as triton_server

    from navigator.triton.config import stream_key

    cores = os.cpu_count() or 1
    streams = stream_key(deployment.model) is not None
    work.mkdir(parents=True, exist_ok=True)
    repo = work / "repository"
    deployment.write(repo)
    data = perf.input_data({s.name: inputs[s.name] for s in deployment.io.inputs}, deployment.io.batched,
                           work / "perf-input.json")
    settings = replace(settings, batch_size=settings.batch_size if deployment.io.batched else 0)
    trials: list[ServingTrial] = []
    with triton_server.serve(repo, log, explicit=True) as srv:
        bench = Bench(srv, deployment, data, work, settings)
        try:
            start = time.monotonic()
            default = bench(0, deployment.serving)
            durations = [time.monotonic() - start]
            trials.append(default)
            if default.error:
                raise ServeError(f"the default serving configuration failed: {default.error}")
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
            seen = {json.dumps(deployment.serving.__dict__, sort_keys=True, default=list)}
            repeats = 0

            def left() -> float:  # the final re-measurements of the default and the best come out of the budget
                return settings.budget_s - (time.monotonic() - start) - 2 * settings.rounds * statistics.median(durations)

            while left() > 0 and deployment.io.batched:
                trial = study.ask()
                config = suggest(trial, max(1, settings.batch_size), cores, streams,
                                 deployment.serving.max_batch_size, settings.dynamic_batching)
                key = json.dumps(config.__dict__, sort_keys=True, default=list)
                if key in seen:  # the sampler repeated itself: no new information, no new measurement
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    repeats += 1
                    if repeats >= 100:  # the space is exhausted (or nearly)
                        break
                    continue
                seen.add(key)
                repeats = 0
                began = time.monotonic()
                result = bench(len(trials), config)
                durations.append(time.monotonic() - began)
                trials.append(result)
                if result.score is None:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                else:
                    study.tell(trial, result.score)
            best = max((t for t in trials if t.score is not None), key=lambda t: t.score or 0.0, default=default)
            if best is default:
                return default, default, trials
            again: dict[int, list[ServingTrial]] = {0: [default], best.number: [best]}
            for _ in range(settings.rounds):
                for t in (default, best):
                    again[t.number].append(bench(t.number, t.config))
        finally:
            bench.close()
    default, best = (_median_trial(again[0], settings.latency_limit_ms),
                     _median_trial(again[best.number], settings.latency_limit_ms))
    return default, best, trials

"""The trial worker process: `python -m navigator.trial.worker`.

It loads the source once (from a file, as the parent did), then answers requests, one JSON line each
on its own protocol pipe: {"op": "trial", "config": TrialConfig} -> TrialOutcome,
{"op": "remeasure", ...} -> [Finalist], {"op": "outputs", ...} -> output names (the arrays in a file),
{"op": "served_max", "config": TrialConfig, "sizes": [int]} -> [batch, [failures]]. Everything the libraries print goes to stderr, which the
parent keeps in a log file and quotes when this process dies, with the stage the process was in: each
request and each stage of a trial writes a STAGE_MARK line there.

A trial that failed with an error that leaves the CUDA context unusable (TAINTED: a sticky CUDA error, a
CUDA-graph capture broken by an operation it cannot hold) would fail every later trial in this process:
its reply says so ("restart") and the process exits, so that the parent starts a clean one.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any, TextIO

from navigator.errors import one_line
from navigator.records import TrialConfig, TrialOutcome, WorkerSpec, from_dict, to_dict
from navigator.settings import StudySettings

# Errors after which this process's CUDA context cannot be trusted (torch raises AcceleratorError for
# CUDA runtime errors; a broken capture also leaves the RNG's graph-safe state behind).
TAINTED = re.compile(r"AcceleratorError|CUDA error|graph capture|stream is capturing|illegal memory access|"
                     r"CUBLAS_STATUS|CUDNN_STATUS")
STAGE_MARK = "[navigator stage]"  # then the local time it began and the stage: read by trial/isolate.py
STAGE_TIME = "%Y-%m-%dT%H:%M:%S"  # then .milliseconds


def _mark_stages() -> logging.Logger:
    """The trial stages' logger, written to stderr as STAGE_MARK lines (trial/run.py, which the first
    request, the load, imports anyway)."""
    from navigator.trial.run import STAGES as stages

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{STAGE_MARK} %(asctime)s.%(msecs)03d %(message)s", STAGE_TIME))
    stages.addHandler(handler)
    stages.setLevel(logging.INFO)
    stages.propagate = False
    return stages


def _protocol_pipe() -> TextIO:
    """A private copy of stdout for replies; fd 1 then points at stderr, so stray prints are logged."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    return proto


def _load(spec: WorkerSpec, settings: Any) -> Any:
    from navigator.source import load_source
    from navigator.cache import Cache
    from navigator.trial.run import TrialContext

    record = spec.source
    source = load_source(record.model, input_spec=record.input_spec,
                         input_data=Path(record.input_data) if record.input_data else None,
                         trust_pickle=record.trust_pickle, batch=spec.batch,
                         calibration=Path(record.calibration_data) if record.calibration_data else None,
                         generated=record.generated_inputs)
    source.name, source.fingerprint = spec.name, spec.fingerprint  # the parent's identity of the model
    metric = None
    if spec.metric is not None:
        from navigator.source.metric import restore

        metric = restore(spec.metric)
    return TrialContext(source, Cache(Path(spec.cache_dir), spec.fingerprint), settings, metric)


def _handle(ctx: Any, request: dict[str, Any]) -> Any:
    from navigator.trial.run import run_trial

    if request["op"] == "trial":
        return to_dict(run_trial(ctx, from_dict(TrialConfig, request["config"]), request.get("bar")))
    if request["op"] == "remeasure":
        from navigator.trial.remeasure import remeasure

        chosen = [(role, from_dict(TrialOutcome, o)) for role, o in request["chosen"]]
        return to_dict(remeasure(ctx, chosen, int(request["rounds"])))
    if request["op"] == "served_max":
        from navigator.trial.served import largest_valid

        return list(largest_valid(ctx, from_dict(TrialConfig, request["config"]), list(request["sizes"])))
    if request["op"] == "outputs":  # the gate's output check: a winner run on other inputs
        from navigator.trial.outputs import outputs_on

        return outputs_on(ctx, from_dict(TrialConfig, request["config"]), Path(request["inputs"]),
                          Path(request["out"]))
    raise ValueError(f"unknown request {request['op']!r}")


def main() -> None:
    proto = _protocol_pipe()
    stages = _mark_stages()
    ctx = None
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "exit":
            break
        stages.info("answering %s", "the load of the model" if request["op"] == "load" else request["op"])
        try:
            if request["op"] == "load":
                settings = from_dict(StudySettings, request["settings"])
                ctx = _load(from_dict(WorkerSpec, request["spec"]), settings)
                reply: Any = {"ok": True}
            else:
                reply = {"ok": True, "result": _handle(ctx, request)}
        except Exception as exc:  # reported to the parent, which records it on the trial
            reply = {"ok": False, "error": one_line(exc)}
        if TAINTED.search(_error(reply)):
            reply["restart"] = True
        proto.write(json.dumps(reply) + "\n")
        if reply.get("restart"):
            break
        gc.collect()  # drop the trial's runtime (sessions, thread pools) before the next one


def _error(reply: dict[str, Any]) -> str:
    """The error a reply carries: the request's own, or the trial outcome's."""
    result = reply.get("result")
    return str(reply.get("error") or (result.get("error") if isinstance(result, dict) else "") or "")


if __name__ == "__main__":
    main()

"""Traced artifacts, and the evidence that tracing froze a model's data-dependent control flow.

torch.jit.trace and the tracing ONNX exporter record the operations one call ran: a Python branch on a
value computed from the input (`if x.sum() > 0`) becomes the branch the samples took, silently wrong
on inputs that take the other. Two signals say a model has such a branch: the tracer's TracerWarning
("Converting a tensor to a Python boolean ...") and torch.export's failure to guard on a
data-dependent expression (GuardOnDataDependentSymNode). Either makes traced artifacts of that source
ineligible to win unless the user allows them (--allow-traced).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from navigator.lazy import require
from navigator.records import TrialConfig, TrialOutcome

if TYPE_CHECKING:
    from navigator.source import ModelSource
    from navigator.cache import Cache

REASON = "traced artifact not eligible"
EVIDENCE_FILE = "evidence.txt"


def is_traced(source: ModelSource, config: TrialConfig) -> bool:
    """Whether this trial's artifact comes from tracing Python code: a live or unpickled module through
    TorchScript's trace or the tracing ONNX exporter (an ExportedProgram or TorchScript source has no
    Python control flow left to freeze)."""
    if source.framework != "torch" or source.kind != "module":
        return False
    return config.convert.get("exporter") == "torchscript" or (
        config.path == "torchscript" and config.convert.get("method", "trace") == "trace")


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else ""


def _find(source: ModelSource, out: Path) -> None:
    """Trace the source once with warnings recorded, and try torch.export; write what they say."""
    torch = require("torch")
    from navigator.paths._onnx_export import export_program
    from navigator.paths._torch import example_args
    from navigator.source import torch as torch_source

    found = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            torch.jit.trace(torch_source.flat_module(source.kind, source.model), example_args(source),
                            strict=False, check_trace=False)
        except Exception:  # a model the tracer cannot take has no traced artifact to judge
            pass
    # torch's own modules warn on their argument checks (nn.GRU's shape checks), not on branches that
    # pick what they compute: only warnings from the model's code count.
    inside = str(Path(str(torch.__file__)).parent)
    tracer = [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)
              and not str(w.filename).startswith(inside)]
    if tracer:
        found.append(f"TracerWarning at {Path(tracer[0].filename).name}:{tracer[0].lineno}: "
                     f"{_first_line(str(tracer[0].message))}")
    try:
        export_program(source)
    except Exception as exc:  # only a data-dependent guard is evidence; other failures are not
        names = {c.__name__ for c in type(exc).__mro__}
        if "GuardOnDataDependentSymNode" in names or "data-dependent" in str(exc):
            found.append(f"torch.export: {_first_line(str(exc))}")
    (out / EVIDENCE_FILE).write_text("; ".join(found))


def evidence(source: ModelSource, cache: Cache) -> str:
    """Why this source's traced artifacts may be wrong on other inputs ('' when nothing says so);
    found once per source and kept in the conversion cache."""
    return (cache.get("trace_evidence", {}, lambda out: _find(source, out)) / EVIDENCE_FILE).read_text()


def reason(found: str) -> str:
    return (f"{REASON}: the model branches on input values, the trace keeps one branch ({found}); "
            "--allow-traced lets it win")


def note(outcomes: list[TrialOutcome] | tuple[TrialOutcome, ...]) -> str:
    """The report's note when traced trials were set aside ('' when none were)."""
    numbers = [o.config.number for o in outcomes if REASON in o.error]
    if not numbers:
        return ""
    return (f"{len(numbers)} traced trial(s) not eligible to win ({', '.join(map(str, numbers[:10]))}"
            f"{', ...' if len(numbers) > 10 else ''}): tracing found control flow that depends on the input "
            "values, so a traced artifact replays the branches the samples took; TorchScript script, "
            "the dynamo exporter and the eager model are not affected (--allow-traced lets traced ones win)")

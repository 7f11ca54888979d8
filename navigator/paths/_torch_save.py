"""The source PyTorch model saved for serving, shared by eager and the PyTorch-on-CUDA paths (not a path
itself): the source file as given, or a live module exported to an ExportedProgram (model.pt2)."""

from __future__ import annotations

import shutil
from pathlib import Path

from navigator.cache import Cache
from navigator.lazy import require
from navigator.records import Artifact, Params
from navigator.source import ModelSource

STEP = "eager"  # the cache step (and artifact path) of the saved model
FILES = {"module": "model.pt", "torchscript": "model.pt", "exported": "model.pt2"}


def _save(source: ModelSource, out: Path) -> None:
    if source.file is not None:
        shutil.copyfile(source.file, out / FILES[source.kind])
        return
    torch = require("torch")
    if source.kind == "torchscript":
        torch.jit.save(source.model, str(out / FILES["torchscript"]))
        return
    program = source.model
    if source.kind == "module":
        from navigator.paths._onnx_export import export_program

        try:
            program = export_program(source)
        except Exception as exc:  # torch.export cannot capture every module (data-dependent control flow)
            (out / "unsaved.txt").write_text(f"torch.export failed: {type(exc).__name__}: {exc}\n")
            return
    torch.export.save(program, str(out / FILES["exported"]))


def saved(source: ModelSource, params: Params, cache: Cache) -> Artifact:
    """The eager path's artifact: one cache entry, also served by torch_cuda and torch_compile."""
    d = cache.get(STEP, {}, lambda out: _save(source, out))
    files = [f for f in d.iterdir() if f.name in set(FILES.values())]
    return Artifact(STEP, d, d.name, dict(params), files[0] if files else None)

"""Writes a Triton model repository atomically: built in a temporary directory, then renamed."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from navigator.triton.config import to_text


def replace_dir(build: Path, final: Path) -> None:
    """Move a finished directory into place, replacing an older one without a half-written moment."""
    old = None
    if final.exists():
        old = final.with_name(f".old-{final.name}-{os.getpid()}")
        os.rename(final, old)
    os.rename(build, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write(repository: Path, name: str, config: Any, files: dict[str, Path]) -> Path:
    """<repository>/<name>/config.pbtxt and <repository>/<name>/1/<files or directories>; returns the model dir."""
    repository.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-repo-", dir=repository.parent))
    os.chmod(tmp, 0o755)  # a server running as another user must read it
    try:
        model_dir = tmp / name
        version = model_dir / "1"
        version.mkdir(parents=True)
        (model_dir / "config.pbtxt").write_text(to_text(config))
        for rel, src in files.items():
            if Path(src).is_dir():  # a SavedModel directory, the python twin's runtimes package
                shutil.copytree(src, version / rel, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copyfile(src, version / rel)
                if rel.endswith(".onnx"):  # weights an ONNX file keeps outside itself go with it
                    from navigator.source.onnx import copy_external

                    copy_external(Path(src), version / rel)
        replace_dir(tmp, repository)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return repository / name

"""Triton python-backend deployments: a model.py from templates/ next to the model file."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from navigator.paths.base import TritonModel

TEMPLATES = {"torch": "torch_model.py"}


def model(runtime: str, model_file: Path, parameters: dict[str, str]) -> TritonModel:
    """A python-backend TritonModel running `model_file` with the template for `runtime`."""
    template = importlib.resources.files("navigator.triton").joinpath("templates", TEMPLATES[runtime])
    with importlib.resources.as_file(template) as script:
        files = {"model.py": Path(script), model_file.name: model_file}
    return TritonModel(backend="python", files=files, parameters={"MODEL_FILE": model_file.name, **parameters})

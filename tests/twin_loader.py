"""Runs a written python-backend twin in this process, the way Triton's python backend starts it:
model.py imported from its version directory (with a stand-in for triton_python_backend_utils), then
TritonPythonModel.initialize() with the config.pbtxt as JSON."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any, Iterator

import pytest

PACKAGE = "navigator_twin_runtimes"  # templates/model.py's name for the shipped runtimes


def _forget() -> None:
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
        del sys.modules[name]


class TwinLoader:
    def template(self, model_dir: Path) -> Any:
        """The model.py module of <repository>/<model>, its shipped runtimes imported."""
        spec = importlib.util.spec_from_file_location("navigator_twin_model", model_dir / "1" / "model.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        hook = sys.unraisablehook
        try:
            spec.loader.exec_module(module)
        finally:
            sys.unraisablehook = hook
        _forget()  # each model directory's own copy
        module.runtimes(str(model_dir / "1"))
        return module

    def runtime(self, name: str) -> Any:
        """A module of the shipped runtimes imported by template(): ort, openvino, torch."""
        return importlib.import_module(f"{PACKAGE}.{name}")

    def start(self, module: Any, model_dir: Path) -> Any:
        """TritonPythonModel.initialize() as the python backend calls it; returns the model object."""
        from google.protobuf import json_format

        from navigator.triton.config import from_text

        config = from_text((model_dir / "config.pbtxt").read_text())
        args = {"model_config": json.dumps(json_format.MessageToDict(config, preserving_proto_field_name=True)),
                "model_repository": str(model_dir), "model_version": "1", "model_instance_kind": "CPU"}
        model = module.TritonPythonModel()
        model.initialize(args)
        return model


@pytest.fixture
def twin_loader(monkeypatch: pytest.MonkeyPatch) -> Iterator[TwinLoader]:
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", types.ModuleType("triton_python_backend_utils"))
    yield TwinLoader()
    _forget()

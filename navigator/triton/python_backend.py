"""Triton python-backend deployments: templates/model.py next to the converted model file.

A native deployment (onnxruntime, openvino, pytorch_libtorch) has a python-backend twin that runs the same
file with the same settings, keyed as the native backend documents them, so that a server with the python
backend only (PyTriton's, the one `serve-check` starts here) serves what navigator tuned.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import replace
from pathlib import Path

from navigator.errors import InputError
from navigator.records import TritonModel

TEMPLATE = "model.py"
# native backend -> the template's RUNTIME
RUNTIMES = {"onnxruntime": "onnxruntime", "openvino": "openvino", "pytorch": "torch"}


def model(runtime: str, model_file: Path, parameters: dict[str, str]) -> TritonModel:
    """A python-backend TritonModel running `model_file` with the template's `runtime`."""
    template = importlib.resources.files("navigator.triton").joinpath("templates", TEMPLATE)
    with importlib.resources.as_file(template) as script:
        files = {"model.py": Path(script), model_file.name: model_file}
    return TritonModel(backend="python", files=files,
                       parameters={"RUNTIME": runtime, "MODEL_FILE": model_file.name, **parameters})


def from_native(native: TritonModel) -> TritonModel:
    """The python-backend twin of a native deployment (itself when it already is one)."""
    if native.backend == "python":
        return native
    runtime = RUNTIMES.get(native.backend or ("pytorch" if "pytorch" in native.platform else ""))
    if runtime is None:
        raise InputError(f"no python-backend runtime for the {native.backend or native.platform} backend")
    if native.cpu_accelerators or any(name != "cuda" for name in native.gpu_accelerators):
        names = ", ".join([*native.cpu_accelerators, *native.gpu_accelerators])
        raise InputError(f"no python-backend runtime for the {names} execution accelerator")
    from navigator.triton.backends import BACKENDS

    default = native.default_model_filename or BACKENDS[native.backend or "pytorch"].files[0]
    name = default if default in native.files else next(iter(native.files))  # model.onnx, model.xml, model.pt
    parameters = dict(native.parameters)
    if native.graph_level is not None:
        parameters["GRAPH_LEVEL"] = str(native.graph_level)
    twin = model(runtime, native.files[name], parameters)
    files = {**native.files, "model.py": twin.files["model.py"]}  # companions too (model.bin next to .xml)
    return replace(twin, files=files, parameters={**twin.parameters, "MODEL_FILE": name}, kind=native.kind)

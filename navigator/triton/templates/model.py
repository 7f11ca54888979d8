"""Triton python-backend model written by navigator: runs a converted model with the trial's own runtime
code, for servers without that runtime's native backend (PyTriton, a python-only server).

The version directory holds this file, the model file, `runtimes/` (a copy of navigator/runtimes: the
session code the trial's runner used) and twin.json: {"runtime": torch | onnxruntime | openvino,
"device": cpu | cuda, "params": the trial's params, "unpickle": whether the model file is a pickle its
deployer trusted}. The session is built from those params by the same functions the trial called.
config.pbtxt parameters: RUNTIME and MODEL_FILE (the file in this version directory), and serving knobs
that replace the param of the same name (threads, intra_op_num_threads, inference_num_threads,
num_streams: what navigator's serving tuner sets per instance).
With max_batch_size > 0 the requests of one execute() call (Triton's dynamic batcher) run as one batch.
Tensors cross the stub through DLPack, which works with NumPy 1 and 2 alike (the stub's NumPy path does
not: with NumPy 2 it returns empty outputs).
"""

import importlib
import importlib.util
import json
import os
import sys

import numpy as np
import triton_python_backend_utils as pb_utils

SPEC = "twin.json"
PACKAGE = "navigator_twin_runtimes"  # the shipped runtimes/, imported under a name no installed package has
OVERRIDES = ("threads", "intra_op_num_threads", "inference_num_threads", "num_streams")


def _quiet_dlpack_deleter(hook):
    # NumPy's DLPack capsule destructor reports the stub's renamed (consumed) capsule as an error; the
    # stub owns the tensor by then, so the report is noise on every response.
    def unraisable(info):
        if not (isinstance(info.exc_value, ValueError) and "PyCapsule_GetPointer" in str(info.exc_value)):
            hook(info)
    return unraisable


sys.unraisablehook = _quiet_dlpack_deleter(sys.unraisablehook)


def runtimes(version_dir):
    """The runtimes package shipped in `version_dir` (imported once per stub process)."""
    if PACKAGE not in sys.modules:
        init = os.path.join(version_dir, "runtimes", "__init__.py")
        spec = importlib.util.spec_from_file_location(PACKAGE, init,
                                                      submodule_search_locations=[os.path.dirname(init)])
        package = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE] = package
        spec.loader.exec_module(package)
    return sys.modules[PACKAGE]


def trial_params(spec, parameters):
    """The trial's params, with the serving knobs config.pbtxt sets in their place."""
    params = dict(spec["params"])
    for key in OVERRIDES:
        if key in parameters:
            value = parameters[key]
            params[key] = int(value) if value.lstrip("-").isdigit() else value
    return params


def open_model(version_dir, model_file, spec, params, names):
    """The runner the trial measured, built by the shipped runtimes from the trial's params."""
    runtime, device = spec["runtime"], spec.get("device", "cpu")
    path = os.path.join(version_dir, model_file)
    if runtime == "onnxruntime":
        return importlib.import_module(PACKAGE + ".ort").open_session(path, params, device)
    if runtime == "openvino":
        return importlib.import_module(PACKAGE + ".openvino").OpenVinoRunner(path, params)
    if runtime == "torch":
        rt = importlib.import_module(PACKAGE + ".torch")
        settings = rt.settings(params, device)
        model = rt.place(rt.load_file(path, device, bool(spec.get("unpickle"))), settings)
        return rt.runner(model, names, settings)
    raise ValueError(f"unknown runtime {runtime!r} in {SPEC}; expected torch, onnxruntime or openvino")


def _numpy(tensor):
    try:
        return np.from_dlpack(tensor)
    except (TypeError, BufferError, RuntimeError):  # strings and types DLPack has no code for
        return tensor.as_numpy()


def _tensor(name, array):
    array = np.ascontiguousarray(array)
    try:
        return pb_utils.Tensor.from_dlpack(name, array)
    except (TypeError, BufferError, RuntimeError):
        return pb_utils.Tensor(name, array)


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        p = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        with open(os.path.join(version_dir, SPEC)) as f:
            spec = json.load(f)
        runtimes(version_dir)
        self.inputs = [t["name"] for t in config["input"]]
        self.model = open_model(version_dir, p["MODEL_FILE"], spec, trial_params(spec, p), self.inputs)
        self.outputs = [t["name"] for t in config["output"]]
        self.batching = config.get("max_batch_size", 0) > 0

    def _call(self, arrays):
        return self.model(dict(zip(self.inputs, arrays)))

    def _run(self, batches):
        """batches: per request, its input arrays; one model call when the requests' rows can be stacked."""
        stackable = self.batching and len(batches) > 1 and all(
            [a.shape[1:] for a in b] == [a.shape[1:] for a in batches[0]] for b in batches)
        if not stackable:
            return [self._call(b) for b in batches]
        rows = np.cumsum([b[0].shape[0] for b in batches])[:-1]
        outputs = self._call([np.concatenate(column) for column in zip(*batches)])
        return list(zip(*[np.split(o, rows) for o in outputs]))

    def execute(self, requests):
        batches = [[_numpy(pb_utils.get_input_tensor_by_name(r, n)) for n in self.inputs] for r in requests]
        try:
            results = self._run(batches)
        except Exception as exc:  # every request of the batch gets the error; the model stays up
            error = pb_utils.TritonError(f"{type(exc).__name__}: {exc}")
            return [pb_utils.InferenceResponse(output_tensors=[], error=error) for _ in requests]
        return [pb_utils.InferenceResponse(output_tensors=[_tensor(n, a) for n, a in zip(self.outputs, outs)])
                for outs in results]

    def finalize(self):
        self.model.close()

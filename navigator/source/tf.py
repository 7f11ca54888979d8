"""TensorFlow sources: a SavedModel directory (its serving_default signature) or a Keras `.keras` file.
Input and output names, dtypes and shapes are read from the signature / the Keras model; TensorFlow
itself (eager call or the signature's graph) is the reference.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from navigator.errors import InputError, one_line
from navigator.lazy import require
from navigator.records import TensorSpec

SIGNATURE = "serving_default"


@dataclass
class TFModel:
    """A loaded TensorFlow model: `fn` takes tensors in input order and returns outputs in output order."""

    kind: str  # "savedmodel" | "keras"
    model: Any  # the keras.Model, or the object tf.saved_model.load returned
    fn: Callable[..., list[Any]]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    # The serving signature's output keys, in `outputs` order (a Keras model exported to a SavedModel
    # names them output_0, output_1, ...).
    signature_outputs: tuple[str, ...]


def is_savedmodel(path: Path) -> bool:
    return path.is_dir() and ((path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file())


def import_tf() -> Any:
    """TensorFlow, imported with the process's stderr silenced: its native start-up banner (absl and
    oneDNN notices, which TF_CPP_MIN_LOG_LEVEL no longer silences) would break one-line errors."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        return require("tensorflow")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _spec(name: str, shape: Any, dtype: Any) -> TensorSpec:
    dims = tuple(None if d is None else int(d) for d in (shape.as_list() if hasattr(shape, "as_list") else shape))
    np_dtype = np.dtype(getattr(dtype, "as_numpy_dtype", dtype)).name
    return TensorSpec(name.split(":")[0], np_dtype, dims)


def _savedmodel(path: Path) -> TFModel:
    tf = import_tf()
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:  # a damaged or foreign directory
        raise InputError(f"{path}: TensorFlow could not load the SavedModel ({one_line(exc)})") from None
    signature = loaded.signatures.get(SIGNATURE)
    if signature is None:
        raise InputError(f"{path}: the SavedModel has no {SIGNATURE!r} signature "
                         f"(it has {sorted(loaded.signatures) or 'none'})")
    args, kwargs = signature.structured_input_signature
    if args:
        raise InputError(f"{path}: the {SIGNATURE} signature takes positional inputs; save it with named inputs")
    in_names = sorted(kwargs)
    out_names = sorted(signature.structured_outputs)
    inputs = tuple(_spec(n, kwargs[n].shape, kwargs[n].dtype) for n in in_names)
    outputs = tuple(_spec(n, signature.structured_outputs[n].shape, signature.structured_outputs[n].dtype)
                    for n in out_names)

    def fn(*tensors: Any) -> list[Any]:
        result = signature(**dict(zip(in_names, tensors)))
        return [result[n] for n in out_names]

    return TFModel("savedmodel", loaded, fn, inputs, outputs, tuple(out_names))


def _keras(path: Path) -> TFModel:
    import_tf()
    keras = require("keras")
    try:
        model = keras.saving.load_model(str(path), compile=False)
    except Exception as exc:  # a damaged file, or custom layers the file does not carry
        raise InputError(f"{path}: Keras could not load it ({one_line(exc)})") from None
    if not getattr(model, "inputs", None):
        raise InputError(f"{path}: the Keras model has no defined inputs (build it with keras.Input)")
    inputs = tuple(_spec(t.name, t.shape, t.dtype) for t in model.inputs)
    names = list(getattr(model, "output_names", None) or [f"output_{i}" for i in range(len(model.outputs))])
    outputs = tuple(_spec(n, t.shape, t.dtype) for n, t in zip(names, model.outputs))
    tf = import_tf()

    def fn(*tensors: Any) -> list[Any]:
        out = model(list(tensors) if len(tensors) > 1 else tensors[0], training=False)
        return list(tf.nest.flatten(out))

    return TFModel("keras", model, fn, inputs, outputs, tuple(f"output_{i}" for i in range(len(outputs))))


def load(path: Path) -> tuple[str, TFModel]:
    """(kind, TFModel) from a SavedModel directory or a .keras file."""
    model = _savedmodel(path) if path.is_dir() else _keras(path)
    return model.kind, model


def tensors(model: TFModel, inputs: dict[str, np.ndarray]) -> list[Any]:
    tf = import_tf()
    return [tf.constant(np.ascontiguousarray(inputs[t.name])) for t in model.inputs]


def run(model: TFModel, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Reference outputs: the model called once by TensorFlow, in output order."""
    return [np.asarray(o) for o in model.fn(*tensors(model, inputs))]

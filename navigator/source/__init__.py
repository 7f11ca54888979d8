"""load_source: what the user gave (a file or a live object) -> ModelSource with IOSpec and a reference."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from navigator.errors import InputError, one_line
from navigator.records import IOSpec, TensorSpec
from navigator.source import iospec
from navigator.source import onnx as onnx_source
from navigator.source import tf as tf_source
from navigator.source import torch as torch_source
from navigator.source import trees as tree_source


@dataclass
class ModelSource:
    """The user's model, loaded once: framework, IOSpec, fingerprint, validation samples, reference."""

    framework: str  # "torch" | "onnx" | "tf" | "trees"
    # "module" | "torchscript" | "exported" | "onnx" | "savedmodel" | "keras" | "xgboost" | "lightgbm" | "sklearn"
    kind: str
    name: str
    file: Path | None
    model: Any
    io: IOSpec
    fingerprint: str
    samples: dict[str, np.ndarray]
    input_spec: str | None = None
    input_data: Path | None = None
    trust_pickle: bool = False
    notes: tuple[str, ...] = ()  # what the report should say about the source (generated integer inputs)
    generated: bool = False  # the samples were drawn at random by navigator: nothing to calibrate on
    calibration: dict[str, np.ndarray] | None = None  # --calibration-data, checked against the inputs
    calibration_data: Path | None = None  # its file, which a trial worker loads again
    sample_outputs: list[np.ndarray] = field(default_factory=list, repr=False)  # reference(samples), once
    # (input, axis) -> (lowest, highest or None) declared for a dynamic axis (an ExportedProgram's Dims)
    bounds: dict[tuple[str, int], tuple[int, int | None]] = field(default_factory=dict)
    _session: Any = field(default=None, repr=False)

    @property
    def calibratable(self) -> bool:
        """Whether an INT8 path has inputs to calibrate on: --calibration-data, or validation inputs that
        navigator did not draw at random (Target.of picks them)."""
        return self.calibration is not None or not self.generated

    def reference(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Outputs of the source framework itself, in IOSpec output order."""
        if self.framework == "onnx":
            if self._session is None:
                self._session = onnx_source.reference_session(self.file)  # type: ignore[arg-type]
            return onnx_source.run(self._session, inputs)
        if self.framework == "tf":
            return tf_source.run(self.model, inputs)
        if self.framework == "trees":
            return tree_source.run(self.model, inputs)
        return torch_source.run(self.kind, self.model, [t.name for t in self.io.inputs], inputs)


def file_sha256(path: Path) -> str:
    """A file's hash; a directory's (a SavedModel) covers every file's relative name and content; an ONNX
    model's covers its external data files too, by relative name and content."""
    also = _external(path) if path.is_file() and path.suffix.lower() == ".onnx" else []
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files + [path.parent / rel for rel in also]:
        if file != path:
            digest.update(str(file.relative_to(path if path.is_dir() else path.parent)).encode())
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _external(path: Path) -> list[Path]:
    """An ONNX file's external data files; none for a file ONNX cannot parse (its hash then matches
    nothing, and loading it fails with its own message)."""
    try:
        return onnx_source.external_files(path)
    except InputError:
        raise
    except Exception:  # not a readable ONNX protobuf
        return []


def _open(model: Any, trust_pickle: bool) -> tuple[str, str, Any, Path | None, str]:
    """(framework, kind, loaded model, file, name)."""
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.exists():
            raise InputError(f"model {path}: no such file")
        if tf_source.is_savedmodel(path):
            return ("tf", *tf_source.load(path), path, path.name)
        if path.is_dir():
            raise InputError(f"model {path}: not a file, nor a TensorFlow SavedModel directory (no saved_model.pb)")
        if not path.is_file():
            raise InputError(f"model {path}: not a file")
        if path.stat().st_size == 0:
            raise InputError(f"model {path}: the file is empty")
        if path.suffix.lower() == ".onnx":
            return "onnx", "onnx", onnx_source.load_file(path), path, path.stem
        if path.suffix.lower() == ".keras":
            return ("tf", *tf_source.load(path), path, path.stem)
        if tree_source.is_tree_file(path):
            return ("trees", *tree_source.load_file(path, trust_pickle), path, path.stem)
        kind, loaded = torch_source.load_file(path, trust_pickle)
        return "torch", kind, loaded, path, path.stem
    torch = sys.modules.get("torch")
    if torch is not None:
        if isinstance(model, torch.jit.ScriptModule):
            return "torch", "torchscript", model.eval(), None, type(model).__name__.lower()
        if isinstance(model, torch.export.ExportedProgram):
            return "torch", "exported", model, None, "exported_program"
        if isinstance(model, torch.nn.Module):
            return "torch", "module", model.eval(), None, type(model).__name__.lower()
    raise InputError(f"cannot optimize a {type(model).__name__}: pass a model file, an nn.Module or an ExportedProgram")


def _as_arrays(sample: Any, names: list[str] | None) -> dict[str, np.ndarray]:
    """API sample inputs (tensor, tuple/list of tensors, dict, arrays) -> named numpy arrays."""
    def arr(v: Any) -> np.ndarray:
        return v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)

    if isinstance(sample, dict):
        return {str(k): arr(v) for k, v in sample.items()}
    values = list(sample) if isinstance(sample, (tuple, list)) else [sample]
    keys = names if names and len(names) == len(values) else [f"input__{i}" for i in range(len(values))]
    return {k: arr(v) for k, v in zip(keys, values)}


def _input_specs(framework: str, kind: str, loaded: Any, spec: str | None,
                 data: dict[str, np.ndarray] | None) -> tuple[TensorSpec, ...]:
    if spec:
        return iospec.parse_input_spec(spec)
    if framework in ("onnx", "tf", "trees"):
        return _declared_io(framework, loaded)[0]
    if kind == "exported":
        return torch_source.exported_inputs(loaded)
    if data is not None:
        return iospec.specs_from_data(data)
    raise InputError("this model format does not record its inputs: pass --input-spec name:dtype:shape or --input-data file.npz")


def _expected_names(framework: str, kind: str, loaded: Any) -> list[str] | None:
    """The model's input names in order, or None where it does not say (a forward(*args))."""
    if framework in ("onnx", "tf", "trees"):
        return [t.name for t in _declared_io(framework, loaded)[0]]
    return torch_source.input_names(kind, loaded)


def _check_names(expected: list[str] | None, inputs: tuple[TensorSpec, ...]) -> None:
    got = [t.name for t in inputs]
    if expected is not None and got != expected:
        suggested = tuple(TensorSpec(n, t.dtype, t.shape) for n, t in zip(expected, inputs))
        raise InputError(f"inputs {got} do not match the model's inputs {expected} (names and order); "
                         + iospec.how_to_pass(expected, suggested if len(got) == len(expected) else ()))


def _one_input(expected: list[str] | None, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Data for a model of one input is its input whatever the array's name (tree models name theirs
    input__0, which no user would guess)."""
    if expected is not None and len(expected) == 1 and len(data) == 1:
        return {expected[0]: next(iter(data.values()))}
    return data


def _declared_io(framework: str, loaded: Any) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """(inputs, outputs) a model of these frameworks records about itself."""
    if framework == "onnx":
        return onnx_source.io_specs(loaded)
    if framework == "tf":
        return loaded.inputs, loaded.outputs
    return tree_source.io_specs(loaded)


def load_source(model: Any, *, sample_inputs: Any = None, input_spec: str | None = None,
                input_data: Path | None = None, trust_pickle: bool = False, batch: int = 1,
                calibration: Any = None, generated: bool = False) -> ModelSource:
    """Load and check the user's model; every problem is an InputError with a one-line message.
    `calibration`: the INT8 paths' calibration inputs (an .npz file, or arrays as sample_inputs takes them);
    `generated`: the `input_data` file holds inputs navigator drew at random (a live model's, saved)."""
    framework, kind, loaded, file, name = _open(model, trust_pickle)
    names = _expected_names(framework, kind, loaded)
    data = iospec.load_input_data(input_data) if input_data else (
        _as_arrays(sample_inputs, names) if sample_inputs is not None else None)
    data = _one_input(names, data) if data is not None else None
    inputs = _input_specs(framework, kind, loaded, input_spec, data)
    _check_names(names, inputs)
    if data is not None:
        iospec.check_data(inputs, data)
    samples = data if data is not None else iospec.make_inputs(inputs, batch)
    note = "" if data is not None else iospec.random_ints_note(inputs)
    fingerprint = file_sha256(file) if file else torch_source.fingerprint_module(torch_source.callable_of(kind, loaded))
    src = ModelSource(framework, kind, name, file, loaded, IOSpec(inputs, ()), fingerprint, samples,
                      input_spec, input_data, trust_pickle, (note,) if note else (), generated or data is None)
    if calibration is not None:
        src.calibration = _calibration(names, inputs, calibration)
        src.calibration_data = Path(calibration) if isinstance(calibration, (str, Path)) else None
    if kind == "exported" and not input_spec:
        src.bounds = torch_source.exported_bounds(loaded)
    try:
        outs = src.reference(samples)
    except InputError:
        raise
    except Exception as exc:  # the model itself fails on its inputs: wrong spec or broken model
        raise InputError(f"the model fails on inputs {[(t.name, t.dtype, t.shape) for t in inputs]}: "
                         f"{one_line(exc)}") from None
    varied = _other_sizes(src, inputs)
    if framework in ("onnx", "tf", "trees"):
        outputs = _declared_io(framework, loaded)[1]
    else:
        one = iospec.resize_batch(samples, 1) if IOSpec(inputs, ()).batched else samples  # names only: one row
        names = torch_source.output_names(torch_source.call(kind, loaded, [t.name for t in inputs], one))
        outputs = tuple(TensorSpec(n, o.dtype.name, _output_dims(i, o, IOSpec(inputs, ()).batched, varied))
                        for i, (n, o) in enumerate(zip(names, outs)))
    src.io = IOSpec(inputs, outputs)
    src.sample_outputs = outs
    return src


def _calibration(names: list[str] | None, inputs: tuple[TensorSpec, ...], given: Any) -> dict[str, np.ndarray]:
    """Calibration inputs read without pickle, their names, shapes and dtypes those of the model's inputs.
    Tensors beyond the model's inputs (the labels of (features, labels) batches) are left out."""
    if isinstance(given, tuple) and names is not None and len(given) > len(names):
        given = given[:len(names)]
    data = iospec.load_input_data(Path(given), "--calibration-data") if isinstance(given, (str, Path)) else \
        _as_arrays(given, names)
    try:
        iospec.check_data(inputs, _one_input(names, data))
    except InputError as exc:
        raise InputError(f"calibration data: {exc}") from None
    return _one_input(names, data)


def _other_sizes(src: ModelSource, inputs: tuple[TensorSpec, ...]) -> list[list[np.ndarray]]:
    """The source's outputs with each group of dynamic axes (besides batch) at another size; a model
    that fails there does not have the dynamic axis its inputs declare."""
    outs = []
    for label, data in iospec.shape_variants(inputs, src.samples, src.bounds):
        try:
            outs.append(src.reference(data))
        except Exception as exc:  # the declaration is wrong: a config with -1 there would lie
            raise InputError(f"the inputs declare dynamic axes, but the model fails with {label}: "
                             f"{one_line(exc)} "
                             "(give that axis its size in --input-spec)") from None
    return outs


def _output_dims(index: int, sample: np.ndarray, batched: bool, varied: list[list[np.ndarray]]) -> tuple[int | None, ...]:
    """An output's shape with None on the batch axis and on every axis whose size follows an input's
    dynamic axis (it differs when those axes change size)."""
    def follows(axis: int) -> bool:
        return any(len(v) > index and (v[index].ndim != sample.ndim or v[index].shape[axis] != sample.shape[axis])
                   for v in varied)

    return tuple(None if (batched and axis == 0) or follows(axis) else size for axis, size in enumerate(sample.shape))


def materialize(source: ModelSource, directory: Path) -> tuple[str, str | None, str | None, bool]:
    """(model file, input spec, input data file, trust) with which a worker process loads this source.

    A file source is its own file. A live object is saved in `directory`: an ExportedProgram with
    torch.export.save, a ScriptModule with torch.jit.save, an nn.Module with cloudpickle (its class
    may live in the user's __main__), with its sample inputs as inputs.npz; the user handed over the
    object itself, so the worker may unpickle it.
    """
    if source.file is not None:
        return (str(source.file), source.input_spec,
                str(source.input_data) if source.input_data else None, source.trust_pickle)
    from navigator.lazy import require

    torch = require("torch")
    directory.mkdir(parents=True, exist_ok=True)
    if source.kind == "exported":
        target = directory / "model.pt2"
        torch.export.save(source.model, str(target))
    elif source.kind == "torchscript":
        target = directory / "model.pt"
        torch.jit.save(source.model, str(target))
    else:
        target = directory / "model.pt"
        torch.save(source.model, str(target), pickle_module=require("cloudpickle"))
    data = directory / "inputs.npz"
    np.savez(data, **source.samples)  # type: ignore[arg-type]  # numpy's stub takes **arrays for allow_pickle
    return str(target), None, str(data), True


def calibration_file(source: ModelSource, directory: Path) -> str | None:
    """The file a trial worker reads the source's calibration inputs from: the user's own, or the arrays
    the API was handed, saved in `directory` (None: no calibration inputs)."""
    if source.calibration is None:
        return None
    if source.calibration_data is not None:
        return str(source.calibration_data.resolve())
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(directory / "calibration.npz", **source.calibration)  # type: ignore[arg-type]
    return str((directory / "calibration.npz").resolve())

"""PyTorch sources: live nn.Module, TorchScript archive, ExportedProgram (.pt2), pickled module (trusted;
untrusted, only PyTorch's restricted loader reads it, to tell a state_dict from a refused pickle)."""

from __future__ import annotations

import hashlib
import inspect
import warnings
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from navigator.errors import InputError, UntrustedPickleError, one_line
from navigator.lazy import require
from navigator.records import TensorSpec

PICKLE_MAGIC = b"\x80"


def sniff(path: Path) -> str:
    """'torchscript', 'exported' or 'pickle' from the file's layout, without unpickling anything."""
    if zipfile.is_zipfile(path):
        try:
            names = zipfile.ZipFile(path).namelist()
        except (zipfile.BadZipFile, OSError) as exc:
            raise InputError(f"{path}: damaged archive ({exc})") from None
        if any(n.endswith("/models/model.json") or n.endswith("serialized_exported_program.json") for n in names):
            return "exported"
        if any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names):
            return "torchscript"
        if any(n.endswith("data.pkl") for n in names):
            return "pickle"
        raise InputError(f"{path}: a zip archive but not a PyTorch model (TorchScript, ExportedProgram or torch.save)")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == b"PK\x03\x04":  # a zip's first entry without its central directory: cut short
        raise InputError(f"{path}: damaged archive (truncated or incomplete zip)")
    if head[:1] == PICKLE_MAGIC:
        return "pickle"
    raise InputError(f"{path}: not a PyTorch model file (expected TorchScript, ExportedProgram .pt2 or torch.save)")


def load_file(path: Path, trust_pickle: bool) -> tuple[str, Any]:
    """(kind, model) from a file; without trust_pickle a pickle is only read by PyTorch's restricted
    loader (see _restricted_load), never unpickled."""
    kind = sniff(path)
    torch = require("torch")
    if kind == "pickle" and not trust_pickle:
        model = _restricted_load(path)
    else:
        try:
            if kind == "exported":
                return kind, _load_exported(torch, path)
            if kind == "torchscript":
                return kind, torch.jit.load(str(path), map_location="cpu").eval()
            model = torch.load(str(path), map_location="cpu", weights_only=False)
        except InputError:
            raise
        except Exception as exc:  # a broken or hostile file: any failure of the loader is the user's input
            raise InputError(f"{path}: PyTorch could not load it ({one_line(exc)})") from None
    if not isinstance(model, torch.nn.Module):
        if is_state_dict(model):
            raise InputError(f"{path} holds a state_dict: weights without the model's code, which navigator cannot "
                             "run. Load it into its module and save a loadable model with torch.export.save "
                             "(model.pt2) or torch.jit.save (TorchScript), or pass the module to navigator.optimize")
        raise InputError(f"{path}: holds a {type(model).__name__}, not an nn.Module")
    return "module", model.eval()


def _load_exported(torch: Any, path: Path) -> Any:
    """torch.export.load, whose own failure says only "check the warnings above" after logging the cause
    with its traceback: the cause is kept off stderr and raised as the error (with what to do where it is
    a container type this process cannot rebuild, such as transformers' ModelOutput)."""
    import logging

    causes: list[BaseException] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info and record.exc_info[1] is not None:
                causes.append(record.exc_info[1])

    logger = logging.getLogger("torch.export")  # torch gives it its own stderr handler
    handlers, propagate = logger.handlers, logger.propagate
    logger.handlers, logger.propagate = [Keep()], False
    try:
        return torch.export.load(str(path))
    except Exception as exc:
        if not causes:
            raise
        cause = f"{type(causes[-1]).__name__}: {str(causes[-1]).strip().splitlines()[0]}"
        if "in pytree is not registered" in cause:
            cause += ("; its inputs or outputs use a container type that cannot be rebuilt here: export a "
                      "model that takes and returns tensors, tuples, lists or dicts (transformers: "
                      "return_dict=False)")
        raise InputError(f"{path}: PyTorch could not load it ({cause})") from exc
    finally:
        logger.handlers, logger.propagate = handlers, propagate


def _restricted_load(path: Path) -> Any:
    """The file read by torch.load(weights_only=True), whose unpickler builds only tensors, containers
    and plain values and refuses any other global, so no payload runs. What it refuses (a pickled
    module, or anything else that needs code) is an UntrustedPickleError."""
    torch = require("torch")
    try:
        with warnings.catch_warnings():  # its notes on pickle protocols would break the one-line error
            warnings.simplefilter("ignore")
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception:  # pickle.UnpicklingError for a foreign global; anything else: not a weights file either
        raise UntrustedPickleError(
            f"{path} is a pickled torch.save file; unpickling runs arbitrary code. "
            "Pass --trust-pickle if you trust it, or save it with torch.jit.save / torch.export.save"
        ) from None


def is_state_dict(value: Any) -> bool:
    """Whether `value` is weights only: a mapping (nested mappings too, as in a checkpoint) whose leaves
    are tensors or plain values, with at least one tensor."""
    torch = require("torch")

    def leaves(v: Any) -> list[Any]:
        return [leaf for item in v.values() for leaf in leaves(item)] if isinstance(v, Mapping) else [v]

    if not isinstance(value, Mapping):
        return False
    found = leaves(value)
    return (any(isinstance(v, torch.Tensor) for v in found)
            and all(isinstance(v, (torch.Tensor, int, float, str, bool, type(None))) for v in found))


def callable_of(kind: str, model: Any) -> Any:
    """The object to call with positional tensors."""
    if kind == "exported":
        from navigator.runtimes.torch import program_module

        return program_module(model)
    return model


def input_names(kind: str, model: Any) -> list[str] | None:
    """Forward argument names, or None where *args hide them."""
    if kind == "exported":
        return [str(n) for n in model.graph_signature.user_inputs]
    if kind == "torchscript":
        return [a.name for a in model.forward.schema.arguments[1:]]
    params = list(inspect.signature(model.forward).parameters.values())
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        return None
    return [p.name for p in params if p.default is inspect.Parameter.empty] or [p.name for p in params]


def exported_inputs(model: Any) -> tuple[TensorSpec, ...]:
    """Input specs an ExportedProgram carries (symbolic dims become None)."""
    torch = require("torch")
    user = set(model.graph_signature.user_inputs)
    specs = []
    for node in model.graph.nodes:
        if node.op == "placeholder" and node.name in user:
            val = node.meta.get("val")
            if not isinstance(val, torch.Tensor):
                raise InputError(f"exported program input {node.name!r} is not a tensor")
            dims = tuple(d if isinstance(d, int) else None for d in val.shape)
            specs.append(TensorSpec(node.name, str(val.dtype).removeprefix("torch."), dims))
    return tuple(specs)


def call(kind: str, model: Any, names: list[str], inputs: dict[str, np.ndarray]) -> Any:
    """The model's own output (a pytree) on these inputs, in inference mode."""
    torch = require("torch")
    fn = callable_of(kind, model)
    args = [torch.from_numpy(np.ascontiguousarray(inputs[n])) for n in names]
    with torch.inference_mode():
        return fn(*args)


def _finite(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError, AttributeError):  # sympy's (int_)oo: no bound
        return None


def exported_bounds(model: Any) -> dict[tuple[str, int], tuple[int, int | None]]:
    """(input, axis) -> (lowest, highest or None) of each symbolic input dimension of an
    ExportedProgram, as its range constraints declare (torch.export.Dim(min=, max=))."""
    torch = require("torch")
    user = set(model.graph_signature.user_inputs)
    bounds = {}
    for node in model.graph.nodes:
        val = node.meta.get("val")
        if node.op != "placeholder" or node.name not in user or not isinstance(val, torch.Tensor):
            continue
        for axis, dim in enumerate(val.shape):
            expr = dim.node.expr if isinstance(dim, torch.SymInt) else None
            if expr in model.range_constraints:
                rng = model.range_constraints[expr]
                bounds[(node.name, axis)] = (int(rng.lower), _finite(rng.upper))
    return bounds


def run(kind: str, model: Any, names: list[str], inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Reference outputs: call the model in inference mode, flatten the output pytree to arrays."""
    return flatten(call(kind, model, names, inputs))


def _part(entry: Any) -> tuple[str, bool]:
    """(text, names something) of one pytree key: a dict key or namedtuple field names, a position does not."""
    if hasattr(entry, "key"):  # MappingKey
        return str(entry.key), True
    if hasattr(entry, "name"):  # GetAttrKey: a namedtuple field
        return str(entry.name), True
    return str(getattr(entry, "idx", "")), False


def output_names(out: Any) -> list[str]:
    """Names of the tensor leaves of an output pytree, in flatten order: dict keys and namedtuple
    fields ("logits", "aux.0" for a tuple under a key), positional output__<i> where nothing names
    a leaf, or for every leaf where names would collide (a plain tuple keeps output__0, output__1, ...)."""
    torch = require("torch")
    paths = [path for path, leaf in torch.utils._pytree.tree_flatten_with_path(out)[0]
             if isinstance(leaf, torch.Tensor)]
    positional = [f"output__{i}" for i in range(len(paths))]
    chosen = []
    for path, fallback in zip(paths, positional):
        parts = [_part(e) for e in path]
        chosen.append(".".join(t for t, _ in parts) if any(named for _, named in parts) else fallback)
    return chosen if len(set(chosen)) == len(chosen) and all(chosen) else positional


def flat_script(model: Any, args: tuple[Any, ...]) -> Any | None:
    """A TorchScript source as it is when its output is a tensor or a tuple of tensors (what the
    tracing ONNX exporter and Triton's libtorch backend take, with the scripted graph's shape
    information); None when it returns a dict or nested structure, to be flattened by flat_module."""
    torch = require("torch")
    out = model(*args)
    flat = isinstance(out, torch.Tensor) or (isinstance(out, tuple) and all(isinstance(t, torch.Tensor) for t in out))
    return model if flat else None


def flat_module(kind: str, model: Any) -> Any:
    """An nn.Module calling the source positionally and returning its output's tensors as a flat
    tuple, in flatten order (the exporters and Triton's libtorch backend take tensors or tuples, not
    dicts). It stays in eval mode: an ExportedProgram's module refuses train(), which the tracing
    ONNX exporter calls."""
    torch = require("torch")

    class FlatOutputs(torch.nn.Module):  # type: ignore[name-defined]  # torch is imported lazily
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner
            self.training = False  # torch.jit.freeze takes eval-mode modules only

        def forward(self, *args: Any) -> Any:
            leaves = torch.utils._pytree.tree_flatten(self.inner(*args))[0]
            return tuple(t for t in leaves if isinstance(t, torch.Tensor))

        def train(self, mode: bool = True) -> Any:
            return self

    return FlatOutputs(callable_of(kind, model))


def flatten(out: Any) -> list[np.ndarray]:
    """Tensors of an output pytree (tensor, tuple, list, dict) in order, as numpy arrays."""
    torch = require("torch")
    leaves, _ = torch.utils._pytree.tree_flatten(out)
    arrays = [t.detach().float().numpy() if t.dtype == torch.bfloat16 else t.detach().numpy()
              for t in leaves if isinstance(t, torch.Tensor)]
    if not arrays:
        raise InputError("the model returned no tensors")
    return arrays


def fingerprint_module(model: Any) -> str:
    """A hash of a live module: its class, its source where available, and every weight."""
    torch = require("torch")
    digest = hashlib.sha256(type(model).__qualname__.encode())
    try:
        digest.update(inspect.getsource(type(model)).encode())
    except (OSError, TypeError):
        digest.update(repr(model).encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()

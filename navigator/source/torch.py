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

from navigator.errors import InputError, UntrustedPickleError
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
                return kind, torch.export.load(str(path))
            if kind == "torchscript":
                return kind, torch.jit.load(str(path), map_location="cpu").eval()
            model = torch.load(str(path), map_location="cpu", weights_only=False)
        except Exception as exc:  # a broken or hostile file: any failure of the loader is the user's input
            raise InputError(f"{path}: PyTorch could not load it ({type(exc).__name__}: {exc})") from None
    if not isinstance(model, torch.nn.Module):
        if is_state_dict(model):
            raise InputError(f"{path} holds a state_dict: weights without the model's code, which navigator cannot "
                             "run. Load it into its module and save a loadable model with torch.export.save "
                             "(model.pt2) or torch.jit.save (TorchScript), or pass the module to navigator.optimize")
        raise InputError(f"{path}: holds a {type(model).__name__}, not an nn.Module")
    return "module", model.eval()


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
    return model.module() if kind == "exported" else model


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


def run(kind: str, model: Any, names: list[str], inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Reference outputs: call the model in inference mode, flatten the output pytree to arrays."""
    torch = require("torch")
    fn = callable_of(kind, model)
    args = [torch.from_numpy(np.ascontiguousarray(inputs[n])) for n in names]
    with torch.inference_mode():
        out = fn(*args)
    return flatten(out)


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

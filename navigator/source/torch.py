"""PyTorch sources: live nn.Module, TorchScript archive, ExportedProgram (.pt2), pickled module (trusted)."""

from __future__ import annotations

import hashlib
import inspect
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from navigator.errors import InputError
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
    """(kind, model) from a file; a pickle is refused before it is opened unless trust_pickle."""
    kind = sniff(path)
    if kind == "pickle" and not trust_pickle:
        raise InputError(
            f"{path} is a pickled torch.save file; unpickling runs arbitrary code. "
            "Pass --trust-pickle if you trust it, or save it with torch.jit.save / torch.export.save"
        )
    torch = require("torch")
    try:
        if kind == "exported":
            return kind, torch.export.load(str(path))
        if kind == "torchscript":
            return kind, torch.jit.load(str(path), map_location="cpu").eval()
        model = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:  # a broken or hostile file: any failure of the loader is the user's input
        raise InputError(f"{path}: PyTorch could not load it ({type(exc).__name__}: {exc})") from None
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"{path}: holds a {type(model).__name__}, not an nn.Module (a state_dict needs its class)")
    return "module", model.eval()


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

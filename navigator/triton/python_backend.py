"""Triton python-backend deployments: templates/model.py next to the converted model file, running the
trial's own runtime code.

The twin's version directory holds model.py, the model file, a copy of navigator/runtimes (the session
code the trial's runner used) and twin.json: the runtime, the device and the trial's params (the dict
the runner got). model.py builds the session from that file with the same functions, so a server with
the python backend only (PyTriton's, the one `serve-check` starts here) serves what navigator measured.
A native deployment that has a twin carries twin.json in its own version directory (the native backend
ignores it), which is how `serve-check` turns a written repository into its twin.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from navigator.errors import InputError
from navigator.records import TritonModel

TEMPLATE = "model.py"
SPEC = "twin.json"  # in the version directory
RUNTIMES = "runtimes"  # the shipped package's directory in the version directory
KINDS = ("torch", "onnxruntime", "openvino")  # the template's RUNTIME values


def _package(name: str) -> Path:
    with importlib.resources.as_file(importlib.resources.files("navigator").joinpath(name)) as found:
        return Path(found)


def spec_file(runtime: str, device: str, params: dict[str, Any], unpickle: bool = False) -> Path:
    """twin.json for these params, written (once, atomically) under a name of its content into navigator's
    own directory of twin specs (twins_dir), never beside the model: an artifact may be the user's own file
    (an ONNX model run as it is), and trials sharing one artifact each keep their own spec."""
    if runtime not in KINDS:
        raise ValueError(f"unknown twin runtime {runtime!r}")
    text = json.dumps({"runtime": runtime, "device": device, "params": params, "unpickle": unpickle},
                      sort_keys=True, indent=1)
    where = twins_dir()
    path = where / f"twin-{hashlib.sha256(text.encode()).hexdigest()[:16]}.json"
    if not path.is_file():
        fd, tmp = tempfile.mkstemp(prefix=".twin-", dir=where)
        with os.fdopen(fd, "w") as out:
            out.write(text + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    return path


def twins_dir() -> Path:
    """This user's directory of twin specs (tiny, named by content, so shared by every study safely). An
    existing one is used only if this user owns it and nobody else may write there: a spec found there is
    trusted as written (its `unpickle` among the rest)."""
    where = Path(tempfile.gettempdir()) / f"navigator-twins-{os.getuid()}"
    try:
        where.mkdir(mode=0o700)
    except FileExistsError:
        pass
    st = where.lstat()  # not following a link
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise InputError(f"{where}: not a directory of this user's only; remove it (navigator keeps its "
                         "python-backend twin specs there)")
    return where


def read_spec(path: Path) -> dict[str, Any]:
    try:
        spec = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable python-backend twin spec ({exc})") from None
    if not isinstance(spec, dict) or spec.get("runtime") not in KINDS or not isinstance(spec.get("params"), dict):
        raise InputError(f"{path}: not a python-backend twin spec (runtime, device, params)")
    return spec


def model(model_file: Path, spec: Path, files: dict[str, Path] | None = None) -> TritonModel:
    """A python-backend TritonModel running `model_file` as `spec` says; `files` (version-directory name
    -> file, the model's among them) where the names are not the files' own."""
    found = read_spec(spec)
    files = files or {model_file.name: model_file}
    name = next(k for k, v in files.items() if v == model_file)
    with importlib.resources.as_file(importlib.resources.files("navigator.triton").joinpath("templates", TEMPLATE)) as script:
        shipped = {"model.py": Path(script), RUNTIMES: _package(RUNTIMES), SPEC: spec}
    return TritonModel(backend="python", files={**files, **shipped},
                       parameters={"RUNTIME": found["runtime"], "MODEL_FILE": name},
                       kind="KIND_GPU" if found.get("device") == "cuda" else "KIND_CPU")


def from_native(native: TritonModel) -> TritonModel:
    """The python-backend twin of a native deployment (itself when it already is one)."""
    if native.backend == "python":
        return native
    backend = native.backend or native.platform
    if native.cpu_accelerators or any(name != "cuda" for name in native.gpu_accelerators):
        names = ", ".join([*native.cpu_accelerators, *native.gpu_accelerators])
        raise InputError(f"no python-backend runtime for the {names} execution accelerator")
    if SPEC not in native.files:
        raise InputError(f"no python-backend runtime for this {backend} deployment (its version directory has no "
                         f"{SPEC}: navigator writes one for the paths its twin runs)")
    from navigator.triton.backends import BACKENDS

    default = native.default_model_filename or BACKENDS[native.backend or "pytorch"].files[0]
    name = default if default in native.files else next(iter(native.files))  # model.onnx, model.xml, model.pt
    files = {k: v for k, v in native.files.items() if k != SPEC}  # companions too (model.bin next to .xml)
    return model(native.files[name], native.files[SPEC], files)

"""Lazy imports of heavy frameworks, so that `import navigator` and `navigator --help` stay instant."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from navigator.errors import UnavailableError

# Which extra of navigator installs each framework (pyproject.toml's optional-dependencies).
EXTRAS = {
    "torch": "torch",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "onnxscript": "onnx",
    "openvino": "openvino",
    "plotly": "report",
    "jinja2": "report",
    "tensorflow": "tf",
    "keras": "tf",
    "tf2onnx": "tf",
    "xgboost": "trees",
    "lightgbm": "trees",
    "sklearn": "trees",
    "skl2onnx": "trees",
    "onnxmltools": "trees",
    "treelite": "trees",
    "tl2cgen": "trees",
    "skops": "trees",
    "nvforest": "fil",
    "modelopt": "trt",
    "tensorrt": "trt",
}


def installed(name: str) -> bool:
    """True when `name` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def require(name: str) -> ModuleType:
    """Import `name` or raise UnavailableError naming the pip extra that provides it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        top = name.split(".")[0]
        extra = EXTRAS.get(top, top)
        raise UnavailableError(
            f"{top} is not installed ({exc}); install it with: pip install 'triton-navigator[{extra}]'"
        ) from exc


def optuna() -> ModuleType:
    """optuna, with its logging and experimental-feature warnings quieted (navigator records failed
    trials itself)."""
    import logging
    import warnings

    module = importlib.import_module("optuna")
    module.logging.set_verbosity(logging.ERROR)
    warnings.filterwarnings("ignore", category=module.exceptions.ExperimentalWarning)
    return module

"""Loads the model file of a written Triton repository with the runtime its backend uses, to check
that what navigator deploys reproduces the source model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from navigator.triton.config import from_text


def load(model_dir: Path) -> tuple[Any, Callable[[dict[str, np.ndarray]], list[np.ndarray]]]:
    """(ModelConfig, run) for <repository>/<model>."""
    config = from_text((model_dir / "config.pbtxt").read_text())
    version = model_dir / "1"
    names = [i.name for i in config.input]
    if config.backend == "onnxruntime":
        import onnxruntime as ort

        session = ort.InferenceSession(str(version / "model.onnx"), providers=["CPUExecutionProvider"])
        return config, lambda x: list(session.run(None, x))
    if config.backend == "openvino":
        import openvino as ov

        compiled = ov.Core().compile_model(str(version / "model.xml"), "CPU")
        return config, lambda x: [np.array(v) for v in compiled(x).to_tuple()]
    import torch

    if config.platform == "pytorch_libtorch":
        module = torch.jit.load(str(version / "model.pt"))
    else:
        assert config.backend == "python" and (version / "model.py").is_file()
        file = config.parameters["MODEL_FILE"].string_value
        module = torch.export.load(str(version / file)).module() if file.endswith(".pt2") \
            else torch.jit.load(str(version / file))

    def run(x: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.inference_mode():
            out = module(*[torch.from_numpy(x[n]) for n in names])
        leaves = torch.utils._pytree.tree_flatten(out)[0]
        return [t.numpy() for t in leaves]

    return config, run

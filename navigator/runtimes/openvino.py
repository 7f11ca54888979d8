"""OpenVINO: the CPU plugin's compile config from a trial's params, and its runner.

CPU plugin properties: https://docs.openvino.ai/2026/openvino-workflow/running-inference/inference-devices-and-modes/cpu-device.html
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

# searchspace precision -> OpenVINO's INFERENCE_PRECISION_HINT and the CPU capability it needs.
PRECISIONS = {"f32": ("f32", "FP32"), "bf16": ("bf16", "BF16")}


def compile_config(params: dict[str, Any]) -> dict[str, str]:
    config = {"PERFORMANCE_HINT": str(params["performance_hint"])}
    if "num_streams" in params:
        config["NUM_STREAMS"] = str(params["num_streams"])
    if "inference_num_threads" in params:
        config["INFERENCE_NUM_THREADS"] = str(params["inference_num_threads"])
    config["INFERENCE_PRECISION_HINT"] = PRECISIONS[str(params.get("inference_precision", "f32"))][0]
    return config


class OpenVinoRunner:
    def __init__(self, xml: Path, params: dict[str, Any]) -> None:
        import openvino as ov

        self.compiled = ov.Core().compile_model(str(xml), "CPU", compile_config(params))
        self.request = self.compiled.create_infer_request()
        self.names = [p.get_any_name() for p in self.compiled.inputs]

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        result = self.request.infer({n: np.ascontiguousarray(inputs[n]) for n in self.names})
        return [np.array(v) for v in result.to_tuple()]

    def prepare(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
        feed = {n: np.ascontiguousarray(inputs[n]) for n in self.names}
        infer = self.request.infer
        return lambda: infer(feed, share_inputs=True, share_outputs=True)

    def host_call(self, inputs: dict[str, np.ndarray]) -> Callable[[], Any] | None:
        """None: prepare()'s call takes and gives host arrays already (navigator's Runner protocol)."""
        return None

    def close(self) -> None:
        """Drops the infer request and the compiled model (its streams' threads and memory)."""
        self.request = self.compiled = None

    def precision_run(self) -> str | None:
        """The compute layers of the compiled model by the precision the CPU plugin runs each in
        (runtimes/precision.py): an INFERENCE_PRECISION_HINT the CPU lacks, or int8 layers the plugin
        kept in float, show here."""
        from . import precision  # relative: the twin ships runtimes/ under another package name

        return precision.openvino(self.compiled.get_runtime_model())

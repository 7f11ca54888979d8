"""Triton python-backend model written by navigator: runs a PyTorch model (ExportedProgram .pt2,
TorchScript or a trusted torch.save pickle) with the settings navigator tuned.

Parameters (config.pbtxt): MODEL_FILE, THREADS, CHANNELS_LAST, and on a GPU DEVICE=cuda, PRECISION
(fp32/tf32/fp16/bf16), CAST (weights/autocast) and COMPILE_MODE (torch.compile's mode).
"""

import json
import os

import numpy as np
import torch
import triton_python_backend_utils as pb_utils

DTYPES = {"fp32": torch.float32, "fp32_strict": torch.float32, "tf32": torch.float32, "fp16": torch.float16,
          "bf16": torch.bfloat16}


def _load(path):
    if path.endswith(".pt2"):
        return torch.export.load(path).module()
    try:
        return torch.jit.load(path, map_location="cpu").eval()
    except RuntimeError:  # a torch.save pickle, trusted by whoever deployed it
        return torch.load(path, map_location="cpu", weights_only=False).eval()


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        path = os.path.join(args["model_repository"], args["model_version"], params["MODEL_FILE"])
        torch.set_num_threads(int(params.get("THREADS", str(os.cpu_count() or 1))))
        self.device = params.get("DEVICE", "cpu")
        precision = params.get("PRECISION", "fp32")
        self.dtype = DTYPES[precision]
        self.autocast = params.get("CAST") == "autocast"
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        torch.backends.cudnn.allow_tf32 = precision != "fp32_strict"
        model = _load(path).to(self.device)
        if not self.autocast and self.dtype != torch.float32:
            model = model.to(self.dtype)
        self.channels_last = params.get("CHANNELS_LAST") == "True"
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if params.get("COMPILE_MODE"):
            model = torch.compile(model, mode=params["COMPILE_MODE"], dynamic=False)
        self.model = model
        self.inputs = [t["name"] for t in config["input"]]
        self.outputs = [t["name"] for t in config["output"]]

    def _tensor(self, array):
        tensor = torch.from_numpy(np.ascontiguousarray(array)).to(self.device)
        if tensor.is_floating_point() and not self.autocast:
            tensor = tensor.to(self.dtype)
        if self.channels_last and tensor.dim() == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    def execute(self, requests):
        responses = []
        for request in requests:
            args = [self._tensor(pb_utils.get_input_tensor_by_name(request, n).as_numpy()) for n in self.inputs]
            with torch.inference_mode(), torch.autocast(self.device, dtype=self.dtype, enabled=self.autocast):
                out = self.model(*args)
            leaves = [t for t in torch.utils._pytree.tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
            tensors = [pb_utils.Tensor(n, t.float().cpu().numpy() if t.is_floating_point() else t.cpu().numpy())
                       for n, t in zip(self.outputs, leaves)]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses

"""Triton python-backend model written by navigator: runs a PyTorch model (ExportedProgram .pt2,
TorchScript or a trusted torch.save pickle) with the settings navigator tuned.

Parameters (config.pbtxt): MODEL_FILE, THREADS, CHANNELS_LAST.
"""

import json
import os

import numpy as np
import torch
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        path = os.path.join(args["model_repository"], args["model_version"], params["MODEL_FILE"])
        torch.set_num_threads(int(params.get("THREADS", "1")))
        if path.endswith(".pt2"):
            self.model = torch.export.load(path).module()
        else:
            try:
                self.model = torch.jit.load(path, map_location="cpu")
            except RuntimeError:  # a torch.save pickle, trusted by whoever deployed it
                self.model = torch.load(path, map_location="cpu", weights_only=False)
            self.model.eval()
        self.channels_last = params.get("CHANNELS_LAST") == "True"
        if self.channels_last and isinstance(self.model, torch.nn.Module):
            self.model = self.model.to(memory_format=torch.channels_last)
        self.inputs = [t["name"] for t in config["input"]]
        self.outputs = [t["name"] for t in config["output"]]

    def _tensor(self, array):
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        if self.channels_last and tensor.dim() == 4 and tensor.is_floating_point():
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    def execute(self, requests):
        responses = []
        for request in requests:
            args = [self._tensor(pb_utils.get_input_tensor_by_name(request, n).as_numpy()) for n in self.inputs]
            with torch.inference_mode():
                out = self.model(*args)
            leaves = [t for t in torch.utils._pytree.tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
            tensors = [pb_utils.Tensor(n, t.contiguous().numpy()) for n, t in zip(self.outputs, leaves)]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses

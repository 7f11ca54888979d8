"""On a CUDA GPU: the torch runtime's CUDA-graph runner (one graph per input signature, replayed on
static buffers) gives the source's answers, and the python-backend twin started from a version
directory serves the same answers with the trial's settings. Skipped without a GPU."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

from navigator.runtimes import torch as rt_torch  # noqa: E402
from tests.twin_loader import twin_loader  # noqa: E402, F401  (the fixture)

ROOT = Path(__file__).resolve().parents[2] / "navigator"
PARAMS = {"precision": "fp16", "cast": "weights", "channels_last": True, "cudnn_benchmark": True, "cuda_graphs": True}
# torch_ao's: the head's weight quantized by torchao, in a CUDA graph (weight-only INT8; FP8 where the GPU
# has FP8 tensor cores). Eager INT8 dynamic is not searched in a graph: torchao reads back per matmul.
QUANT = {"quant": "int8_weight_only", "precision": "bf16", "mode": "none", "cuda_graphs": True, "channels_last": False}
FP8 = {**QUANT, "quant": "fp8_dynamic", "granularity": "per_tensor"}


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 32, 3, padding=1)
        self.head = torch.nn.Linear(32, 16)  # dims of 16: torchao's FP8 takes the layer

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = torch.relu(self.conv(x)).mean(dim=(2, 3))
        return {"logits": self.head(h), "argmax": self.head(h).argmax(dim=1)}


def _inputs(rows: int) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(rows).standard_normal((rows, 3, 8, 8)).astype(np.float32)}


def test_cuda_graph_runner_replays_per_signature_and_closes() -> None:
    source = Net().eval()
    settings = rt_torch.settings(PARAMS, "cuda")
    runner = rt_torch.runner(rt_torch.place(copy.deepcopy(source).cuda(), settings), ["x"], settings)
    for rows in (2, 5, 2):
        data = _inputs(rows)
        got = runner(data)
        want = source(torch.from_numpy(data["x"]))
        assert got[0].dtype == np.float32 and got[1].dtype == np.int64
        np.testing.assert_allclose(got[0], want["logits"].detach().numpy(), atol=2e-2, rtol=2e-2)
    assert len(runner._graphs) == 2  # batch 2 captured once, replayed the second time
    assert len(runner.host_call(_inputs(5))()) == 2
    runner.close()
    assert runner._graphs == {} and runner.fn is None


@pytest.mark.parametrize("params", [PARAMS, QUANT, FP8], ids=["fp16", "torchao-int8", "torchao-fp8"])
def test_the_twin_serves_the_trials_cuda_settings(params: dict, tmp_path: Path, twin_loader) -> None:  # noqa: F811
    version = tmp_path / "m" / "1"
    version.mkdir(parents=True)
    program = torch.export.export(Net().eval(), (torch.randn(2, 3, 8, 8),),
                                  dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=64)},))
    torch.export.save(program, str(version / "model.pt2"))
    shutil.copy(ROOT / "triton" / "templates" / "model.py", version / "model.py")
    shutil.copytree(ROOT / "runtimes", version / "runtimes", ignore=shutil.ignore_patterns("__pycache__"))
    if "quant" in params:
        pytest.importorskip("torchao")
    if params.get("quant") == "fp8_dynamic" and torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("FP8 needs compute capability 8.9 or above")
    (version / "twin.json").write_text(json.dumps({"runtime": "torch", "device": "cuda", "params": params}))
    config = {"parameters": {"RUNTIME": {"string_value": "torch"}, "MODEL_FILE": {"string_value": "model.pt2"}},
              "input": [{"name": "x"}], "output": [{"name": "logits"}, {"name": "argmax"}], "max_batch_size": 64}
    template = twin_loader.template(tmp_path / "m")
    served = template.TritonPythonModel()
    served.initialize({"model_config": json.dumps(config), "model_repository": str(tmp_path / "m"),
                       "model_version": "1"})
    assert served.model.settings == type(served.model.settings)(**vars(rt_torch.settings(params, "cuda")))
    if "quant" in params:  # the served model's linear weight is torchao's tensor, not a plain Parameter
        assert "Parameter" not in {type(p).__name__ for p in served.model.fn.parameters() if p.dim() == 2}
    reference = program.module()
    for batches in ([_inputs(3)["x"]], [_inputs(2)["x"], _inputs(4)["x"]]):  # one request; two stacked
        results = served._run([[b] for b in batches])
        for b, (logits, argmax) in zip(batches, results):
            want = reference(torch.from_numpy(b))
            np.testing.assert_allclose(logits, want["logits"].detach().numpy(), atol=5e-2, rtol=5e-2)
            assert argmax.shape == (b.shape[0],)
    assert served.model._graphs  # served from CUDA graphs, as the trial measured
    served.finalize()

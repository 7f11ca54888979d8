"""ONNX Runtime's transformer optimizer and fp16 conversion on the ONNX paths, on a small encoder block
built here (embeddings with positions, self-attention, GELU feed-forward, LayerNorms)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from navigator.paths import _ort_transformers, ort_cpu, ort_cuda  # noqa: E402
from navigator.paths.base import Target  # noqa: E402
from navigator.source import load_source  # noqa: E402
from navigator.cache import Cache  # noqa: E402


class Encoder(torch.nn.Module):
    def __init__(self, d: int = 32, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.tokens, self.positions = torch.nn.Embedding(100, d), torch.nn.Embedding(16, d)
        self.q, self.k, self.v, self.o = (torch.nn.Linear(d, d) for _ in range(4))
        self.up, self.down = torch.nn.Linear(d, 4 * d), torch.nn.Linear(4 * d, d)
        self.norms = torch.nn.ModuleList(torch.nn.LayerNorm(d) for _ in range(3))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        b, n = ids.shape
        x = self.norms[0](self.tokens(ids) + self.positions(torch.arange(n, device=ids.device)))

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, self.heads, -1).transpose(1, 2)

        att = torch.softmax(split(self.q(x)) @ split(self.k(x)).transpose(-1, -2) / 4.0, -1) @ split(self.v(x))
        x = self.norms[1](x + self.o(att.transpose(1, 2).reshape(b, n, -1)))
        x = self.norms[2](x + self.down(torch.nn.functional.gelu(self.up(x))))
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)  # an RMS norm, as T5 and Llama have


@pytest.fixture(scope="module")
def source():  # noqa: ANN201
    torch.manual_seed(0)
    return load_source(Encoder().eval(), sample_inputs=(torch.randint(0, 100, (2, 16)),), batch=2)


def _ops(path: Path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def _run(path: Path, source) -> list[np.ndarray]:  # noqa: ANN001
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: source.samples[i.name] for i in session.get_inputs()})


def test_fusion_on_the_cpu_path_fuses_and_still_matches(source, tmp_path: Path) -> None:  # noqa: ANN001
    cache = Cache(tmp_path, source.fingerprint)
    params = {"exporter": "torchscript", "opset": 18, "fusion": "bert"}
    fused = ort_cpu.convert(source, params, cache, Target()).file
    plain = ort_cpu.convert(source, {**params, "fusion": "off"}, cache, Target()).file
    assert fused != plain and {"SkipLayerNormalization", "BiasGelu"} <= _ops(fused) - _ops(plain)
    got = ort_cpu.load(ort_cpu.convert(source, params, cache, Target()), source, {}).__call__(source.samples)
    np.testing.assert_allclose(got[0], source.sample_outputs[0] if source.sample_outputs else
                               source.reference(source.samples)[0], atol=1e-4)


@pytest.mark.parametrize("fusion", ["off", "bert"])
def test_fp16_keeps_fp32_io_loads_and_matches(fusion: str, source, tmp_path: Path) -> None:  # noqa: ANN001
    cache = Cache(tmp_path, source.fingerprint)
    exported = ort_cpu.convert(source, {"exporter": "dynamo", "opset": 18, "fusion": "off"}, cache, Target()).file
    # the CPU stands in for the GPU here: the CUDA path's conversion minus the optimizer's GPU session
    path = cache.get("t", {}, lambda out: _ort_transformers._convert(exported, fusion, "fp16", False, out)) / "model.onnx"
    model = onnx.load(str(path))
    fp32, fp16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16
    assert [o.type.tensor_type.elem_type for o in model.graph.output] == [fp32]
    assert any(t.data_type == fp16 for t in model.graph.initializer)
    if fusion == "off":  # the hand-written RMS norm's x**2 and mean stay in fp32
        typed = model.graph  # value types as the conversion recorded them
        types = {v.name: v.type.tensor_type.elem_type for v in [*typed.value_info, *typed.input]}
        kept = [n for n in typed.node if n.op_type in ("Pow", "ReduceMean")]
        assert kept and all(types.get(n.input[0]) == fp32 for n in kept)
    got = _run(path, source)[0]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, source.reference(source.samples)[0], atol=2e-2)


def test_the_cuda_path_converts_through_the_transformer_tools(source, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    calls = []
    monkeypatch.setattr(_ort_transformers, "_convert",
                        lambda src, fusion, precision, gpu, out: calls.append((fusion, precision, gpu)) or
                        (out / "model.onnx").write_bytes(src.read_bytes()))
    cache = Cache(tmp_path, source.fingerprint)
    artifact = ort_cuda.convert(source, {"exporter": "torchscript", "opset": 18, "fusion": "off",
                                         "precision": "fp16"}, cache, Target())
    assert calls == [("off", "fp16", True)] and artifact.file.name == "model.onnx"
    ort_cuda.convert(source, {"exporter": "torchscript", "opset": 18, "fusion": "off", "precision": "fp32"}, cache,
                     Target())
    assert len(calls) == 1  # fp32 without fusion is the exported file itself

"""torchao quantization as the torch_ao path and its python twin run it (runtimes/quantize.py), on the CPU:
INT8 (weight-only and dynamic) of a live module and of an ExportedProgram's module, whose linears are
aten.linear calls on get_attr weights that torchao's quantize_ alone would not find."""

from __future__ import annotations

import pytest

from navigator.paths import _probe
from navigator.records import ParamSpec
from navigator.runtimes import quantize

torch = pytest.importorskip("torch")
pytest.importorskip("torchao")


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(50, 64)
        self.body = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.GELU(), torch.nn.Linear(128, 64))
        self.head = torch.nn.Linear(64, 8)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.embed(ids)).mean(1))


def _exported(tmp_path) -> torch.nn.Module:
    ids = torch.randint(0, 50, (4, 16))
    program = torch.export.export(Net().eval(), (ids,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, str(tmp_path / "m.pt2"))
    return torch.export.load(str(tmp_path / "m.pt2")).module()


def _weights(model: torch.nn.Module) -> dict[str, str]:
    return {n: type(p).__name__ for n, p in model.named_parameters() if p.dim() == 2}


class Wrapper(torch.nn.Module):  # holds nothing but the model, as runtimes/torch.program_module's FlatInputs
    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.model = inner

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.model(*args)


@pytest.mark.parametrize("quant", ["int8_dynamic", "int8_weight_only"])
@pytest.mark.parametrize("exported", ["module", "exported", "wrapped"])
def test_the_linear_weights_become_torchao_tensors_and_the_outputs_stay_close(quant, exported, tmp_path) -> None:
    model = {"module": lambda: Net().eval(), "exported": lambda: _exported(tmp_path),
             "wrapped": lambda: Wrapper(Wrapper(_exported(tmp_path)))}[exported]()
    ids = torch.randint(0, 50, (8, 16), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        reference = model(ids)
    assert quantize.quantize(model, quant) == 3
    kinds = _weights(model)
    assert {k for n, k in kinds.items() if "embed" not in n} != {"Parameter"}, kinds  # three linears swapped
    assert kinds[next(n for n in kinds if "embed" in n)] == "Parameter"  # an embedding is not a linear
    with torch.inference_mode():
        got = model(ids)
    assert not torch.equal(got, reference)  # really quantized
    cosine = torch.nn.functional.cosine_similarity(got.flatten(), reference.flatten(), dim=0)
    assert cosine > 0.99, cosine


def test_a_model_without_linear_layers_and_a_torchscript_are_refused() -> None:
    with pytest.raises(ValueError, match="no linear layer"):
        quantize.quantize(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)), "int8_dynamic")
    script = torch.jit.script(torch.nn.Linear(4, 4))
    with pytest.raises(ValueError, match="TorchScript"):
        quantize.quantize(script, "int8_dynamic")
    with pytest.raises(ValueError, match="unknown quantization"):
        quantize.config("int4", None)


@pytest.mark.parametrize("exported", [False, True], ids=["module", "exported"])
def test_layers_torchao_leaves_as_they_are_are_not_counted_as_quantized(exported, tmp_path, monkeypatch) -> None:
    """torchao skips a layer it cannot take (FP8 with dims not of 16) without a word: such a model is refused,
    not run as an 'fp8' trial in bf16."""
    import torchao.quantization

    model = _exported(tmp_path) if exported else Net().eval()
    monkeypatch.setattr(torchao.quantization, "quantize_", lambda module, cfg, **kw: None)
    with pytest.raises(ValueError, match="no linear layer torchao could quantize"):
        quantize.quantize(model, "int8_dynamic")


@pytest.mark.parametrize("exported", [False, True], ids=["module", "exported"])
def test_int8_dynamic_leaves_a_linear_whose_features_are_not_multiples_of_8(exported, tmp_path) -> None:
    """A 10-class head: cuBLAS's int8 matmul, which a compiled INT8 dynamic model calls, cannot take it."""
    def build() -> torch.nn.Module:
        net = Net().eval()
        net.head = torch.nn.Linear(64, 10)
        if not exported:
            return net
        program = torch.export.export(net, (torch.randint(0, 50, (4, 16)),))
        torch.export.save(program, str(tmp_path / "h.pt2"))
        return torch.export.load(str(tmp_path / "h.pt2")).module()

    model = build()
    assert quantize.quantize(model, "int8_dynamic") == 2
    if exported:  # the quantized weights' calls are F.linear, as an nn.Linear makes them; the head's stays
        calls = {str(n.args[1].target): n.target for n in model.graph.nodes
                 if n.op == "call_function" and "linear" in str(n.target)}
        assert sorted(map(str, calls.values())) == ["<built-in function linear>"] * 2 + ["aten.linear.default"], calls
    assert type(dict(model.named_parameters())[next(n for n in _weights(model) if "head" in n)]) is torch.nn.Parameter
    assert quantize.quantize(build(), "int8_weight_only") == 3  # weight-only INT8 takes any shape
    with pytest.raises(ValueError, match="no linear layer"):
        quantize.quantize(torch.nn.Sequential(torch.nn.Linear(64, 10)), "int8_dynamic")


def test_fp8_is_offered_only_from_compute_capability_8_9(monkeypatch) -> None:
    from navigator.paths import torch_ao

    spec = ParamSpec("quant", "runtime", ("int8_dynamic", "fp8_dynamic", "int8_weight_only"))
    for capability, kept in (((8, 0), ("int8_dynamic", "int8_weight_only")), ((9, 0), spec.choices),
                             ((8, 9), spec.choices), (None, spec.choices)):
        monkeypatch.setattr(_probe, "cuda_capability", lambda c=capability: c)
        assert torch_ao.narrow(spec).choices == kept
    assert torch_ao.precision({"quant": "fp8_dynamic"}) == "fp8"
    assert torch_ao.precision({"quant": "int8_weight_only"}) == "int8"


def test_torch_ao_does_not_calibrate() -> None:
    from navigator import paths

    plugin = paths.get("torch_ao")
    assert not plugin.calibrates and paths.get("ort_int8").calibrates
    assert "torch_ao" not in paths.calibrating("torch", "cuda")


def test_an_exported_int8_model_compiles_and_agrees_with_its_eager_run(tmp_path) -> None:
    model = _exported(tmp_path)
    quantize.quantize(model, "int8_dynamic")
    ids = torch.randint(0, 50, (8, 16), generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        eager = model(ids)
        compiled = torch.compile(model, dynamic=False)(ids)
    assert torch.allclose(compiled, eager, atol=1e-2, rtol=1e-2), (compiled - eager).abs().max()

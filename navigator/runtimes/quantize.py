"""torchao quantization of a PyTorch model's linear layers, in place: INT8 weight-only, INT8 dynamic
activations with INT8 weights, FP8 (e4m3) dynamic activations and weights (compute capability >= 8.9).

torchao swaps a layer's weight for a tensor subclass that implements aten.linear with quantized kernels
(https://docs.pytorch.org/ao/stable/quick_start.html, `quantize_`). `quantize_` finds nn.Linear modules;
an ExportedProgram's module() has none (its linears are aten.linear calls on get_attr weights), so there
the weights the graph's linear calls read are quantized one by one through a throwaway nn.Linear and put
back at their names, and the graph's linear calls on them become F.linear calls, as an nn.Linear makes
them. Convolutions are left alone (torchao 0.18's FP8 tensor also takes conv2d weights with per-tensor
scales; not used here, unmeasured).
INT8 dynamic leaves a linear whose in or out features are not a multiple of 8 (a 10-class head) as it is:
cuBLAS's int8 matmul needs both, torch.compile lowers torchao's matmul to it without torchao's fallback
(which then fails: "mat2.size(1) needs to be ... a multiple of 8", reports/gpu/quant/h100-fourth), and run
eagerly the fallback multiplies on the host (torchao kernel/intmm.safe_int_mm).
"""

from __future__ import annotations

from typing import Any

# quant setting -> torchao config class (torchao.quantization)
CONFIGS = {
    "int8_weight_only": "Int8WeightOnlyConfig",
    "int8_dynamic": "Int8DynamicActivationInt8WeightConfig",
    "fp8_dynamic": "Float8DynamicActivationFloat8WeightConfig",
}
# FP8 scale granularity -> torchao granularity class; per-row needs bf16 weights (torchao's float8 docs)
GRANULARITY = {"per_row": "PerRow", "per_tensor": "PerTensor"}


def config(quant: str, granularity: str | None) -> Any:
    """The torchao config object of a quant setting."""
    import torchao.quantization as tq

    if quant not in CONFIGS:
        raise ValueError(f"unknown quantization {quant!r}; known: {', '.join(CONFIGS)}")
    cls = getattr(tq, CONFIGS[quant])
    if quant == "fp8_dynamic":
        return cls(granularity=getattr(tq, GRANULARITY[granularity or "per_row"])())
    return cls()


def _fits(quant: str, weight: Any) -> bool:
    """Whether torchao's kernels for `quant` take a linear of this (out, in) weight on the GPU."""
    return quant != "int8_dynamic" or (weight.shape[0] % 8 == 0 and weight.shape[1] % 8 == 0)


def _linear_weights(model: Any) -> list[str]:
    """Names of the 2-D parameters an FX graph passes as the weight of a linear call (aten or functional)."""
    import torch

    linears = (torch.ops.aten.linear.default, torch.nn.functional.linear)
    names = []
    for node in model.graph.nodes:
        if node.op == "call_function" and node.target in linears and len(node.args) > 1:
            weight = node.args[1]
            if getattr(weight, "op", None) == "get_attr" and weight.target not in names:
                names.append(weight.target)
    return names


def _quantize_graph(model: Any, quant: str, cfg: Any) -> int:
    import torch
    from torchao.quantization import quantize_

    quantized: set[str] = set()
    for name in _linear_weights(model):
        owner_name, _, attr = name.rpartition(".")
        owner = model.get_submodule(owner_name) if owner_name else model
        weight = getattr(owner, attr)
        if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or not weight.is_floating_point() \
                or not _fits(quant, weight):
            continue
        layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False, device=weight.device, dtype=weight.dtype)
        layer.weight = torch.nn.Parameter(weight.detach(), requires_grad=False)
        quantize_(layer, cfg)
        if not _quantized(layer.weight):  # torchao leaves a layer it cannot take (FP8: dims not of 16)
            continue
        delattr(owner, attr)
        owner.register_parameter(attr, layer.weight)
        quantized.add(name)
    _functional_linears(model, quantized)
    return len(quantized)


def _functional_linears(model: Any, weights: set[str]) -> None:
    """The graph's aten.linear calls on quantized weights made torch.nn.functional.linear calls, as an
    nn.Linear makes them: torchao's tensors take F.linear before it decomposes. Compiled, an aten.linear
    call on a torchao FP8 weight decomposes into views the tensor lacks (aten.as_strided) on the H100,
    where the same model's live module compiles (reports/gpu/quant/h100-fourth/torchao-compile)."""
    import torch

    changed = False
    for node in model.graph.nodes:
        if node.op == "call_function" and node.target is torch.ops.aten.linear.default and len(node.args) > 1 \
                and getattr(node.args[1], "target", None) in weights:
            node.target = torch.nn.functional.linear
            changed = True
    if changed:
        model.recompile()


def _quantized(weight: Any) -> bool:
    """Whether torchao swapped the weight for one of its tensor subclasses."""
    import torch

    return type(weight) not in (torch.Tensor, torch.nn.Parameter)


def _wrapped_graph(model: Any) -> Any:
    """The GraphModule `model` is or wraps (an ExportedProgram's module inside wrappers holding nothing else
    but it, such as runtimes/torch.program_module's FlatInputs); None for a module of its own."""
    import torch

    while not isinstance(model, torch.fx.GraphModule):
        children = list(model.children())
        if len(children) != 1 or any(True for _ in model.parameters(recurse=False)) or \
                any(True for _ in model.buffers(recurse=False)):
            return None
        model = children[0]
    return model


def quantize(model: Any, quant: str, granularity: str | None = None) -> int:
    """Quantizes `model`'s linear layers in place; returns how many were quantized. Raises ValueError when
    none was (a model without linear layers, or a TorchScript, which cannot hold tensor subclasses)."""
    import torch
    from torchao.quantization import quantize_

    if isinstance(model, torch.jit.ScriptModule):
        raise ValueError("torchao quantizes Python modules; a TorchScript archive cannot hold its tensor "
                         "subclasses (export the model with torch.export instead)")
    cfg = config(quant, granularity)
    graph = _wrapped_graph(model)
    if graph is not None:
        done = _quantize_graph(graph, quant, cfg)
    else:
        quantize_(model, cfg, filter_fn=lambda m, _: isinstance(m, torch.nn.Linear) and not _quantized(m.weight)
                  and _fits(quant, m.weight))
        done = sum(isinstance(m, torch.nn.Linear) and _quantized(m.weight) for m in model.modules())
    if not done:
        raise ValueError(f"{quant}: the model has no linear layer torchao could quantize")
    return done

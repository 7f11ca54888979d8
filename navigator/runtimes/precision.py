"""What a loaded model computes in, read from the runtime that holds it (a trial's "precision run"): the
compute operations counted by the precision they run in, as "int8 20/21, fp32 1/21 Conv+MatMul". Each
runner of runtimes/ answers `precision_run()` from its own objects (an ONNX graph as ONNX Runtime
optimised it, OpenVINO's compiled runtime model, a torch module's weights, a TensorRT engine's layers),
never from the trial's params, so that a requested precision that did not happen shows.

No framework is imported here: each function reads the object its runner hands it.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Iterable

# ONNX TensorProto.DataType -> short name (onnx/onnx.proto "enum DataType"); integer index types are left
# out: they are not what a model computes in.
ONNX_TYPES = {1: "fp32", 2: "uint8", 3: "int8", 10: "fp16", 11: "fp64", 16: "bf16", 17: "fp8", 18: "fp8",
              19: "fp8", 20: "fp8", 21: "uint4", 22: "int4", 23: "fp4"}
# Float compute operations of ONNX and ONNX Runtime's contrib/NCHWc domains, by the family they are named
# under; ONNX Runtime's graph optimiser fuses Conv+activation into FusedConv, MatMul+Transpose into FusedMatMul.
FLOAT_OPS = {"Conv": "Conv", "ConvTranspose": "Conv", "FusedConv": "Conv", "NhwcConv": "Conv",
             "NhwcFusedConv": "Conv", "MatMul": "MatMul", "FusedMatMul": "MatMul", "Gemm": "Gemm",
             "FusedGemm": "Gemm", "Attention": "Attention", "MultiHeadAttention": "Attention",
             "GroupQueryAttention": "Attention"}
# Integer compute: what ONNX Runtime's QDQ fusion (QDQSelectorActionTransformer) and quantize_dynamic
# leave for its int8 kernels (onnxruntime.ai/docs/performance/model-optimizations/quantization.html).
INTEGER_OPS = {"QLinearConv": "Conv", "ConvInteger": "Conv", "QLinearMatMul": "MatMul", "MatMulInteger": "MatMul",
               "MatMulIntegerToFloat": "MatMul", "DynamicQuantizeMatMul": "MatMul", "QGemm": "Gemm",
               "QAttention": "Attention"}
TREE_OPS = ("TreeEnsembleRegressor", "TreeEnsembleClassifier", "TreeEnsemble")
# OpenVINO CPU plugin layer types that do a model's arithmetic (the runtime model's rt_info "layerType").
OPENVINO_OPS = ("Convolution", "Deconvolution", "FullyConnected", "MatMul", "ScaledDotProductAttention")
# OpenVINO element types (ov::element::Type names) -> the names used here; u8 and i8 are both 8-bit
# integer arithmetic (u8 activations against i8 weights is what its int8 convolutions take).
OPENVINO_TYPES = {"f32": "fp32", "f16": "fp16", "bf16": "bf16", "i8": "int8", "u8": "int8", "f64": "fp64",
                  "i4": "int4", "u4": "int4", "f8e4m3": "fp8", "f8e5m2": "fp8", "nf4": "nf4"}
# dtype names of torch, TensorFlow and NumPy -> the names used here.
DTYPE_NAMES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "float64": "fp64", "int8": "int8",
               "qint8": "int8", "quint8": "int8", "float8_e4m3fn": "fp8", "float8_e5m2": "fp8"}


def mix(kinds: Counter[str], what: str) -> str | None:
    """'int8 20/21, fp32 1/21 Conv+MatMul': each precision's share of the counted operations."""
    total = sum(kinds.values())
    if not total:
        return None
    return ", ".join(f"{k} {n}/{total}" for k, n in kinds.most_common()) + f" {what}"


def _joined(families: Iterable[str]) -> str:
    return "+".join(sorted(set(families)))


# ONNX graphs (as ONNX Runtime optimised them) -----------------------------------------------------------

def _attribute(node: Any, name: str) -> Any:
    return next((a for a in node.attribute if a.name == name), None)


def _output_type(node: Any, types: dict[str, int]) -> int | None:
    """The element type of a node's outputs where its inputs tell it (enough to type compute inputs)."""
    op, inputs = node.op_type, list(node.input)
    if op == "DequantizeLinear" and len(inputs) > 1:
        return types.get(inputs[1])  # the scale's type (ONNX DequantizeLinear: y = (x - zp) * scale)
    if op in ("QuantizeLinear", "DynamicQuantizeLinear"):
        return types.get(inputs[2], 2) if len(inputs) > 2 else 2  # the zero point's type, uint8 without one
    if op in ("Cast", "Constant"):
        attribute = _attribute(node, "to" if op == "Cast" else "value")
        return None if attribute is None else (attribute.i if op == "Cast" else attribute.t.data_type)
    known = [types[i] for i in inputs if i in types]
    return next((t for t in known if ONNX_TYPES.get(t, "").startswith(("fp", "bf"))), known[0] if known else None)


def element_types(graph: Any) -> dict[str, int]:
    """Tensor name -> ONNX element type: declared (inputs, initializers, value_info) or carried forward
    through the nodes (a saved optimised graph declares few of its intermediate tensors)."""
    types = {i.name: i.data_type for i in graph.initializer}
    for v in (*graph.input, *graph.value_info, *graph.output):
        if v.type.HasField("tensor_type"):
            types[v.name] = v.type.tensor_type.elem_type
    for _ in range(2):  # nodes come in topological order; a second pass for a graph whose nodes do not
        for node in graph.node:
            if all(o in types for o in node.output if o):
                continue
            found = _output_type(node, types)
            if found:
                for o in node.output:
                    types.setdefault(o, found)
    return types


def _trees(graph: Any) -> str | None:
    """Tree ensembles: the type of their split thresholds, which ONNX Runtime's tree kernels compare in."""
    kinds: Counter[str] = Counter()
    for node in (n for n in graph.node if n.op_type in TREE_OPS):
        tensor = _attribute(node, "nodes_values_as_tensor") or _attribute(node, "nodes_splits")
        kinds[ONNX_TYPES.get(tensor.t.data_type, "?") if tensor is not None else "fp32"] += 1
    return mix(kinds, "tree ensemble thresholds")


def onnx_graph(graph: Any, optimised: bool = True) -> str | None:
    """The compute operations of an ONNX graph by precision: integer kernels as int8, float ones by the
    type of their input. In an `optimised` graph (as ONNX Runtime runs it) a float operation fed by
    DequantizeLinear weights is QDQ left unfused: the int8 weights are dequantized and it computes in
    float; in a graph as given it is counted as "QDQ int8", which ONNX Runtime's optimiser may fuse. IO
    types are named where they differ from the compute's. None for a graph without such operations."""
    types = element_types(graph)
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    kinds: Counter[str] = Counter()
    families, unfused = [], 0
    for node in graph.node:
        if node.op_type in INTEGER_OPS:
            kinds["int8"] += 1
            families.append(INTEGER_OPS[node.op_type])
        elif node.op_type == "MatMulNBits":  # weight-only int4/int8, float arithmetic
            bits = _attribute(node, "bits")
            kinds[f"int{bits.i if bits is not None else 4} weights"] += 1
            families.append("MatMul")
        elif node.op_type in FLOAT_OPS:
            inputs = list(node.input)
            kind = next((ONNX_TYPES[types[i]] for i in inputs[:2] if types.get(i) in ONNX_TYPES), "?")
            qdq = len(inputs) > 1 and inputs[1] in dequantized
            kinds["QDQ int8" if qdq and not optimised else kind] += 1
            families.append(FLOAT_OPS[node.op_type])
            unfused += qdq and optimised
    text = mix(kinds, _joined(families))
    if text is None:
        return _trees(graph)
    if unfused:
        text += f" ({unfused} on dequantized int8 weights: QDQ not fused)"
    initializers = {i.name for i in graph.initializer}
    io = {ONNX_TYPES.get(types.get(v.name, 0), "") for v in graph.input if v.name not in initializers}
    io = {t for t in io if t.startswith(("fp", "bf"))}
    return text + (f"; IO {'+'.join(sorted(io))}" if io and io != set(kinds) else "")


# OpenVINO ---------------------------------------------------------------------------------------------

def openvino(runtime_model: Any) -> str | None:
    """OpenVINO's compiled model as it executes (CompiledModel.get_runtime_model()): each compute layer's
    rt_info "runtimePrecision", the precision the plugin runs it in, beside its "layerType" (the keys of
    openvino/runtime/exec_model_info.hpp, ov::exec_model_info::RUNTIME_PRECISION and LAYER_TYPE)."""
    kinds: Counter[str] = Counter()
    families = []
    for op in runtime_model.get_ordered_ops():
        info = op.get_rt_info()
        if "layerType" not in info or "runtimePrecision" not in info:
            continue
        layer = info["layerType"].astype(str)
        if layer in OPENVINO_OPS:
            precision = info["runtimePrecision"].astype(str)
            kinds[OPENVINO_TYPES.get(precision, precision)] += 1
            families.append(layer)
    return mix(kinds, _joined(families))


# PyTorch ----------------------------------------------------------------------------------------------

def weight_kind(tensor: Any) -> str:
    """A weight's precision: the type name of a tensor subclass (torchao's Int8Tensor, Float8Tensor, ... hold
    their quantized data behind a float dtype), else its dtype."""
    if type(tensor).__name__ not in ("Tensor", "Parameter"):
        return type(tensor).__name__
    name = str(tensor.dtype).rpartition(".")[2]
    return DTYPE_NAMES.get(name, name)


def torch_module(model: Any, autocast: str | None = None) -> str | None:
    """A torch module's weights (parameters named *weight, or every parameter where none is) by their
    precision, with the module types holding each; `autocast`: the dtype the runner's autocast computes in."""
    modules = getattr(model, "named_modules", None)
    if modules is None:
        return None
    # a TorchScript submodule is a RecursiveScriptModule; its original_name is the scripted class's
    owned = [(getattr(m, "original_name", None) or type(m).__name__, name, p)
             for _, m in modules() for name, p in m.named_parameters(recurse=False)]
    weights = [(owner, p) for owner, name, p in owned if name.endswith("weight")] or [(o, p) for o, _, p in owned]
    holders: dict[str, set[str]] = {}
    kinds: Counter[str] = Counter()
    for owner, p in weights:
        kind = weight_kind(p)
        kinds[kind] += 1
        holders.setdefault(kind, set()).add(owner)
    total = sum(kinds.values())
    if not total:
        return None
    text = ", ".join(f"{k} {n}/{total} ({_joined(holders[k])})" for k, n in kinds.most_common()) + " weights"
    return text + (f"; under autocast {autocast}" if autocast else "")


# TensorRT engines -------------------------------------------------------------------------------------

# Substrings of a layer's "Format/Datatype" (TensorRT's engine inspector: "Row major linear FP16 format",
# "Channel major FP16 format where channel % 8 == 0", or without an execution context "Half") -> precision;
# the first that matches wins, so that "bfloat" is not read as "float".
TENSORRT_TYPES = (("fp8", "fp8"), ("e4m3", "fp8"), ("fp4", "fp4"), ("int4", "int4"), ("int8", "int8"),
                  ("bf16", "bf16"), ("bfloat", "bf16"), ("fp16", "fp16"), ("half", "fp16"), ("fp32", "fp32"),
                  ("float", "fp32"))
# LayerType substrings of the layers that do a network's arithmetic (CaskConvolution, CaskGemmConvolution,
# gemm, MatrixMultiply, Myelin regions, ...).
TENSORRT_COMPUTE = ("conv", "gemm", "matrixmultiply", "matmul", "fullyconnected", "attention", "myelin")


def _tensorrt_kind(layer: dict[str, Any]) -> str | None:
    tensors = layer.get("Inputs") or layer.get("Outputs") or []
    text = str(tensors[0].get("Format/Datatype", "")).lower() if tensors and isinstance(tensors[0], dict) else ""
    kind = next((name for token, name in TENSORRT_TYPES if token in text), None)
    if kind == "fp32" and "tf32" in str(layer.get("TacticName", "")).lower():
        return "tf32"  # an fp32 layer whose kernel computes in TF32 (its tactic's name says so)
    return kind


def tensorrt_layers(info: str) -> str | None:
    """Engine inspector JSON (LayerInformationFormat.JSON) -> the compute layers by precision. An engine
    built without ProfilingVerbosity.DETAILED lists layer names only: None, nothing to read."""
    layers = [layer for layer in json.loads(info).get("Layers", []) if isinstance(layer, dict)]
    compute = [layer for layer in layers if any(t in str(layer.get("LayerType", "")).lower() for t in TENSORRT_COMPUTE)]
    kinds = Counter(k for layer in compute or layers if (k := _tensorrt_kind(layer)) is not None)
    return mix(kinds, "TensorRT compute layers" if compute else "TensorRT layers")

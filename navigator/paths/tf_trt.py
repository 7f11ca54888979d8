"""TensorFlow-TensorRT: the SavedModel converted by TF-TRT (TrtGraphConverterV2), its TensorRT engines
built at conversion from the sample inputs, run by TensorFlow on the GPU.

Gated: it needs a TensorFlow build linked against TensorRT and a GPU (tensorflow-cpu has neither), so
`navigator paths` reports it unavailable on such machines; it has not run on the machines this project
is built on. Triton: tensorflow_savedmodel with the TF-TRT accelerator block (precision_mode,
max_workspace_size_bytes, minimum_segment_size), which converts the original SavedModel at load;
only for servers before 25.03 (the TensorFlow backend is deprecated since), with a warning.
Conversion parameters: tf.experimental.tensorrt.ConversionParams.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from navigator.cache import Cache
from navigator.lazy import installed, require
from navigator.paths import _probe, _tf
from navigator.paths.base import Runner, Target, TritonTarget
from navigator.records import Artifact, Params, TritonModel
from navigator.source import ModelSource

NAME = "tf_trt"
TIMEOUT_S = 1200.0  # default trial timeout: TensorRT builds engines
DEVICES = ("cuda",)
FRAMEWORKS = ("tf",)
PRECISION_CLASSES = ("fp32", "fp16")
PRECISIONS = {"fp32": "FP32", "fp16": "FP16"}
ORIGINAL = "original.txt"


def available() -> str | None:
    if not installed("tensorflow"):
        return "tensorflow is not installed (pip install 'triton-navigator[tf]')"
    build = _probe.tf_build()  # tensorflow/python/platform/build_info.py, read without importing TF
    if not build.get("is_tensorrt_build"):
        return "this TensorFlow build is not linked against TensorRT (tensorflow-cpu never is)"
    if not build.get("is_cuda_build"):
        return "this TensorFlow build has no CUDA: it sees no GPU"
    if not _probe.cuda_gpus():
        return "no CUDA GPU: the driver shows none"
    return None


def _build(source: ModelSource, savedmodel: Path, params: Params, out: Path) -> None:
    trt = require("tensorflow.python.compiler.tensorrt.trt_convert")
    conversion = trt.TrtConversionParams(precision_mode=PRECISIONS[str(params["precision"])],
                                         max_workspace_size_bytes=int(params["max_workspace_size_bytes"]),
                                         minimum_segment_size=int(params["minimum_segment_size"]))
    converter = trt.TrtGraphConverterV2(input_saved_model_dir=str(savedmodel), conversion_params=conversion)
    converter.convert()
    from navigator.source import tf as tf_source

    def samples() -> Iterator[list[Any]]:
        yield tf_source.tensors(source.model, source.samples)

    converter.build(input_fn=samples)  # engines for the sample shapes, instead of at the first request
    converter.save(str(out / _tf.SAVEDMODEL))
    (out / ORIGINAL).write_text(str(savedmodel))  # what Triton's TF-TRT accelerator converts itself


def convert(source: ModelSource, params: Params, cache: Cache, target: Target) -> Artifact:
    savedmodel = _tf.savedmodel(source, cache)
    key = {k: params[k] for k in ("precision", "max_workspace_size_bytes", "minimum_segment_size")}
    d = cache.get(NAME, key, lambda out: _build(source, savedmodel, key, out))
    return Artifact(NAME, d, d.name, dict(params), d / _tf.SAVEDMODEL)


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    tf = require("tensorflow")
    assert artifact.file is not None
    signature = tf.saved_model.load(str(artifact.file)).signatures["serving_default"]
    names = [t.name for t in source.io.inputs]
    keys = source.model.signature_outputs

    def fn(*tensors: Any) -> list[Any]:
        result = signature(**dict(zip(names, tensors)))
        return [result[k] for k in keys]

    return _tf.TFRunner(fn, source, signature)


def triton(artifact: Artifact, params: Params, target: TritonTarget) -> TritonModel:
    """The original SavedModel with the TF-TRT accelerator block, which Triton converts at load (refused,
    as tf_baseline's, on servers without the TensorFlow backend)."""
    original = Path((artifact.dir / ORIGINAL).read_text().strip())
    model = _tf.savedmodel_model(Artifact(NAME, artifact.dir, artifact.key, artifact.convert, original), {}, target)
    model.kind = "KIND_GPU"
    model.gpu_accelerators = {"tensorrt": {"precision_mode": PRECISIONS[str(params["precision"])],
                                           "max_workspace_size_bytes": str(params["max_workspace_size_bytes"]),
                                           "minimum_segment_size": str(params["minimum_segment_size"])}}
    return model


def precision(params: Params) -> str:
    return str(params.get("precision", "fp32"))

"""The python-backend twin builds the session the trial's runner built: for every runtime parameter of
every path the twin serves, at each of its legal values (navigator/searchspace/*.yaml), the options the
native runner hands its framework equal those the written twin (model.py and its shipped copy of
navigator/runtimes, started as Triton's python backend starts it) hands it; and each value changes them,
so a parameter added to a YAML without being wired into the runtime code fails here.

No session is created: ONNX Runtime's InferenceSession and OpenVINO's Core are replaced by recorders
(CUDA provider options are compared as options, without a GPU), and the torch runners' settings records
are compared with the model file's loading stubbed out."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from navigator.paths.base import TritonTarget
from navigator import paths as registry
from navigator.records import Artifact, IOSpec, ParamSpec, ServingConfig, TensorSpec
from navigator.search import space as search_space
from navigator.triton import python_backend
from navigator.triton.deployment import Deployment
from tests.twin_loader import twin_loader  # noqa: F401  (the fixture)

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
ov = pytest.importorskip("openvino")

TWIN_PATHS = ("eager", "torchscript", "torch_cuda", "torch_compile", "torch_ao", "ort_cpu", "ort_cuda", "tree_onnx", "openvino",
              "tf_openvino")
FILES = {"eager": "model.pt2", "torch_cuda": "model.pt2", "torch_compile": "model.pt2", "torch_ao": "model.pt2", "torchscript": "model.pt",
         "openvino": "model.xml", "tf_openvino": "model.xml"}
IO = IOSpec((TensorSpec("x", "float32", (None, 4)),), (TensorSpec("y", "float32", (None, 4)),))
SESSION_FIELDS = [a for a in dir(ort.SessionOptions()) if not a.startswith("_")
                  and not callable(getattr(ort.SessionOptions(), a))]


def _values(spec: ParamSpec) -> list[Any]:
    """Every legal value of a choice; the lower bound and one above it of an int range."""
    return list(spec.choices) if spec.choices else [spec.low, spec.low + 1]


def _point(space: Any, target: ParamSpec, value: Any) -> dict[str, Any]:
    """The path's params at their first values, `target` at `value` and its `when` satisfied."""
    forced = {k: (w[0] if isinstance(w, list) else w) for k, w in target.when.items()}
    forced[target.name] = value
    chosen: dict[str, Any] = {}
    for p in space.params:
        if search_space.applies(p, chosen):
            chosen[p.name] = forced.get(p.name, p.choices[0] if p.choices else p.low)
    assert chosen.get(target.name) == value, (target, chosen)
    return chosen


CASES = [(name, spec.name, value) for name in TWIN_PATHS for spec in search_space.load(name).params
         if spec.stage == "runtime" for value in _values(spec)]


class Recorder:
    """Stands in for the frameworks' session constructors and writes down what they were given."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[Any] = []
        calls = self.calls

        class Session:
            def __init__(self, path: str, sess_options: Any = None, providers: Any = None) -> None:
                calls.append(("ort", {a: repr(getattr(sess_options, a)) for a in SESSION_FIELDS}, providers))

            def get_inputs(self) -> list[Any]:
                return []

            get_outputs = get_inputs

        class Core:
            def compile_model(self, path: str, device: str, config: dict[str, str]) -> Any:
                calls.append(("openvino", device, dict(config)))
                return SimpleNamespace(inputs=[], create_infer_request=lambda: None)

        monkeypatch.setattr(ort, "InferenceSession", Session)
        monkeypatch.setattr(ov, "Core", Core)
        self.monkeypatch = monkeypatch

    def quantizer(self, module: Any) -> None:
        """torchao's quantization (runtimes/quantize.py, native or shipped) written down, not run: FP8 needs
        a GPU of compute capability 8.9."""
        calls = self.calls
        self.monkeypatch.setattr(module, "quantize", lambda model, quant, granularity=None: calls.append(
            ("torchao", quant, granularity)) or 1)

    def take(self, runner: Any) -> tuple[Any, ...]:
        """What one runner was built with: its framework's options, its class and its own switches."""
        settings = getattr(runner, "settings", None)
        record = (*self.calls, type(runner).__name__, getattr(runner, "cuda_graph", None),
                  dataclasses.asdict(settings) if settings is not None else None)
        self.calls.clear()
        return record


def _artifact(tmp_path: Path, name: str) -> Artifact:
    d = tmp_path / "artifact"
    d.mkdir(exist_ok=True)
    file = d / FILES.get(name, "model.onnx")
    if name == "torchscript":
        torch.jit.save(torch.jit.trace(torch.nn.Linear(4, 4).eval(), (torch.randn(2, 4),)), str(file))
    elif file.suffix == ".onnx":  # the repository writer reads it (for external weights)
        from onnx import TensorProto, helper, save

        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 4])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 4])])
        save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(file))
    else:
        file.write_bytes(b"stand-in")
    file.with_suffix(".bin").write_bytes(b"")
    return Artifact(name, d, "key", {}, file)


def _native(name: str, artifact: Artifact, params: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
            recorder: Recorder) -> Any:
    """The trial's runner; the torch GPU paths' model stays on the CPU (only its settings are compared)."""
    from navigator.paths import _torch_gpu
    from navigator.runtimes import quantize

    recorder.quantizer(quantize)
    monkeypatch.setattr(_torch_gpu, "on_device", lambda source, device: source.model)
    source = SimpleNamespace(model=torch.nn.Linear(4, 4), kind="module", io=IO)
    return registry.get(name).load(artifact, source, params)


def _twin(name: str, artifact: Artifact, params: dict[str, Any], where: Path, loader: Any,
          monkeypatch: pytest.MonkeyPatch, recorder: Recorder) -> Any:
    """The runner the written twin builds in Triton's python backend from the same trial."""
    model = python_backend.from_native(registry.get(name).triton(artifact, params, TritonTarget()))
    model_dir = Deployment("m", IO, model, ServingConfig(8)).write(where)
    template = loader.template(model_dir)
    recorder.quantizer(loader.runtime("quantize"))
    shipped_torch = loader.runtime("torch")
    loaded = []
    monkeypatch.setattr(shipped_torch, "load_file", lambda path, device, unpickle=False: loaded.append(
        (Path(path).name, device, unpickle)) or torch.nn.Linear(4, 4))
    runner = loader.start(template, model_dir).model
    if loaded:  # the torch twin: the trial's file, on the trial's device, not unpickled
        assert loaded == [(model.parameters["MODEL_FILE"], runner.settings.device, False)]
    return runner


@pytest.mark.parametrize(("name", "param", "value"), CASES, ids=[f"{n}.{p}={v}" for n, p, v in CASES])
def test_the_twin_builds_the_runners_session(name: str, param: str, value: Any, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch, twin_loader: Any) -> None:  # noqa: F811
    recorder = Recorder(monkeypatch)
    space = search_space.load(name)
    target = next(p for p in space.params if p.name == param)
    artifact = _artifact(tmp_path, name)
    records = {}
    for v in _values(target):
        params = _point(space, target, v)
        native = recorder.take(_native(name, artifact, params, monkeypatch, recorder))
        twin = recorder.take(_twin(name, artifact, params, tmp_path / f"repo-{len(records)}", twin_loader, monkeypatch,
                                   recorder))
        assert twin == native, (params, twin, native)
        records[repr(v)] = native
    assert records[repr(value)] not in [r for v, r in records.items() if v != repr(value)], \
        f"{name}.{param}={value!r} builds the same session as another value: the runtime code does not read it"


def test_serving_threads_replace_the_trials_param_in_the_twin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               twin_loader: Any) -> None:  # noqa: F811
    """The serving tuner's threads per instance reach the twin's session under the trial's param name."""
    recorder = Recorder(monkeypatch)
    artifact = _artifact(tmp_path, "ort_cpu")
    model = python_backend.from_native(registry.get("ort_cpu").triton(artifact, {"intra_op_num_threads": 2}, TritonTarget()))
    model_dir = Deployment("m", IO, model, ServingConfig(8, threads=1)).write(tmp_path / "repo")
    twin_loader.start(twin_loader.template(model_dir), model_dir)
    [(_, options, _)] = recorder.calls
    assert options["intra_op_num_threads"] == "1"


def test_every_twin_path_is_covered() -> None:
    assert {n for n, _, _ in CASES} == set(TWIN_PATHS) and set(TWIN_PATHS) <= set(registry.NAMES)
    assert "runtimes" not in sys.modules  # the shipped package never shadows anything importable


def test_a_written_ort_cuda_repository_is_served_with_its_tuned_provider_options(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, twin_loader: Any) -> None:  # noqa: F811
    """serve-check on a server without the onnxruntime backend: the native repository read back from disk
    becomes its twin, whose CUDA provider gets use_tf32=0 and prefer_nhwc=1 as the trial did (a twin
    mapped back from the Triton keys got only cudnn_conv_algo_search and gpu_mem_limit)."""
    from navigator.triton import deployment

    recorder = Recorder(monkeypatch)
    params = {"precision": "fp32", "cudnn_conv_algo_search": "HEURISTIC", "use_tf32": False, "prefer_nhwc": True,
              "do_copy_in_default_stream": False, "enable_cuda_graph": False, "gpu_mem_limit_gib": 4}
    native = registry.get("ort_cuda").triton(_artifact(tmp_path, "ort_cuda"), params, TritonTarget())
    written = Deployment("m", IO, native, ServingConfig(8)).write(tmp_path / "native")
    served, note = deployment.servable(deployment.load(written), {"python"})
    assert served.model.backend == "python" and "twin" in note
    twin_dir = served.write(tmp_path / "twin")
    twin_loader.start(twin_loader.template(twin_dir), twin_dir)
    [(_, _, providers)] = recorder.calls
    assert providers == [("CUDAExecutionProvider", {
        "device_id": "0", "cudnn_conv_algo_search": "HEURISTIC", "use_tf32": "0", "do_copy_in_default_stream": "0",
        "prefer_nhwc": "1", "enable_cuda_graph": "0", "gpu_mem_limit": str(4 * 2**30)}), "CPUExecutionProvider"]


def test_the_serving_knobs_the_config_sets_are_the_ones_the_twin_reads() -> None:
    """config.py's python thread/stream keys, the backend table's python parameters and the template's
    OVERRIDES name the same params (the template cannot import navigator, so each keeps its own list)."""
    import ast

    from navigator.triton import backends, config

    template = Path(python_backend.__file__).parent / "templates" / "model.py"
    [overrides] = [ast.literal_eval(node.value) for node in ast.parse(template.read_text()).body
                   if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "OVERRIDES"]
    knobs = {v for keys in (config.THREAD_KEYS, config.STREAM_KEYS) for k, v in keys.items() if k.startswith("python:")}
    assert knobs == set(overrides) == set(backends.BACKENDS["python"].parameters) - {"RUNTIME", "MODEL_FILE"}


def test_the_shipped_runtimes_import_nothing_of_navigator() -> None:
    """They run inside Triton's python backend, where navigator is not installed: stdlib, NumPy, the
    frameworks and each other (relative imports) only, at module level or inside functions."""
    import ast

    import navigator.runtimes

    imported = set()
    for file in Path(navigator.runtimes.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                imported |= {(file.name, a.name.split(".")[0]) for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add((file.name, "." if node.level else (node.module or "").split(".")[0]))
    # "." is the shipped package itself (runtimes/quantize.py, runtimes/precision.py); onnx is read by
    # OrtRunner.precision_run only
    assert {name for _, name in imported} <= {"__future__", "collections", "dataclasses", "json", "pathlib", "tempfile",
                                              "typing", "zipfile", "numpy", ".", "onnx", "onnxruntime", "openvino",
                                              "torch", "torchao"}, sorted(imported)

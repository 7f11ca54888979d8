"""A deployment: the winner's Triton model (native or its python-backend twin) written with serving knobs,
served by a real tritonserver, asked over HTTP and gRPC, and compared with the source framework."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from navigator.errors import InputError, ServeError
from navigator.records import IOSpec, ServeCheck, ServingConfig, TritonModel
from navigator.trial.validate import validate


@dataclass(frozen=True)
class Deployment:
    name: str
    io: IOSpec
    model: TritonModel
    serving: ServingConfig

    def config(self, serving: ServingConfig | None = None) -> Any:
        from navigator.triton import config as triton_config

        return triton_config.build(self.name, self.io, self.model, self.serving.max_batch_size,
                                   serving or self.serving)

    def write(self, repository: Path) -> Path:
        from navigator.triton import repository as triton_repo

        return triton_repo.write(repository, self.name, self.config(), self.model.files)

    def python(self) -> Deployment:
        from navigator.triton import python_backend

        return replace(self, model=python_backend.from_native(self.model))


def load(model_dir: Path) -> Deployment:
    """A deployment read back from <repository>/<name>/ (config.pbtxt + version 1)."""
    from navigator.records import TensorSpec
    from navigator.triton import config as triton_config

    try:
        cfg = triton_config.from_text((model_dir / "config.pbtxt").read_text())
    except (OSError, ValueError) as exc:
        raise ServeError(f"{model_dir}: no readable config.pbtxt ({exc})") from None
    pb = triton_config._pb()
    names = {v: k for k, v in triton_config.DATA_TYPES.items() if k != "str"}
    batched = cfg.max_batch_size > 0

    def specs(items: Any) -> tuple[TensorSpec, ...]:
        return tuple(TensorSpec(t.name, names[pb.DataType.Name(t.data_type)],
                                ((None,) if batched else ()) + tuple(None if d < 0 else d for d in t.dims))
                     for t in items)

    version = model_dir / "1"
    # directories too: a SavedModel, the python twin's runtimes package (not the bytecode caches Python leaves)
    files = {f.name: f for f in sorted(version.iterdir()) if f.name != "__pycache__"} if version.is_dir() else {}
    group = cfg.instance_group[0] if cfg.instance_group else None
    model = TritonModel(backend=cfg.backend or ("pytorch" if "pytorch" in cfg.platform else ""),
                        platform=cfg.platform, files=files,
                        parameters={k: v.string_value for k, v in cfg.parameters.items()},
                        graph_level=cfg.optimization.graph.level or None,
                        cpu_accelerators={a.name: dict(a.parameters) for a in
                                          cfg.optimization.execution_accelerators.cpu_execution_accelerator},
                        gpu_accelerators={a.name: dict(a.parameters) for a in
                                          cfg.optimization.execution_accelerators.gpu_execution_accelerator},
                        kind=pb.ModelInstanceGroup.Kind.Name(group.kind) if group else "KIND_CPU",
                        default_model_filename=cfg.default_model_filename)
    serving = ServingConfig(max_batch_size=cfg.max_batch_size, instances=group.count if group else 1,
                            dynamic_batching=cfg.HasField("dynamic_batching"),
                            max_queue_delay_us=cfg.dynamic_batching.max_queue_delay_microseconds,
                            preferred_batch_sizes=tuple(cfg.dynamic_batching.preferred_batch_size))
    return Deployment(cfg.name, IOSpec(specs(cfg.input), specs(cfg.output)), model, serving)


def servable(deployment: Deployment, backends: set[str]) -> tuple[Deployment, str]:
    """The deployment itself when the server has its backend, else its python-backend twin, and a note."""
    backend = deployment.model.backend or ("pytorch" if "pytorch" in deployment.model.platform else
                                           deployment.model.platform)
    if backend in backends:
        return deployment, ""
    try:
        twin = deployment.python()
    except InputError as exc:
        raise ServeError(f"this server has no {backend} backend, and {exc}") from None
    return twin, f"this server has no {backend} backend: serving its python-backend twin (same file, same runtime settings)"


def infer(protocol: str, url: str, deployment: Deployment, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The served model's outputs for `inputs`, in requests of at most max_batch_size rows."""
    import tritonclient.grpc as grpc
    import tritonclient.http as http
    from tritonclient.utils import np_to_triton_dtype

    module: Any = http if protocol == "http" else grpc
    client = module.InferenceServerClient(url)
    try:
        rows = len(next(iter(inputs.values())))
        step = deployment.serving.max_batch_size if deployment.io.batched else rows
        parts = []
        for start in range(0, rows, max(1, step)):
            requests = []
            for spec in deployment.io.inputs:
                array = np.ascontiguousarray(inputs[spec.name][start:start + step] if deployment.io.batched
                                             else inputs[spec.name])
                item = module.InferInput(spec.name, list(array.shape), np_to_triton_dtype(array.dtype))
                item.set_data_from_numpy(array)
                requests.append(item)
            result = client.infer(deployment.name, requests)
            parts.append([result.as_numpy(o.name) for o in deployment.io.outputs])
    finally:
        client.close()
    return [np.concatenate(chunk) if deployment.io.batched else chunk[0] for chunk in zip(*parts)]


def check(protocol: str, url: str, deployment: Deployment, inputs: dict[str, np.ndarray],
          reference: list[np.ndarray], atol: float, rtol: float) -> ServeCheck:
    """One protocol's answers against the source framework's, with the trial's validation rules."""
    try:
        got = infer(protocol, url, deployment, inputs)
    except Exception as exc:  # the server's error message is the finding
        return ServeCheck(protocol, False, f"request failed: {' '.join(str(exc).split())[:300]}")
    v = validate(deployment.io.outputs, got, reference, atol, rtol)
    return ServeCheck(protocol, v.ok, v.reason, tuple(v.outputs))


def serve_check(target: Deployment, inputs: dict[str, np.ndarray], reference: list[np.ndarray],
                atol: float, rtol: float, log: Path) -> list[ServeCheck]:
    """Serve a deployment this server can load (see servable()) from a scratch repository, ask over HTTP
    and gRPC, compare; the server stops."""
    from navigator.triton import server as triton_server

    scratch = Path(tempfile.mkdtemp(prefix="navigator-serve-"))
    try:
        target.write(scratch / "repository")
        with triton_server.serve(scratch / "repository", log, model=target.name) as srv:
            checks = [check("http", srv.http_url, target, inputs, reference, atol, rtol),
                      check("grpc", srv.grpc_url, target, inputs, reference, atol, rtol)]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return checks


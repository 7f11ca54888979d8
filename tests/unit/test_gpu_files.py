"""Model files on the GPU paths, checked on the CPU with the "meta" device standing in for "cuda": an
ExportedProgram or traced TorchScript that creates tensors inside forward carries the device it was
captured on, which `.to(device)` does not move; the torch paths and the python-backend twin rewrite it."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from navigator.paths.base import TritonTarget  # noqa: E402
from navigator.paths import _torch_gpu, torch_compile, torch_cuda, torch_tensorrt  # noqa: E402
from navigator.records import IOSpec, ServingConfig, TensorSpec  # noqa: E402
from navigator.paths.base import Target  # noqa: E402
from navigator.source import load_source  # noqa: E402
from navigator.triton import python_backend  # noqa: E402
from navigator.triton.deployment import Deployment  # noqa: E402
from tests.twin_loader import twin_loader  # noqa: E402, F401  (the fixture)

IO = IOSpec((TensorSpec("x", "float32", (None, 4)),), (TensorSpec("y", "float32", (None, 4)),))


class MakesTensors(torch.nn.Module):
    """Positions without a device (CPU by default) and zeros on the input's device: both are baked into
    the captured graph as the capture's device."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(x.shape[1]).to(x.dtype)
        return self.lin(x) + pos + torch.zeros(x.shape[0], 4, device=x.device)


def _files(tmp_path: Path) -> dict[str, Path]:
    x = torch.randn(3, 4)
    program = torch.export.export(MakesTensors().eval(), (x,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, str(tmp_path / "m.pt2"))
    torch.jit.save(torch.jit.trace(MakesTensors().eval(), (x,)), str(tmp_path / "m.pt"))
    return {"exported": tmp_path / "m.pt2", "torchscript": tmp_path / "m.pt"}


@pytest.mark.parametrize("kind", ["exported", "torchscript"])
def test_a_file_source_moves_with_its_graph(kind: str, tmp_path: Path) -> None:
    source = load_source(_files(tmp_path)[kind], input_spec="x:float32:-1x4")
    assert source.kind == kind
    # what moving the weights alone gives: `.to()` on the program's module, map_location on the TorchScript
    naive = (torch.export.load(str(source.file)).module().to("meta") if kind == "exported"
             else torch.jit.load(str(source.file), map_location="meta"))
    with pytest.raises(RuntimeError):
        naive(torch.randn(2, 4, device="meta"))
    moved = _torch_gpu.on_device(source, "meta")
    assert moved(torch.randn(2, 4, device="meta")).device.type == "meta"
    # the source stays where it was: the reference still runs on the CPU
    assert source.reference({"x": torch.randn(2, 4).numpy()})[0].shape == (2, 4)


@pytest.mark.parametrize("kind", ["exported", "torchscript"])
def test_the_python_backend_twin_moves_the_graph_too(kind: str, tmp_path: Path, twin_loader) -> None:  # noqa: ANN001, F811
    """The runtimes copy a written twin ships loads the file with its graph's devices rewritten."""
    file = _files(tmp_path)[kind]
    twin = python_backend.model(file, python_backend.spec_file("torch", "cuda", {"precision": "fp32"}))
    model_dir = Deployment("m", IO, twin, ServingConfig(8)).write(tmp_path / "repo")
    twin_loader.template(model_dir)
    model = twin_loader.runtime("torch").load_file(model_dir / "1" / file.name, "meta")
    assert model(torch.randn(5, 4, device="meta")).shape == (5, 4)


def test_the_twin_unpickles_only_what_its_spec_allows(tmp_path: Path) -> None:
    """A torch.save pickle is loaded only where the deployed trial's source was one (eager, --trust-pickle)."""
    from navigator.runtimes import torch as rt_torch

    torch.save(MakesTensors().eval(), tmp_path / "pickled.pt")
    with pytest.raises(ValueError, match="unpickling it was not allowed"):
        rt_torch.load_file(tmp_path / "pickled.pt", "cpu")
    assert rt_torch.load_file(tmp_path / "pickled.pt", "cpu", unpickle=True)(torch.randn(2, 4)).shape == (2, 4)
    files = _files(tmp_path)
    assert rt_torch.is_pickle(tmp_path / "pickled.pt")
    assert not rt_torch.is_pickle(files["torchscript"]) and not rt_torch.is_pickle(files["exported"])


def test_every_torch_gpu_path_moves_the_source_through_on_device(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    source = load_source(_files(tmp_path)["exported"])
    calls = []

    class Moved(Exception):
        pass

    def on_device(src, device):  # noqa: ANN001, ANN202
        calls.append((src, device))
        raise Moved

    monkeypatch.setattr(_torch_gpu, "on_device", on_device)
    monkeypatch.setattr(torch_tensorrt, "_compile_parameters", lambda: set())
    monkeypatch.setattr(torch_tensorrt, "require", lambda name: torch)
    params = {"precision": "fp16", "mode": "default", "optimization_level": 3, "workspace_size": 1}
    for call in (lambda: torch_cuda.load(None, source, params), lambda: torch_compile.load(None, source, params),
                 lambda: torch_tensorrt._compile(source, params, Target.of(source, "cuda"), tmp_path / "t", tmp_path)):
        with pytest.raises(Moved):
            call()
    assert calls == [(source, "cuda")] * 3


def test_only_a_pickled_source_is_deployed_for_unpickling(tmp_path: Path) -> None:
    """eager's twin spec allows unpickling only where the saved file is the user's own torch.save pickle."""
    from navigator.paths import eager
    from navigator.records import Artifact

    torch.save(MakesTensors().eval(), tmp_path / "model.pt")
    files = {**_files(tmp_path), "pickled": tmp_path / "model.pt"}
    for kind, expected in (("pickled", True), ("exported", False), ("torchscript", False)):
        model = eager.triton(Artifact("eager", tmp_path, "k", {}, files[kind]), {"threads": 1}, TritonTarget())
        assert python_backend.read_spec(model.files["twin.json"])["unpickle"] is expected, kind

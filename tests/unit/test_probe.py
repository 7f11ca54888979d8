"""The import-free build facts the paths' available() reads (navigator/paths/_probe.py), on fake
package directories: a CUDA or CPU wheel of torch, onnxruntime with or without GPU providers,
TensorFlow's build_info."""

from __future__ import annotations

import pytest

from navigator.paths import _probe


@pytest.fixture
def package(tmp_path, monkeypatch):
    monkeypatch.setattr(_probe, "package_dir", lambda name: tmp_path / name)
    return tmp_path


@pytest.mark.parametrize("line, cuda", [("cuda: Optional[str] = '12.4'", True), ("cuda = \"11.8\"", True),
                                        ("cuda: Optional[str] = None", False), ("", False)])
def test_torch_cuda_build_from_version_py(package, line, cuda):
    (package / "torch").mkdir()
    (package / "torch" / "version.py").write_text(f"__version__ = '2.5.0'\ndebug = False\n{line}\nhip = None\n")
    assert _probe.torch_has_cuda() is cuda


def test_ort_providers_from_the_shipped_libraries(package):
    capi = package / "onnxruntime" / "capi"
    capi.mkdir(parents=True)
    (capi / "libonnxruntime_providers_shared.so").write_bytes(b"")
    assert _probe.ort_providers() == set()
    (capi / "libonnxruntime_providers_cuda.so").write_bytes(b"")
    assert _probe.ort_providers() == {"CUDAExecutionProvider"}


def test_tf_build_info_is_read_not_imported(package):
    folder = package / "tensorflow" / "python" / "platform"
    folder.mkdir(parents=True)
    (folder / "build_info.py").write_text(
        "import collections\n\nbuild_info = collections.OrderedDict([('is_cuda_build', True), "
        "('is_tensorrt_build', True), ('cuda_version', '12.3')])\n")
    assert _probe.tf_build() == {"is_cuda_build": True, "is_tensorrt_build": True, "cuda_version": "12.3"}
    (folder / "build_info.py").write_text("build_info = compute()\n")
    assert _probe.tf_build() == {}


def test_no_package_no_facts(monkeypatch):
    monkeypatch.setattr(_probe, "package_dir", lambda name: None)
    assert not _probe.torch_has_cuda() and _probe.ort_providers() == set() and _probe.tf_build() == {}

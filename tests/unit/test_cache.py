"""navigator/cache.py: build once then hit, failures remembered, keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from navigator.cache import Cache
from navigator.errors import TrialError


class Builder:
    """A build callback that counts its calls and writes one file."""

    def __init__(self, content: str = "model", error: BaseException | None = None) -> None:
        self.calls = 0
        self.content = content
        self.error = error

    def __call__(self, out: Path) -> None:
        self.calls += 1
        (out / "model.bin").write_text(self.content)
        if self.error is not None:
            raise self.error


@pytest.fixture
def cache(tmp_path):
    return Cache(tmp_path / "cache", "fingerprint-a")


def test_get_builds_once_then_hits(cache):
    build = Builder()
    first = cache.get("onnx", {"opset": 18}, build)
    assert (first / "model.bin").read_text() == "model"
    assert (cache.hits, cache.misses, build.calls) == (0, 1, 1)
    second = cache.get("onnx", {"opset": 18}, build)
    assert second == first
    assert (cache.hits, cache.misses, build.calls) == (1, 1, 1)


def test_entry_is_named_by_key_and_records_params(cache):
    d = cache.get("onnx", {"opset": 18}, Builder())
    assert d.name == cache.key("onnx", {"opset": 18})
    assert d.name.startswith("onnx-")
    assert '"opset": 18' in (d / "params.json").read_text()


def test_no_temporary_directories_left(cache):
    cache.get("onnx", {"opset": 18}, Builder())
    assert [p.name for p in cache.root.iterdir()] == [cache.key("onnx", {"opset": 18})]


def test_a_new_cache_object_reuses_entries_on_disk(tmp_path):
    build = Builder()
    Cache(tmp_path, "fp").get("onnx", {"opset": 18}, build)
    again = Cache(tmp_path, "fp")
    again.get("onnx", {"opset": 18}, build)
    assert build.calls == 1
    assert (again.hits, again.misses) == (1, 0)


def test_different_params_or_steps_get_different_dirs(cache):
    a = cache.get("onnx", {"opset": 18}, Builder("a"))
    b = cache.get("onnx", {"opset": 17}, Builder("b"))
    c = cache.get("openvino", {"opset": 18}, Builder("c"))
    assert len({a, b, c}) == 3
    assert [(d / "model.bin").read_text() for d in (a, b, c)] == ["a", "b", "c"]
    assert cache.misses == 3 and cache.hits == 0


def test_key_is_independent_of_param_order(cache):
    assert cache.key("s", {"a": 1, "b": 2}) == cache.key("s", {"b": 2, "a": 1})
    assert cache.key("s", {"a": 1}) != cache.key("s", {"a": True})


def test_key_changes_with_fingerprint(tmp_path):
    a, b = Cache(tmp_path, "fingerprint-a"), Cache(tmp_path, "fingerprint-b")
    assert a.key("onnx", {"opset": 18}) != b.key("onnx", {"opset": 18})
    assert a.key("onnx", {"opset": 18}) == Cache(tmp_path, "fingerprint-a").key("onnx", {"opset": 18})
    # so another source never reuses an entry
    build = Builder()
    a.get("onnx", {"opset": 18}, build)
    b.get("onnx", {"opset": 18}, build)
    assert build.calls == 2


def test_key_changes_with_library_versions(tmp_path):
    a = Cache(tmp_path, "fp")
    b = Cache(tmp_path, "fp")
    b._versions = {**b._versions, "onnxruntime": "0.0.1-other"}
    assert a.key("onnx", {}) != b.key("onnx", {})


@pytest.mark.parametrize("library", ["onnxruntime-gpu", "torchao", "nncf", "tensorrt", "torch-tensorrt"])
def test_the_key_covers_the_libraries_a_conversion_runs_on_gpus_and_in_quantizers(tmp_path, monkeypatch, library):
    import importlib.metadata

    from navigator import env

    before = Cache(tmp_path, "fp").key("onnx", {})
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "9.9.9" if name == library else real(name))
    assert env.versions()[library] == "9.9.9"
    assert Cache(tmp_path, "fp").key("onnx", {}) != before


def test_failed_build_leaves_no_directory_and_is_remembered(cache):
    build = Builder(error=RuntimeError("exporter exploded\nlong traceback line"))
    with pytest.raises(RuntimeError, match="exporter exploded"):
        cache.get("onnx", {"opset": 20}, build)
    assert build.calls == 1
    key = cache.key("onnx", {"opset": 20})
    assert not (cache.root / key).exists()
    assert not any(p.is_dir() for p in cache.root.iterdir()), list(cache.root.iterdir())
    marker = cache.root / f"{key}.failed"
    assert marker.read_text().strip() == "RuntimeError: exporter exploded"
    assert (cache.hits, cache.misses) == (0, 1)

    with pytest.raises(TrialError, match="exporter exploded"):
        cache.get("onnx", {"opset": 20}, build)
    assert build.calls == 1  # not attempted again
    assert (cache.hits, cache.misses) == (1, 1)


def test_failure_is_per_key(cache):
    with pytest.raises(ValueError):
        cache.get("onnx", {"opset": 20}, Builder(error=ValueError("bad opset")))
    ok = Builder()
    d = cache.get("onnx", {"opset": 18}, ok)
    assert ok.calls == 1 and d.is_dir()


def test_failure_is_per_fingerprint(tmp_path):
    with pytest.raises(ValueError):
        Cache(tmp_path, "fp-a").get("onnx", {}, Builder(error=ValueError("no")))
    build = Builder()
    Cache(tmp_path, "fp-b").get("onnx", {}, build)
    assert build.calls == 1


def test_failed_build_with_oserror_is_remembered_too(cache):
    build = Builder(error=FileNotFoundError("missing tool"))
    with pytest.raises(FileNotFoundError):
        cache.get("x", {}, build)
    with pytest.raises(TrialError, match="FileNotFoundError"):
        cache.get("x", {}, build)
    assert build.calls == 1
    assert not any(p.is_dir() for p in cache.root.iterdir())


def test_interrupted_build_is_not_remembered_as_a_failure(cache):
    """Ctrl-C during a conversion must not poison the entry: the next run builds it again."""
    with pytest.raises(KeyboardInterrupt):
        cache.get("x", {}, Builder(error=KeyboardInterrupt()))
    assert not list(cache.root.iterdir())
    build = Builder()
    assert cache.get("x", {}, build).is_dir()
    assert build.calls == 1

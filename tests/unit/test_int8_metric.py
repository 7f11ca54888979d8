"""benchmarks/int8_metric.py under navigator's --metric contract: loaded from its file, carried to the
trial worker by value (its data file's path with it, read there), top-1 agreement with the source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from navigator.errors import InputError
from navigator.source import metric as metric_mod

METRIC = Path(__file__).resolve().parents[2] / "benchmarks" / "int8_metric.py"
W = np.random.default_rng(1).standard_normal((8, 4)).astype(np.float32)


def _data(path: Path, rows: int = 256) -> np.ndarray:
    x = np.random.default_rng(0).standard_normal((rows, 8)).astype(np.float32)
    np.savez(path, x=x, reference_top1=(x @ W).argmax(1))
    return x


def test_the_metric_is_top1_agreement_and_reaches_the_worker_with_its_data(tmp_path, monkeypatch) -> None:
    pytest.importorskip("cloudpickle")
    x = _data(tmp_path / "metric.npz")
    monkeypatch.setenv("INT8_METRIC_DATA", str(tmp_path / "metric.npz"))
    metric = metric_mod.load(f"{METRIC}:top1_agreement", trust=True)
    carried = metric_mod.restore(str(metric_mod.save(metric, tmp_path / "source")))
    monkeypatch.delenv("INT8_METRIC_DATA")  # the worker reads the path the parent saw

    def exact(feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [feed["x"] @ W]

    flipped = set(range(0, 256, 64))  # 4 of 256 rows answer another class

    def lossy(feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        out = feed["x"] @ W
        start = int(np.flatnonzero((x == feed["x"][0]).all(1))[0])
        for i in range(len(out)):
            if start + i in flipped:
                out[i] = np.roll(out[i], 1)
        return [out]

    assert metric_mod.evaluate(carried, exact) == 1.0
    assert metric_mod.evaluate(carried, lossy) == pytest.approx(252 / 256)


def test_fewer_than_256_rows_is_the_metrics_error(tmp_path, monkeypatch) -> None:
    _data(tmp_path / "small.npz", rows=64)
    monkeypatch.setenv("INT8_METRIC_DATA", str(tmp_path / "small.npz"))
    metric = metric_mod.load(f"{METRIC}:top1_agreement", trust=True)
    with pytest.raises(InputError, match="fewer than 256 rows"):
        metric_mod.evaluate(metric, lambda feed: [feed["x"] @ W])

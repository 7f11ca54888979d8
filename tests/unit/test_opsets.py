"""The ONNX opsets a search offers are those the installed converter accepts (tf2onnx stops at 18)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from navigator import paths
from navigator.lazy import installed
from navigator.records import ParamSpec
from tests.conftest import ROOT


def test_opset_choices_above_the_converter_are_dropped(monkeypatch):
    from navigator.paths import _onnx_export

    monkeypatch.setattr(_onnx_export, "max_opset", lambda framework: {"tf": 18, "torch": 20}.get(framework))
    spec = ParamSpec("opset", "convert", (18, 17, 20), sources=("torch", "tf"))
    assert paths._opsets(spec, "tf").choices == (18, 17)
    assert paths._opsets(spec, "torch").choices == (18, 17, 20)
    assert paths._opsets(spec, "onnx") is spec  # an ONNX source is not converted
    assert paths._opsets(ParamSpec("opset", "convert", (21,), sources=("tf",)), "tf").choices == (18,)


@pytest.mark.skipif(not installed("tf2onnx"), reason="tf2onnx is not installed")
def test_a_tensorflow_search_never_offers_an_opset_tf2onnx_rejects():
    # In a subprocess: a test process that imports TensorFlow must not import torch, and the reverse.
    code = ("import tf2onnx.constants as c; from navigator import paths; "
            "print(max(c.OPSET_TO_IR_VERSION), *[p.choices for p in paths.space('ort_cpu', 'tf').params "
            "if p.name == 'opset'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    highest, choices = proc.stdout.strip().splitlines()[-1].split(" ", 1)
    offered = [int(c) for c in choices.strip("()").split(",") if c.strip()]
    assert offered and max(offered) <= int(highest)

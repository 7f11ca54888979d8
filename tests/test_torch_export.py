"""PyTorch export and tracing: dynamic axes besides batch, dict output names, data-dependent control
flow, the default TorchScript trial on a CNN, and exporter errors (models built here, trials in-process)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from navigator import paths  # noqa: E402
from navigator.paths.base import Target, TritonTarget  # noqa: E402
from navigator.records import TrialConfig  # noqa: E402
from navigator.search import space as space_mod  # noqa: E402
from navigator.settings import StudySettings  # noqa: E402
from navigator.source import load_source  # noqa: E402
from navigator.cache import Cache  # noqa: E402
from navigator.trial.run import TrialContext, run_trial  # noqa: E402
from navigator.triton.config import build as build_config  # noqa: E402


class Recurrent(torch.nn.Module):
    """Token ids [B, T] -> {"states": [B, T, 6], "last": [B, 6]}."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(10, 8)
        self.gru = torch.nn.GRU(8, 6, batch_first=True)

    def forward(self, ids):
        states, last = self.gru(self.embed(ids))
        return {"states": states, "last": last[0]}


class Tokens(Recurrent):
    """Like Recurrent without the GRU, which torch.export unrolls at the sample's length."""

    def forward(self, ids):
        states = torch.cumsum(self.embed(ids), 1)[..., :6]
        return {"states": states, "last": states[:, -1]}


class Branchy(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)

    def forward(self, x):
        if x.sum() > 0:
            return self.lin(x) * 2
        return -self.lin(x)


class SmallCNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(torch.relu(self.bn(self.conv(x)))), 1))


class Cumulative(torch.nn.Module):
    def forward(self, x):
        return torch.cummax(x, 1)[0]


def _trial(source, tmp_path: Path, path: str, convert: dict, batch: int = 2, **settings):
    ctx = TrialContext(source, Cache(tmp_path / "cache", source.fingerprint),
                       StudySettings(window_s=0.01, **settings))
    runtime = {"threads": 1} if path in ("eager", "torchscript") else {"intra_op_num_threads": 1}
    return run_trial(ctx, TrialConfig(0, path, convert, runtime, batch))


def _onnx_dims(outcome_dir: Path) -> dict[str, list]:
    import onnx

    graph = onnx.load(str(next(outcome_dir.rglob("model.onnx")))).graph
    return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in [*graph.input, *graph.output]}


def _ids(length: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 10, (2, length)).astype(np.int64)


# 1. dynamic axes besides batch ------------------------------------------------------------------

@pytest.fixture(scope="module")
def recurrent_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("recurrent")
    model = Recurrent().eval()
    ids = torch.from_numpy(_ids(16))
    scripted = d / "recurrent.pt"
    torch.jit.save(torch.jit.script(model), str(scripted))
    program = d / "tokens.pt2"
    torch.export.save(torch.export.export(Tokens().eval(), (ids,), dynamic_shapes=({0: torch.export.Dim("batch"),
                                                                          1: torch.export.Dim("T")},)), str(program))
    onnx_file = d / "recurrent.onnx"
    torch.onnx.export(model, (ids,), str(onnx_file), input_names=["ids"], output_names=["states", "last"],
                      dynamic_axes={"ids": {0: "batch", 1: "T"}, "states": {0: "batch", 1: "T"}, "last": {0: "batch"}},
                      dynamo=False)
    return {"torchscript": scripted, "exported": program, "onnx": onnx_file}


def test_torchscript_source_with_dynamic_length_exports_it_dynamic(recurrent_files, tmp_path):
    source = load_source(recurrent_files["torchscript"], input_spec="ids:int64:-1x-1")
    assert [(t.name, t.shape) for t in source.io.outputs] == [("states", (None, None, 6)), ("last", (None, 6))]
    outcome = _trial(source, tmp_path, "ort_cpu", {"exporter": "torchscript", "opset": 18})
    assert outcome.status in ("ok", "unstable"), outcome.error
    dims = _onnx_dims(tmp_path / "cache")
    assert isinstance(dims["ids"][1], str) and isinstance(dims["states"][1], str)
    config = build_config("m", source.io, paths.get("ort_cpu").triton(
        paths.get("ort_cpu").convert(source, {"exporter": "torchscript", "opset": 18},
                                     Cache(tmp_path / "cache", source.fingerprint), Target()), {}, TritonTarget()), 8)
    assert [list(i.dims) for i in config.input] == [[-1]] and [o.name for o in config.output] == ["states", "last"]
    assert [list(o.dims) for o in config.output] == [[-1, 6], [6]]


def test_exported_program_with_dim_on_length_keeps_it_dynamic(recurrent_files, tmp_path):
    source = load_source(recurrent_files["exported"])
    assert source.io.inputs[0].shape == (None, None)
    assert [(t.name, t.shape) for t in source.io.outputs] == [("states", (None, None, 6)), ("last", (None, 6))]
    outcome = _trial(source, tmp_path, "ort_cpu", {"exporter": "dynamo", "opset": 18})
    assert outcome.status in ("ok", "unstable"), outcome.error
    assert isinstance(_onnx_dims(tmp_path / "cache")["ids"][1], str)


def test_onnx_source_with_dim_param_validates_another_length(recurrent_files, tmp_path):
    source = load_source(recurrent_files["onnx"])
    assert source.io.inputs[0].shape == (None, None)
    outcome = _trial(source, tmp_path, "ort_cpu", {})
    assert outcome.status in ("ok", "unstable"), outcome.error


def test_an_artifact_with_the_length_fixed_fails_with_the_reason(tmp_path):
    """The dynamo exporter cannot keep a GRU's length dynamic (torch.export unrolls it): the trial
    fails naming the axis, instead of a config that declares -1 over a model fixed at 16."""
    source = load_source(Recurrent().eval(), sample_inputs=torch.from_numpy(_ids(16)), input_spec="ids:int64:-1x-1")
    outcome = _trial(source, tmp_path, "ort_cpu", {"exporter": "dynamo", "opset": 18})
    assert outcome.status == "failed"
    assert "ids_axis1" in outcome.error and "16" in outcome.error


def test_a_trace_fixed_at_the_sample_length_fails_on_another_length(tmp_path):
    """Position ids made from a Python int: the trace fixes them at the sample's 16; validation at
    another length finds it, the config would have declared -1."""

    class Positions(Recurrent):
        def forward(self, ids):
            positions = torch.arange(int(ids.shape[1]))
            return self.embed(ids) + self.embed(positions % 10)

    source = load_source(Positions().eval(), sample_inputs=torch.from_numpy(_ids(16)), input_spec="ids:int64:-1x-1")
    outcome = _trial(source, tmp_path, "torchscript", {"method": "trace", "freeze": True}, allow_traced=True)
    assert outcome.status == "failed" and "ids axis 1 of size 19" in outcome.error, outcome.error


def test_check_dims_rejects_an_onnx_graph_fixed_where_the_config_is_dynamic(tmp_path):
    from navigator.errors import TrialError
    from navigator.paths._onnx_export import check_dims
    import onnx

    model = Recurrent().eval()
    fixed = tmp_path / "fixed.onnx"
    torch.onnx.export(model, (torch.from_numpy(_ids(16)),), str(fixed), input_names=["ids"],
                      output_names=["states", "last"], dynamo=False)
    source = load_source(model, sample_inputs=torch.from_numpy(_ids(16)), input_spec="ids:int64:-1x-1")
    with pytest.raises(TrialError, match="fixes axis 0 at 2, the config declares dynamic"):
        check_dims(onnx.load(str(fixed)), source.io)


def test_a_declared_dynamic_axis_the_model_cannot_take_is_an_input_error():
    from navigator.errors import InputError

    with pytest.raises(InputError, match="input axis 1 of size 19"):
        load_source(torch.nn.Linear(16, 2).eval(), sample_inputs=torch.randn(2, 16), input_spec="input:float32:-1x-1")


# 2. dict outputs keep their names ---------------------------------------------------------------

@pytest.mark.parametrize("path, convert", [("eager", {}), ("torchscript", {"freeze": True}),
                                           ("ort_cpu", {"opset": 18})])
def test_dict_outputs_keep_their_names_from_a_torchscript_source(recurrent_files, tmp_path, path, convert):
    source = load_source(recurrent_files["torchscript"], input_spec="ids:int64:-1x-1")
    assert [t.name for t in source.io.outputs] == ["states", "last"]
    outcome = _trial(source, tmp_path, path, convert)
    assert outcome.status in ("ok", "unstable"), outcome.error
    assert [c.name for c in outcome.validation.outputs] == ["states", "last"]
    if path == "ort_cpu":
        assert list(_onnx_dims(tmp_path / "cache"))[1:] == ["states", "last"]


def test_dict_outputs_keep_their_names_through_both_exporters_of_a_module(tmp_path):
    source = load_source(Recurrent().eval(), sample_inputs=torch.from_numpy(_ids(16)))
    assert [t.name for t in source.io.outputs] == ["states", "last"]
    for exporter in ("dynamo", "torchscript"):
        outcome = _trial(source, tmp_path / exporter, "ort_cpu", {"exporter": exporter, "opset": 18})
        assert outcome.status in ("ok", "unstable"), outcome.error
        assert list(_onnx_dims(tmp_path / exporter / "cache"))[1:] == ["states", "last"]


def test_output_names_from_dicts_namedtuples_and_tuples():
    from collections import namedtuple

    from navigator.source.torch import output_names

    pair = namedtuple("Pair", "mean var")
    t = torch.zeros(1)
    assert output_names({"logits": t, "aux": (t, t)}) == ["logits", "aux.0", "aux.1"]
    assert output_names(pair(t, t)) == ["mean", "var"]
    assert output_names((t, t)) == ["output__0", "output__1"]
    assert output_names(t) == ["output__0"]


# 3. data-dependent control flow -----------------------------------------------------------------

def _branchy_source():
    torch.manual_seed(0)
    x = torch.rand(4, 4) + 0.1  # every sample takes the `x.sum() > 0` branch
    return load_source(Branchy().eval(), sample_inputs=x)


def test_a_trace_of_data_dependent_control_flow_is_invalid_on_perturbed_inputs(tmp_path):
    outcome = _trial(_branchy_source(), tmp_path, "torchscript", {"method": "trace", "freeze": True},
                     allow_traced=True)
    assert outcome.status == "invalid"
    assert outcome.error.startswith("on perturbed inputs:")


def test_traced_artifacts_are_not_eligible_when_tracing_warns(tmp_path):
    from navigator.trial import traced

    source = _branchy_source()
    outcome = _trial(source, tmp_path, "ort_cpu", {"exporter": "torchscript", "opset": 18})
    assert outcome.status == "invalid" and traced.REASON in outcome.error, outcome.error
    evidence = traced.evidence(source, Cache(tmp_path / "cache", source.fingerprint))
    assert "TracerWarning at test_torch_export.py" in evidence and "torch.export" in evidence
    assert "1 traced trial(s) not eligible" in traced.note([outcome])
    dynamo = _trial(source, tmp_path / "dynamo", "ort_cpu", {"exporter": "dynamo", "opset": 18})
    assert dynamo.status == "failed" and "control flow depends on input values" in dynamo.error, dynamo.error
    script = _trial(source, tmp_path / "script", "torchscript", {"method": "script", "freeze": True})
    assert script.status in ("ok", "unstable"), script.error


def test_tracing_evidence_alone_sets_a_traced_artifact_aside(tmp_path):
    """A model whose perturbed inputs take the same branch: only the tracer's warning tells."""

    class Positive(torch.nn.Module):
        def forward(self, x):
            if bool((x * x).sum() > 0):
                return x * 2
            return x

    source = load_source(Positive().eval(), sample_inputs=torch.randn(2, 3))
    outcome = _trial(source, tmp_path, "torchscript", {"method": "trace", "freeze": True})
    from navigator.trial import traced

    assert outcome.status == "invalid" and outcome.error.startswith(traced.REASON), outcome.error
    allowed = _trial(source, tmp_path / "allowed", "torchscript", {"method": "trace", "freeze": True},
                     allow_traced=True)
    assert allowed.status in ("ok", "unstable"), allowed.error


# 4. the default TorchScript trial on a CNN ------------------------------------------------------

def test_default_torchscript_trial_works_on_a_cnn(tmp_path):
    source = load_source(SmallCNN().eval(), sample_inputs=torch.randn(2, 3, 16, 16))
    defaults = space_mod.defaults(paths.space("torchscript"), ("torch", "module"), {})
    convert = {k.split(".", 1)[1]: v for k, v in defaults.items() if not k.endswith(".threads")}
    outcome = _trial(source, tmp_path, "torchscript", convert)
    assert outcome.status in ("ok", "unstable"), (convert, outcome.error)
    ofi = _trial(source, tmp_path / "ofi", "torchscript", {**convert, "optimize_for_inference": True})
    assert ofi.status in ("ok", "unstable") or "does not load back" in ofi.error, ofi.error


# 5. opsets and exporter errors ------------------------------------------------------------------

def test_opsets_offered_are_those_the_converters_take():
    from navigator.paths._onnx_export import max_opset

    for framework in ("torch",):
        opset = next(p for p in paths.space("ort_cpu", framework).params if p.name == "opset")
        assert opset.choices and max(int(c) for c in opset.choices) <= max_opset(framework)


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_exporter_errors_name_the_operator_without_colours(tmp_path, exporter):
    source = load_source(Cumulative().eval(), sample_inputs=torch.randn(2, 5))
    outcome = _trial(source, tmp_path, "ort_cpu", {"exporter": exporter, "opset": 18})
    assert outcome.status == "failed"
    assert "\x1b" not in outcome.error
    assert f"the {exporter} exporter cannot handle operator" in outcome.error and "cummax" in outcome.error


def test_another_length_stays_within_the_declared_range(tmp_path):
    from navigator.source.iospec import shape_variants

    dims = ({0: torch.export.Dim("batch"), 1: torch.export.Dim("T", min=4, max=18)},)
    program = tmp_path / "bounded.pt2"
    torch.export.save(torch.export.export(Tokens().eval(), (torch.from_numpy(_ids(16)),), dynamic_shapes=dims),
                      str(program))
    source = load_source(program)
    assert source.bounds[("ids", 1)] == (4, 18)
    [(label, data)] = shape_variants(source.io.inputs, source.samples, source.bounds)
    assert label == "ids axis 1 of size 13" and data["ids"].shape[1] == 13
    outcome = _trial(source, tmp_path, "ort_cpu", {"exporter": "dynamo", "opset": 18})
    assert outcome.status in ("ok", "unstable"), outcome.error

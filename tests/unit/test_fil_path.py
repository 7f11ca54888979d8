"""The fil path (nvForest, FIL's engine, on the CPU): where navigator[fil] is installed, it reproduces
the libraries' outputs for every layout and writes the measured FIL parameters into the config."""

from __future__ import annotations

import pytest

from navigator import paths
from navigator.paths.base import Target, TritonTarget
from navigator.cache import Cache
from navigator.source import load_source
from navigator.trial.validate import tolerance, validate
from navigator.triton import config as triton_config


def test_unavailable_without_nvforest_names_the_extra(monkeypatch):
    from navigator.paths import fil

    monkeypatch.setattr(fil, "installed", lambda name: name != "nvforest")
    assert "navigator[fil]" in fil.available()


@pytest.mark.parametrize("name", ["xgb_multiclass.json", "lgb_regression.txt", "gb_binary.pkl"])
@pytest.mark.parametrize("layout", ["depth_first", "breadth_first", "layered"])
def test_fil_reproduces_the_library_and_configures_what_it_measured(tree_models, tmp_path, name, layout):
    pytest.importorskip("nvforest", reason="navigator[fil] (nvForest) is not installed")
    src = load_source(tree_models[name], trust_pickle=True, batch=32)
    module = paths.get("fil")
    params = {"layout": layout, "chunk_size": 4, "threads": 1}
    artifact = module.convert(src, params, Cache(tmp_path, src.fingerprint), Target())
    got = module.load(artifact, src, params)(src.samples)
    v = validate(src.io.outputs, got, src.sample_outputs, *tolerance(module.precision(params)))
    assert v.ok, v.reason
    config = triton_config.build("forest", src.io, module.triton(artifact, params, TritonTarget()), 32)
    p = {k: v.string_value for k, v in config.parameters.items()}
    assert (p["layout"], p["chunk_size"], p["cpu_nthread"]) == (layout, "4", "1")
    assert config.backend == "fil" and config.input[0].name == "input__0"


def test_fil_leaves_the_openmp_thread_count_as_it_found_it(tree_models, tmp_path):
    pytest.importorskip("nvforest", reason="navigator[fil] (nvForest) is not installed")
    from threadpoolctl import ThreadpoolController

    src = load_source(tree_models["xgb_binary.json"], batch=8)
    module = paths.get("fil")
    params = {"layout": "depth_first", "chunk_size": 1, "threads": 1}
    runner = module.load(module.convert(src, params, Cache(tmp_path, src.fingerprint), Target()), src, params)
    libs = ThreadpoolController().select(user_api="openmp").lib_controllers
    for lib in libs:
        lib.set_num_threads(2)
    runner(src.samples)
    runner.prepare(src.samples)()
    assert [lib.get_num_threads() for lib in libs] == [2] * len(libs)  # a later treelite predictor may use 2

"""load_source with user data: one input takes an .npz array of any name, mismatches say what the model
expects and how to pass it, and generated integer inputs carry a warning note."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from navigator.errors import InputError
from navigator.records import TensorSpec
from navigator.source import load_source
from navigator.source.iospec import check_data

torch = pytest.importorskip("torch")


class Two(torch.nn.Module):
    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return x.sum(1) + ids.sum(1).to(x.dtype)


class Embed(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(10, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.emb(ids)


def _script(module: torch.nn.Module, path: Path) -> Path:
    torch.jit.save(torch.jit.script(module), str(path))
    return path


def test_one_input_model_takes_one_array_whatever_its_name(tmp_path: Path) -> None:
    model = _script(torch.nn.Linear(4, 2), tmp_path / "lin.pt")  # forward(input)
    data = tmp_path / "data.npz"
    np.savez(data, features=np.ones((3, 4), np.float32))
    source = load_source(str(model), input_data=data)
    assert [t.name for t in source.io.inputs] == ["input"] and source.samples["input"].shape == (3, 4)


def test_one_input_tree_model_takes_an_array_named_input(tmp_path: Path) -> None:
    xgb = pytest.importorskip("xgboost")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 5)).astype(np.float32)
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(x, label=(x[:, 0] > 0)), num_boost_round=3)
    model = tmp_path / "trees.json"
    booster.save_model(str(model))
    data = tmp_path / "rows.npz"
    np.savez(data, input=x[:8])
    source = load_source(str(model), input_data=data)
    assert list(source.samples) == ["input__0"] and source.samples["input__0"].shape == (8, 5)


def test_name_mismatch_with_several_inputs_lists_the_inputs_and_the_fix(tmp_path: Path) -> None:
    model = _script(Two(), tmp_path / "two.pt")
    data = tmp_path / "data.npz"
    np.savez(data, a=np.ones((2, 4), np.float32), b=np.ones((2, 3), np.int64))
    with pytest.raises(InputError) as info:
        load_source(str(model), input_data=data)
    text = str(info.value)
    assert "['x', 'ids']" in text and "--input-spec x:float32:-1x4,ids:int64:-1x3" in text
    assert "np.savez(path, x=..., ids=...)" in text


def test_check_data_names_dtypes_shapes_and_both_ways_to_pass() -> None:
    inputs = (TensorSpec("x", "float32", (None, 4)), TensorSpec("ids", "int64", (None, 16)))
    with pytest.raises(InputError) as info:
        check_data(inputs, {"input": np.ones((2, 4), np.float32)})
    text = str(info.value)
    assert "the model expects x:float32:-1x4,ids:int64:-1x16" in text
    assert "--input-spec x:float32:-1x4,ids:int64:-1x16" in text and "--input-data" in text


def test_generated_integer_inputs_carry_a_note_and_real_data_none(tmp_path: Path) -> None:
    model = _script(Embed(), tmp_path / "embed.pt")
    source = load_source(str(model), input_spec="ids:int64:-1x8")
    assert len(source.notes) == 1 and "ids" in source.notes[0] and "--input-data" in source.notes[0]
    floats = load_source(str(_script(torch.nn.Linear(4, 2), tmp_path / "lin.pt")), input_spec="input:float32:-1x4")
    assert floats.notes == ()
    data = tmp_path / "ids.npz"
    np.savez(data, ids=np.arange(16, dtype=np.int64).reshape(2, 8) % 10)
    assert load_source(str(model), input_data=data).notes == ()


def test_input_data_that_is_not_an_npz_of_arrays_is_refused(tmp_path: Path) -> None:
    from navigator.source.iospec import load_input_data

    single = tmp_path / "x.npy"
    np.save(single, np.ones((2, 4), np.float32))
    with pytest.raises(InputError, match="not a readable .npz file .*a single array"):
        load_input_data(single)
    archive = tmp_path / "archive.npz"
    import zipfile

    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("x.npy", single.read_bytes())
        zf.writestr("notes.txt", "hello")
    with pytest.raises(InputError, match="other files than .npy arrays: notes.txt"):
        load_input_data(archive)

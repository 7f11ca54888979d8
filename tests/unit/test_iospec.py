"""navigator/source/iospec.py: --input-spec parsing, generated inputs, batch resizing, data checks."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from navigator.errors import InputError
from navigator.records import TensorSpec
from navigator.source.iospec import (
    DYNAMIC_AXIS_SIZE,
    INT_HIGH,
    check_data,
    load_input_data,
    make_inputs,
    parse_input_spec,
    resize_batch,
    specs_from_data,
)


def test_parse_input_spec_good():
    specs = parse_input_spec("x:float32:-1x3x32x32, ids:int64:?x16 ,m:bool:-1")
    assert specs == (
        TensorSpec("x", "float32", (None, 3, 32, 32)),
        TensorSpec("ids", "int64", (None, 16)),
        TensorSpec("m", "bool", (None,)),
    )


def test_parse_input_spec_normalises_dtype_names():
    (spec,) = parse_input_spec("x:f4:2X3")
    assert spec == TensorSpec("x", "float32", (2, 3))
    assert parse_input_spec("y:float:4")[0].dtype == "float64"


@pytest.mark.parametrize(
    "text",
    [
        "",
        " , ",
        "x:float32",  # two parts
        "x:float32:3:4",  # four parts
        "x:floaty:3",  # bad dtype
        "x:float32:3xa",  # bad dim
        "x:float32:",  # empty shape
        "x:float32:3x",  # empty dim
        ":float32:3",  # empty name
        "x:float32:0x3",  # zero dim
        "x:float32:-2x3",  # negative dim other than -1
        "x:float32:3,y:int64",  # a good item does not rescue a bad one
    ],
)
def test_parse_input_spec_bad(text):
    with pytest.raises(InputError):
        parse_input_spec(text)


SPECS = (
    TensorSpec("x", "float32", (None, 3, None)),
    TensorSpec("ids", "int64", (None, 4)),
    TensorSpec("mask", "bool", (None,)),
    TensorSpec("fixed", "float32", (2, 5)),
)


def test_make_inputs_shapes_and_dtypes():
    data = make_inputs(SPECS, batch=5)
    assert list(data) == ["x", "ids", "mask", "fixed"]
    assert data["x"].shape == (5, 3, DYNAMIC_AXIS_SIZE)  # batch on axis 0, DYNAMIC_AXIS_SIZE elsewhere
    assert data["ids"].shape == (5, 4)
    assert data["mask"].shape == (5,)
    assert data["fixed"].shape == (2, 5)  # a fixed first axis is not the batch
    assert data["x"].dtype == np.float32
    assert data["ids"].dtype == np.int64
    assert data["mask"].dtype == np.bool_
    assert data["ids"].min() >= 0 and data["ids"].max() < INT_HIGH
    assert np.isfinite(data["x"]).all()
    assert data["x"].std() > 0  # random, not constant


def test_make_inputs_deterministic_per_seed():
    a, b = make_inputs(SPECS, 4, seed=7), make_inputs(SPECS, 4, seed=7)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    c = make_inputs(SPECS, 4, seed=8)
    assert not np.array_equal(a["x"], c["x"])


def test_make_inputs_dynamic_batch_axis():
    assert make_inputs(SPECS, 1)["x"].shape[0] == 1
    assert make_inputs(SPECS, 32)["ids"].shape == (32, 4)


@pytest.mark.parametrize("dtype", ["complex64", "object", "str"])
def test_make_inputs_refuses_dtypes_it_cannot_generate(dtype):
    with pytest.raises(InputError, match="'z'"):
        make_inputs((TensorSpec("z", dtype, (None, 2)),), 1)


def test_resize_batch_tiles_and_cuts():
    data = {"x": np.arange(6, dtype=np.float32).reshape(3, 2), "ids": np.array([10, 11, 12])}
    grown = resize_batch(data, 7)
    np.testing.assert_array_equal(grown["ids"], [10, 11, 12, 10, 11, 12, 10])
    assert grown["x"].shape == (7, 2)
    np.testing.assert_array_equal(grown["x"][3:6], data["x"])
    assert grown["x"].flags["C_CONTIGUOUS"] and grown["x"].dtype == np.float32
    cut = resize_batch(data, 2)
    np.testing.assert_array_equal(cut["ids"], [10, 11])
    same = resize_batch(data, 3)
    np.testing.assert_array_equal(same["x"], data["x"])


def test_resize_batch_keeps_a_non_contiguous_input_correct():
    base = np.arange(12).reshape(3, 4)[:, ::2]
    out = resize_batch({"a": base}, 4)
    np.testing.assert_array_equal(out["a"], np.concatenate([base, base[:1]]))
    assert out["a"].flags["C_CONTIGUOUS"]


def test_check_data_accepts_matching_data():
    specs = (TensorSpec("x", "float32", (None, 3, None)), TensorSpec("ids", "int64", (None, 4)))
    check_data(specs, {"ids": np.zeros((2, 4), np.int64), "x": np.zeros((2, 3, 9), np.float32)})


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"x": np.zeros((2, 3, 9))}, "ids"),  # missing tensor
        ({"x": np.zeros((2, 3, 9)), "ids": np.zeros((2, 4)), "extra": np.zeros(1)}, "extra"),  # extra tensor
        ({"x": np.zeros((2, 3)), "ids": np.zeros((2, 4))}, "'x'"),  # wrong rank
        ({"x": np.zeros((2, 4, 9)), "ids": np.zeros((2, 4))}, "'x'"),  # fixed dim differs
        ({"x": np.zeros((2, 3, 9), np.float32), "ids": np.zeros((2, 5), np.int64)}, "'ids'"),
        ({"x": np.zeros((2, 3, 9), np.float64), "ids": np.zeros((2, 4), np.int64)}, "dtype float64"),
        ({"x": np.zeros((2, 3, 9, 1)), "ids": np.zeros((2, 4))}, "'x'"),  # extra trailing axis
    ],
)
def test_check_data_mismatches_raise(data, needle):
    specs = (TensorSpec("x", "float32", (None, 3, None)), TensorSpec("ids", "int64", (None, 4)))
    with pytest.raises(InputError, match=needle):
        check_data(specs, data)


def test_specs_from_data_and_load_input_data(tmp_path):
    path = tmp_path / "inputs.npz"
    np.savez(path, x=np.zeros((4, 3, 8), np.float32), ids=np.ones((4, 2), np.int64))
    data = load_input_data(path)
    assert sorted(data) == ["ids", "x"]
    specs = {s.name: s for s in specs_from_data(data)}
    assert specs["x"] == TensorSpec("x", "float32", (None, 3, 8))
    assert specs["ids"] == TensorSpec("ids", "int64", (None, 2))
    check_data(tuple(specs.values()), data)


def test_load_input_data_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_input_data(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_text("not an npz")
    with pytest.raises(InputError):
        load_input_data(bad)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError):  # object arrays need pickle: refused
        load_input_data(pickled)


_BF16_PROBE = """
import sys
from navigator.errors import InputError
from navigator.records import TensorSpec
from navigator.source.iospec import make_inputs
assert "ml_dtypes" not in sys.modules  # numpy knows no 'bfloat16' until ml_dtypes (onnx) registers it
try:
    make_inputs((TensorSpec("x", "bfloat16", (None, 2)),), 1)
    print("no error")
except Exception as exc:
    print(type(exc).__name__)
"""


def test_make_inputs_bfloat16_is_an_input_error_in_a_fresh_process():
    # A fresh interpreter: in this one, another test may have imported onnx, which imports ml_dtypes,
    # which teaches numpy the 'bfloat16' name and hides the bug.
    done = subprocess.run([sys.executable, "-c", _BF16_PROBE], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in ("InputError", "no error")


def test_input_data_with_zero_rows_is_refused(tmp_path):
    path = tmp_path / "empty.npz"
    np.savez(path, x=np.zeros((0, 3), np.float32))
    specs = (TensorSpec("x", "float32", (None, 3)),)
    with pytest.raises(InputError):
        check_data(specs, load_input_data(path))


def test_batches_taken_by_models_without_a_dynamic_batch_axis():
    from navigator.records import IOSpec
    from navigator.source.iospec import batches_taken

    dynamic = IOSpec((TensorSpec("x", "float32", (None, 3)),), ())
    assert batches_taken(dynamic, (1, 2, 4, 8)) == (1, 2, 4, 8)
    fixed = IOSpec((TensorSpec("x", "float32", (1, 3, 8, 8)),), ())
    assert batches_taken(fixed, (1, 2, 4, 8, 16)) == (1,)  # --batch-size 1:16 keeps 1
    with pytest.raises(InputError, match=r"input 'x' has a fixed first dimension 1 .*batch 1 only"):
        batches_taken(fixed, (8,))
    scalar = IOSpec((TensorSpec("n", "int64", ()),), ())
    with pytest.raises(InputError, match=r"input 'n' has no batch dimension"):
        batches_taken(scalar, (2, 4))
    mixed = IOSpec((TensorSpec("x", "float32", (None, 3)), TensorSpec("m", "float32", (4, 3))), ())
    with pytest.raises(InputError, match=r"input 'm' has a fixed first dimension 4"):
        batches_taken(mixed, (4,))


def test_searched_batches_default_to_the_sample_rows_of_a_dynamic_batch_model():
    from navigator.records import IOSpec
    from navigator.source.iospec import searched_batches

    dynamic = IOSpec((TensorSpec("x", "float32", (None, 3)),), ())
    assert searched_batches(dynamic, {"x": np.zeros((8, 3), np.float32)}, None) == (8,)
    assert searched_batches(dynamic, {"x": np.zeros((8, 3), np.float32)}, (2, 4)) == (2, 4)
    fixed = IOSpec((TensorSpec("x", "float32", (4, 3)),), ())
    assert searched_batches(fixed, {"x": np.zeros((4, 3), np.float32)}, None) == (1,)


def test_dynamic_axes_besides_batch_are_grouped_by_size_and_varied_together():
    from navigator.source.iospec import dynamic_groups, perturb, shape_variants

    specs = (TensorSpec("ids", "int64", (None, None)), TensorSpec("mask", "bool", (None, None)),
             TensorSpec("image", "float32", (None, 3, None)))
    data = {"ids": np.arange(32).reshape(2, 16) % 7, "mask": np.ones((2, 16), bool),
            "image": np.random.default_rng(0).standard_normal((2, 3, 5)).astype(np.float32)}
    groups = dynamic_groups(specs, data)
    assert [(g.size, g.axes) for g in groups] == [(16, (("ids", 1), ("mask", 1))), (5, (("image", 2),))]
    variants = shape_variants(specs, data, {("image", 2): (1, 6)})
    assert [label for label, _ in variants] == ["ids axis 1 and mask axis 1 of size 19", "image axis 2 of size 2"]
    longer = variants[0][1]
    assert longer["ids"].shape == (2, 19) and longer["mask"].shape == (2, 19) and longer["image"].shape == (2, 3, 5)
    assert np.array_equal(longer["ids"][:, :16], data["ids"]) and np.array_equal(longer["ids"][:, 16:], data["ids"][:, :3])
    moved = perturb(data)
    assert sorted(moved["ids"].ravel()) == sorted(data["ids"].ravel()) and not np.array_equal(moved["ids"], data["ids"])
    assert moved["image"].dtype == np.float32 and np.corrcoef(moved["image"].ravel(), data["image"].ravel())[0, 1] < -0.9

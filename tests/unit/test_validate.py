"""navigator/trial/validate.py: tolerances and the output comparison."""

from __future__ import annotations

import numpy as np
import pytest

from navigator.errors import TrialError
from navigator.records import TensorSpec
from navigator.trial.validate import TOLERANCES, check_output, tolerance, validate

OUT = (TensorSpec("logits", "float32", (None, 3)),)
TWO = (TensorSpec("logits", "float32", (None, 3)), TensorSpec("probs", "float32", (None, 3)))


def test_tolerance_defaults_per_precision():
    assert tolerance("fp32") == (1e-4, 1e-3)
    assert tolerance("fp16") == (1e-2, 1e-2)
    assert tolerance("bf16") == (5e-2, 5e-2)
    assert tolerance("tf32") == (5e-3, 5e-3)
    # lower precisions are never stricter than fp32
    for name, (atol, rtol) in TOLERANCES.items():
        assert atol >= TOLERANCES["fp32"][0] and rtol >= TOLERANCES["fp32"][1], name


def test_tolerance_overrides():
    assert tolerance("fp32", atol=0.5) == (0.5, 1e-3)
    assert tolerance("bf16", rtol=0.25) == (5e-2, 0.25)
    assert tolerance("fp16", atol=0.0, rtol=0.0) == (0.0, 0.0)  # zero is an override, not "unset"


def test_tolerance_unknown_precision():
    with pytest.raises(TrialError, match="no validation tolerance for precision 'int4'; known: fp32"):
        tolerance("int4")


def test_equal_arrays_pass():
    ref = np.arange(6, dtype=np.float32).reshape(2, 3)
    v = validate(OUT, [ref.copy()], [ref], 1e-4, 1e-3)
    assert v.ok and v.reason == ""
    (check,) = v.outputs
    assert (check.name, check.max_abs, check.max_rel, check.nonfinite, check.ok) == ("logits", 0.0, 0.0, 0, True)
    assert (check.atol, check.rtol) == (1e-4, 1e-3)


def test_max_abs_and_max_rel_hand_computed():
    ref = np.array([[1.0, -2.0, 4.0]])
    got = np.array([[1.5, -2.0, 3.0]])  # abs errors 0.5, 0, 1.0; rel 0.5, 0, 0.25
    check = check_output(OUT[0], got, ref, atol=0.0, rtol=0.6)
    assert check.max_abs == pytest.approx(1.0)
    assert check.max_rel == pytest.approx(0.5)
    # 0.5 <= 0.6*1 and 1.0 <= 0.6*4: within rtol alone
    assert check.ok
    # 0.5 > 0.4*1: beyond
    assert not check_output(OUT[0], got, ref, atol=0.0, rtol=0.4).ok


def test_tolerance_is_atol_plus_rtol_times_reference():
    ref = np.array([[1.0, 0.0, 0.0]])  # RMS below 1: atol applies as given
    # allowed at the first element: 0.1 + 0.01*1 = 0.11; at the zeros: 0.1
    assert validate(OUT, [ref + [[0.105, 0.09, -0.09]]], [ref], 0.1, 0.01).ok
    v = validate(OUT, [ref + [[0.12, 0.0, 0.0]]], [ref], 0.1, 0.01)
    assert not v.ok
    v = validate(OUT, [ref + [[0.0, 0.11, 0.0]]], [ref], 0.1, 0.01)
    assert not v.ok


def test_atol_follows_the_scale_of_the_output():
    ref = np.array([[300.0, 0.0, 0.0]])  # RMS = 300 / sqrt(3) = 173.2: atol 0.01 becomes 1.732
    assert validate(OUT, [ref + [[0.0, 1.7, -1.7]]], [ref], 0.01, 0.0).ok
    assert not validate(OUT, [ref + [[0.0, 1.8, 0.0]]], [ref], 0.01, 0.0).ok


def test_values_beyond_tolerance_fail_naming_the_output():
    ref = np.ones((2, 3), dtype=np.float32)
    got = ref.copy()
    got[1, 2] += 0.5
    v = validate(OUT, [got], [ref], 1e-4, 1e-3)
    assert not v.ok
    assert "logits" in v.reason
    assert "max abs error 0.5" in v.reason
    assert v.outputs[0].max_abs == pytest.approx(0.5)
    assert not v.outputs[0].ok


def test_reason_names_the_first_failing_output():
    ref = np.zeros((1, 3), dtype=np.float32)
    v = validate(TWO, [ref, ref + 1], [ref, ref], 1e-4, 1e-3)
    assert not v.ok
    assert "probs" in v.reason and "logits" not in v.reason
    assert [c.ok for c in v.outputs] == [True, False]


def test_shape_mismatch_fails():
    ref = np.zeros((2, 3), dtype=np.float32)
    v = validate(OUT, [np.zeros((3, 2), dtype=np.float32)], [ref], 1e-4, 1e-3)
    assert not v.ok
    assert "logits" in v.reason and "shape" in v.reason
    assert "(3, 2)" in v.reason and "(2, 3)" in v.reason
    # same element count, different rank
    assert not validate(OUT, [np.zeros(6, dtype=np.float32)], [ref], 1e-4, 1e-3).ok


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_where_reference_is_finite_fails(bad):
    ref = np.ones((1, 3), dtype=np.float32)
    got = ref.copy()
    got[0, 1] = bad
    v = validate(OUT, [got], [ref], 1e3, 1e3)  # huge tolerances: only the non-finite value may fail it
    assert not v.ok
    assert "logits" in v.reason and "NaN/Inf" in v.reason
    assert v.outputs[0].nonfinite == 1


def test_nan_matching_nan_in_reference_passes():
    ref = np.array([[1.0, np.nan, 3.0]], dtype=np.float32)
    v = validate(OUT, [ref.copy()], [ref], 1e-4, 1e-3)
    assert v.ok
    assert v.outputs[0].nonfinite == 0
    assert v.outputs[0].max_abs == 0.0


@pytest.mark.filterwarnings("ignore:invalid value encountered in subtract:RuntimeWarning")  # inf - inf
def test_matching_inf_passes_but_sign_flip_fails():
    ref = np.array([[np.inf, -np.inf, 1.0]])
    assert validate(OUT, [ref.copy()], [ref], 1e-4, 1e-3).ok
    got = np.array([[-np.inf, -np.inf, 1.0]])
    v = validate(OUT, [got], [ref], 1e-4, 1e-3)
    assert not v.ok and v.outputs[0].nonfinite == 1


def test_finite_value_where_reference_is_nan_fails():
    ref = np.array([[np.nan, 1.0, 1.0]])
    got = np.array([[0.0, 1.0, 1.0]])
    v = validate(OUT, [got], [ref], 1e-4, 1e-3)
    assert not v.ok and "logits" in v.reason


def test_wrong_number_of_outputs_fails():
    ref = np.zeros((1, 3), dtype=np.float32)
    v = validate(TWO, [ref], [ref, ref], 1e-4, 1e-3)
    assert not v.ok
    assert "1 outputs" in v.reason and "2" in v.reason
    v = validate(OUT, [ref, ref], [ref], 1e-4, 1e-3)
    assert not v.ok and "2 outputs" in v.reason


def test_bool_and_integer_outputs_compare_exactly():
    spec = TensorSpec("mask", "bool", (None, 3))
    ref = np.array([[True, False, True]])
    assert validate((spec,), [ref.copy()], [ref], 1e-4, 1e-3).ok
    v = validate((spec,), [np.array([[True, True, False]])], [ref], 1e-4, 1e-3)
    assert not v.ok and "mask" in v.reason
    ids = TensorSpec("ids", "int64", (None,))
    assert validate((ids,), [np.array([3, 1])], [np.array([3, 1])], 1e-4, 1e-3).ok
    assert not validate((ids,), [np.array([3, 2])], [np.array([3, 1])], 1e-4, 1e-3).ok


def test_float16_output_is_compared_against_float32_reference():
    ref = np.array([[0.1, 0.2, 0.3]], dtype=np.float32)
    got = ref.astype(np.float16)
    assert validate(OUT, [got], [ref], *tolerance("fp16")).ok
    assert not validate(OUT, [got], [ref], 0.0, 0.0).ok


def test_mask_reasons_name_both_directions_and_the_first_position():
    ref = np.array([[1.0, np.nan, 3.0], [np.inf, 2.0, 2.0]])
    got = np.array([[np.nan, 0.5, 3.0], [np.inf, 2.0, 2.0]])
    v = validate(OUT, [got], [ref], 1e-4, 1e-3)
    assert not v.ok
    assert "NaN/Inf at 1 positions where the source is finite (first at [0, 0])" in v.reason
    assert "another value at 1 positions where the source gives NaN/Inf (first at [0, 1])" in v.reason
    assert v.outputs[0].nonfinite == 2 and v.outputs[0].source_nonfinite == 2


def test_equal_masks_compare_the_finite_values():
    ref = np.array([[np.nan, 1.0, -np.inf]])
    assert validate(OUT, [ref.copy()], [ref], 1e-4, 1e-3).outputs[0].source_nonfinite == 2
    v = validate(OUT, [np.array([[np.nan, 1.5, -np.inf]])], [ref], 1e-4, 1e-3)
    assert not v.ok and "max abs error 0.5" in v.reason


def test_reference_nonfinite_counts_and_first_positions(recwarn):
    from navigator.trial.validate import finite_difference, nonfinite_notes, reference_nonfinite

    ref = np.array([[np.nan, 1.0], [2.0, -np.inf]], dtype=np.float32)
    found = reference_nonfinite(TWO, [ref, np.ones((2, 2), np.float32)])
    assert found == {"logits": {"count": 2, "of": 4, "first": [[0, 0], [1, 1]]}}
    assert "output logits: the source model gives NaN/Inf at 2 of 4 values" in nonfinite_notes(found)[0]
    assert finite_difference(ref, ref) == 0.0 and finite_difference(ref, ref + 1) == 1.0
    assert finite_difference(np.full(3, np.nan), np.full(3, np.nan)) == 0.0
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]

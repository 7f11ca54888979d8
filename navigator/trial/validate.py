"""Numerical validation of a trial's outputs against the source framework on the same inputs."""

from __future__ import annotations

import numpy as np

from navigator.records import OutputCheck, TensorSpec, Validation

# (atol, rtol) by the precision a trial computes in; elementwise
#     |got - ref| <= atol * scale + rtol * |ref|,   scale = max(1, RMS of the reference output)
# so that the absolute part follows the output's own magnitude (a logit of 200 is not held to 1e-2).
TOLERANCES = {
    "fp32": (1e-4, 1e-3),
    "tf32": (5e-3, 5e-3),
    "fp16": (1e-2, 1e-2),
    "bf16": (5e-2, 5e-2),
    # Tree ensembles converted to fp32 thresholds and sums (ONNX-ML, FIL) against a library that keeps
    # float64 (LightGBM, scikit-learn): probabilities in [0, 1] may move by a leaf's worth on a row whose
    # feature lies between a float64 threshold and its float32 rounding. Class labels stay exact.
    "trees": (1e-3, 1e-3),
}


def tolerance(precision: str, atol: float | None = None, rtol: float | None = None) -> tuple[float, float]:
    base_atol, base_rtol = TOLERANCES[precision]
    return (base_atol if atol is None else atol, base_rtol if rtol is None else rtol)


def check_output(spec: TensorSpec, got: np.ndarray, ref: np.ndarray, atol: float, rtol: float) -> OutputCheck:
    """One output: shape, non-finite values the reference does not have, max abs/rel error."""
    if got.shape != ref.shape:
        return OutputCheck(spec.name, float("inf"), float("inf"), atol, rtol, 0, False)
    if got.dtype.kind == "b" or ref.dtype.kind == "b":
        mismatches = int(np.count_nonzero(got != ref))
        return OutputCheck(spec.name, float(mismatches), float(mismatches), atol, rtol, 0, mismatches == 0)
    if got.dtype.kind in "iu" and ref.dtype.kind in "iu":  # class labels, indices: exact agreement
        equal = got == ref
        max_abs = float(np.abs(got.astype(np.float64) - ref.astype(np.float64)).max()) if got.size else 0.0
        agreement = float(equal.mean()) if equal.size else 1.0
        return OutputCheck(spec.name, max_abs, max_abs, 0.0, 0.0, 0, bool(equal.all()), agreement)
    g = got.astype(np.float64)
    r = ref.astype(np.float64)
    finite_ref = np.isfinite(r)
    # A NaN/Inf where the reference is finite (or a different non-finite value) is an error.
    nonfinite = int(np.count_nonzero(~np.isfinite(g) & finite_ref) +
                    np.count_nonzero(~finite_ref & ~((g == r) | (np.isnan(g) & np.isnan(r)))))
    both = finite_ref & np.isfinite(g)
    diff = np.abs(g[both] - r[both])
    scale = max(1.0, float(np.sqrt(np.mean(np.square(r[both]))))) if diff.size else 1.0
    max_abs = float(diff.max()) if diff.size else 0.0
    rel = diff / np.maximum(np.abs(r[both]), np.finfo(np.float32).tiny)
    max_rel = float(rel.max()) if rel.size else 0.0
    within = bool(np.all(diff <= atol * scale + rtol * np.abs(r[both])))
    return OutputCheck(spec.name, max_abs, max_rel, atol, rtol, nonfinite, within and nonfinite == 0)


def validate(outputs: tuple[TensorSpec, ...], got: list[np.ndarray], ref: list[np.ndarray],
             atol: float, rtol: float) -> Validation:
    """All outputs; the reason names the first failing output."""
    if not len(got) == len(ref) == len(outputs):
        return Validation(False, f"{len(got)} outputs, the source model gives {len(ref)} ({len(outputs)} declared)", ())
    checks = tuple(check_output(spec, np.asarray(g), np.asarray(r), atol, rtol)
                   for spec, g, r in zip(outputs, got, ref))
    for c, g, r in zip(checks, got, ref):
        if c.ok:
            continue
        if np.shape(g) != np.shape(r):
            reason = f"output {c.name}: shape {np.shape(g)} != source {np.shape(r)}"
        elif c.agreement is not None:
            reason = f"output {c.name}: {c.agreement:.2%} of the values agree with the source (exact match required)"
        elif c.nonfinite:
            reason = f"output {c.name}: {c.nonfinite} NaN/Inf values the source model does not give"
        else:
            reason = f"output {c.name}: max abs error {c.max_abs:.3g} (rel {c.max_rel:.3g}) beyond atol {c.atol:g} + rtol {c.rtol:g}"
        return Validation(False, reason, checks)
    return Validation(True, "", checks)

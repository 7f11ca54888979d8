"""Numerical validation of a trial's outputs against the source framework on the same inputs."""

from __future__ import annotations

import numpy as np

from navigator.errors import TrialError
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
    # INT8 (weights and activations rounded to 256 levels): outputs that are not class scores are held
    # to bounds ten times fp16's. Class scores are held to AGREEMENT instead.
    "int8": (1e-1, 1e-1),
    # FP8 e4m3 (3 mantissa bits, per-row or per-tensor scales): INT8's bounds and agreement rule; torchao's
    # float8 inference recipe checks its outputs by SQNR against bf16, of the same order as INT8's.
    # The TensorRT paths' FP8 Q/DQ (Model Optimizer, per-tensor activation scales): the same rule; E4M3's
    # relative step is 2^-3 (Micikevicius et al., "FP8 Formats for Deep Learning", arXiv:2209.05433).
    "fp8": (1e-1, 1e-1),
}
# Classifier-like outputs (2-D float, last axis > 1) of these classes are validated by agreement, not
# elementwise: (the share of rows whose top-1 class is the source's, the mean cosine similarity of the
# rows), each at least this. The criteria follow the INT8 tools' (ONNX Runtime's qdq_loss_debug
# compares quantized and float tensors; NNCF's accuracy control and Olive's metrics compare top-1);
# the thresholds are navigator's (README, validation).
AGREEMENT = {"int8": (0.99, 0.99), "fp8": (0.99, 0.99)}


def tolerance(precision: str, atol: float | None = None, rtol: float | None = None) -> tuple[float, float]:
    if precision not in TOLERANCES:
        raise TrialError(f"no validation tolerance for precision {precision!r}; known: {', '.join(TOLERANCES)}")
    base_atol, base_rtol = TOLERANCES[precision]
    return (base_atol if atol is None else atol, base_rtol if rtol is None else rtol)


# How many non-finite positions of an output the report and a failure reason name.
FIRST_POSITIONS = 5


def _same_nonfinite(g: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Where got and reference agree on being non-finite: both NaN, or the same infinity."""
    return ~np.isfinite(r) & ((g == r) | (np.isnan(g) & np.isnan(r)))


def _first(mask: np.ndarray) -> list[list[int]]:
    return [list(map(int, p)) for p in np.argwhere(mask)[:FIRST_POSITIONS]]


def finite_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b| where both are finite (0.0 where none is): NaN/Inf never enter the arithmetic."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    both = np.isfinite(a) & np.isfinite(b)
    return float(np.abs(a[both] - b[both]).max()) if both.any() else 0.0


def reference_nonfinite(outputs: tuple[TensorSpec, ...], reference: list[np.ndarray]) -> dict[str, dict]:
    """Outputs where the source model itself gives NaN/Inf: {name: {count, first positions}}."""
    found = {}
    for spec, ref in zip(outputs, reference):
        ref = np.asarray(ref)
        if ref.dtype.kind in "fc":
            bad = ~np.isfinite(ref)
            if bad.any():
                found[spec.name] = {"count": int(bad.sum()), "of": int(ref.size), "first": _first(bad)}
    return found


def nonfinite_notes(found: dict[str, dict]) -> list[str]:
    """Report lines for reference_nonfinite()."""
    return [f"output {name}: the source model gives NaN/Inf at {info['count']} of {info['of']} values on the "
            f"validation inputs (first at {', '.join(map(str, info['first']))}); every trial must give NaN/Inf at "
            "exactly those positions, and its finite values are compared within tolerance"
            for name, info in found.items()]


def _mask_reason(name: str, g: np.ndarray, r: np.ndarray) -> str:
    """Why the non-finite positions of a float output differ from the source's."""
    g, r = g.astype(np.float64), r.astype(np.float64)
    extra = ~np.isfinite(g) & np.isfinite(r)
    lost = ~np.isfinite(r) & ~_same_nonfinite(g, r)
    parts = []
    if extra.any():
        parts.append(f"NaN/Inf at {int(extra.sum())} positions where the source is finite (first at {_first(extra)[0]})")
    if lost.any():
        parts.append(f"another value at {int(lost.sum())} positions where the source gives NaN/Inf "
                     f"(first at {_first(lost)[0]})")
    return f"output {name}: " + "; ".join(parts)


def classifier_like(ref: np.ndarray) -> bool:
    """Class scores: a 2-D float output (rows, classes) with more than one class."""
    return ref.dtype.kind == "f" and ref.ndim == 2 and ref.shape[1] > 1


def class_agreement(got: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(share of rows with the source's top-1 class, mean cosine similarity of the rows), on finite rows."""
    g, r = got.astype(np.float64), ref.astype(np.float64)
    rows = np.isfinite(g).all(axis=1) & np.isfinite(r).all(axis=1)
    if not rows.any():
        return 1.0, 1.0
    g, r = g[rows], r[rows]
    top1 = float(np.mean(g.argmax(axis=1) == r.argmax(axis=1)))
    norms = np.linalg.norm(g, axis=1) * np.linalg.norm(r, axis=1)
    cosine = np.where(norms > 0, np.sum(g * r, axis=1) / np.maximum(norms, np.finfo(np.float64).tiny),
                      np.all(g == r, axis=1).astype(np.float64))  # two zero rows agree; one does not
    return top1, float(cosine.mean())


def check_output(spec: TensorSpec, got: np.ndarray, ref: np.ndarray, atol: float, rtol: float,
                 classes: tuple[float, float] | None = None) -> OutputCheck:
    """One output: shape, non-finite values the reference does not have, max abs/rel error; with
    `classes` (AGREEMENT's minimum top-1 share and cosine), a classifier-like output is judged by those."""
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
    # The non-finite mask must be the source's: a NaN/Inf where the reference is finite, a finite value (or
    # another non-finite one) where it is NaN/Inf, are errors; only the finite values are compared.
    nonfinite = int(np.count_nonzero(~np.isfinite(g) & finite_ref) +
                    np.count_nonzero(~finite_ref & ~_same_nonfinite(g, r)))
    both = finite_ref & np.isfinite(g)
    diff = np.abs(g[both] - r[both])
    scale = max(1.0, float(np.sqrt(np.mean(np.square(r[both]))))) if diff.size else 1.0
    max_abs = float(diff.max()) if diff.size else 0.0
    rel = diff / np.maximum(np.abs(r[both]), np.finfo(np.float32).tiny)
    max_rel = float(rel.max()) if rel.size else 0.0
    within = bool(np.all(diff <= atol * scale + rtol * np.abs(r[both])))
    source_nonfinite = int(np.count_nonzero(~finite_ref))
    if classes is not None and classifier_like(ref):
        top1, cosine = class_agreement(got, ref)
        ok = top1 >= classes[0] and cosine >= classes[1] and nonfinite == 0
        return OutputCheck(spec.name, max_abs, max_rel, atol, rtol, nonfinite, ok, top1, source_nonfinite, cosine)
    return OutputCheck(spec.name, max_abs, max_rel, atol, rtol, nonfinite, within and nonfinite == 0,
                       source_nonfinite=source_nonfinite)


def validate(outputs: tuple[TensorSpec, ...], got: list[np.ndarray], ref: list[np.ndarray],
             atol: float, rtol: float, classes: tuple[float, float] | None = None) -> Validation:
    """All outputs; the reason names the first failing output. `classes`: check_output's."""
    if not len(got) == len(ref) == len(outputs):
        return Validation(False, f"{len(got)} outputs, the source model gives {len(ref)} ({len(outputs)} declared)", ())
    checks = tuple(check_output(spec, np.asarray(g), np.asarray(r), atol, rtol, classes)
                   for spec, g, r in zip(outputs, got, ref))
    for c, g, r in zip(checks, got, ref):
        if c.ok:
            continue
        if np.shape(g) != np.shape(r):
            reason = f"output {c.name}: shape {np.shape(g)} != source {np.shape(r)}"
        elif c.nonfinite:
            reason = _mask_reason(c.name, np.asarray(g), np.asarray(r))
        elif c.cosine is not None and classes is not None:
            reason = (f"output {c.name}: top-1 class agrees with the source on {c.agreement:.2%} of the rows "
                      f"(at least {classes[0]:.0%} needed), mean cosine similarity {c.cosine:.4f} "
                      f"(at least {classes[1]:g})")
        elif c.agreement is not None:
            reason = f"output {c.name}: {c.agreement:.2%} of the values agree with the source (exact match required)"
        else:
            reason = f"output {c.name}: max abs error {c.max_abs:.3g} (rel {c.max_rel:.3g}) beyond atol {c.atol:g} + rtol {c.rtol:g}"
        return Validation(False, reason, checks)
    return Validation(True, "", checks)

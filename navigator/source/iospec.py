"""IOSpec from --input-spec / --input-data, and sample inputs made from an IOSpec."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from navigator.errors import InputError
from navigator.records import IOSpec, TensorSpec

# Size given to a dynamic axis other than the batch axis when inputs are generated.
DYNAMIC_AXIS_SIZE = 16
# Generated integer inputs (token ids, indices) are drawn from [0, INT_HIGH): small enough for any
# embedding table; pass --input-data for real values.
INT_HIGH = 10
# A dynamic axis other than the batch axis is validated at its sample size and at this much more.
OTHER_SIZE_STEP = 3


def parse_input_spec(text: str) -> tuple[TensorSpec, ...]:
    """'x:float32:-1x3x32x32,ids:int64:-1x16' -> TensorSpecs (-1 or ? marks a dynamic axis)."""
    specs = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        parts = item.split(":")
        if len(parts) != 3:
            raise InputError(f"--input-spec item {item!r} is not name:dtype:shape (e.g. x:float32:-1x3x224x224)")
        name, dtype, shape = parts
        try:
            np.dtype(dtype)
            dims = tuple(None if d in ("-1", "?") else int(d) for d in shape.lower().split("x"))
        except (TypeError, ValueError):
            raise InputError(f"--input-spec item {item!r}: bad dtype or shape") from None
        if not name or any(d is not None and d < 1 for d in dims):
            raise InputError(f"--input-spec item {item!r}: empty name or a dimension below 1")
        specs.append(TensorSpec(name, np.dtype(dtype).name, dims))
    if not specs:
        raise InputError("--input-spec is empty")
    return tuple(specs)


def load_input_data(path: Path, flag: str = "--input-data") -> dict[str, np.ndarray]:
    """Arrays from an .npz file, read without pickle; errors name the option `flag`."""
    if not path.is_file():
        raise InputError(f"{flag} {path}: no such file")
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):  # one .npy array (a memmap or an ndarray)
            raise ValueError("a single array; save the inputs with np.savez(path, name=array)")
        with npz:
            other = [n for n in npz.zip.namelist() if not n.endswith(".npy")]  # type: ignore[union-attr]  # open
            if other:  # NumPy would hand such members over as raw bytes
                raise ValueError(f"an archive of other files than .npy arrays: {', '.join(other[:3])}")
            data = {k: np.asarray(npz[k]) for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"{flag} {path}: not a readable .npz file ({exc})") from None
    if not data:
        raise InputError(f"{flag} {path}: holds no arrays")
    return data


def specs_from_data(data: dict[str, np.ndarray]) -> tuple[TensorSpec, ...]:
    """TensorSpecs for sample data, taking the first axis as the dynamic batch axis."""
    return tuple(TensorSpec(k, v.dtype.name, (None, *v.shape[1:])) for k, v in data.items())


def as_spec_text(inputs: tuple[TensorSpec, ...]) -> str:
    """TensorSpecs written as --input-spec takes them: 'x:float32:-1x3x32x32,ids:int64:-1x16'."""
    return ",".join(f"{t.name}:{t.dtype}:{'x'.join('-1' if d is None else str(d) for d in t.shape)}"
                    for t in inputs)


def how_to_pass(names: list[str], inputs: tuple[TensorSpec, ...] = ()) -> str:
    """The fix for inputs that do not match the model's: what it expects and the two ways to say it."""
    keys = ", ".join(f"{n}=..." for n in names)
    spec = f"--input-spec {as_spec_text(inputs)}" if inputs else "--input-spec with these names"
    return f"pass {spec}, or --input-data with an .npz of these keys (np.savez(path, {keys}))"


def check_data(inputs: tuple[TensorSpec, ...], data: dict[str, np.ndarray]) -> None:
    """Raise InputError when sample data does not match the model's inputs."""
    names = [t.name for t in inputs]
    if sorted(data) != sorted(names):
        raise InputError(f"input data has tensors {sorted(data)}, the model expects {as_spec_text(inputs)} "
                         f"(name:dtype:shape); {how_to_pass(names, inputs)}")
    for spec in inputs:
        arr = data[spec.name]
        fixed = all(d is None or d == a for d, a in zip(spec.shape, arr.shape))
        if arr.ndim != len(spec.shape) or not fixed:
            raise InputError(f"input {spec.name!r}: data shape {arr.shape} does not fit {spec.shape}")
        if arr.ndim and arr.shape[0] == 0:
            raise InputError(f"input {spec.name!r}: the data has no rows")
        if arr.dtype.name != spec.dtype:
            raise InputError(f"input {spec.name!r}: data of dtype {arr.dtype.name}, the model expects {spec.dtype}")


def batches_taken(io: IOSpec, sizes: tuple[int, ...]) -> tuple[int, ...]:
    """The batch sizes of `sizes` the model can take: all of them with a dynamic batch axis; else only 1,
    since each call of a model without one is one inference (as Triton counts a max_batch_size 0 model)
    and a larger batch would count rows it never computed. InputError when none is left."""
    if io.batched:
        return sizes
    if 1 in sizes:
        return (1,)
    spec = next((t for t in io.inputs if t.shape and t.shape[0] is not None), io.inputs[0])
    dim = f"a fixed first dimension {spec.shape[0]}" if spec.shape else "no batch dimension"
    wanted = ",".join(map(str, sizes))
    raise InputError(f"--batch-size {wanted}: input {spec.name!r} has {dim} (shape {list(spec.shape)}), "
                     "so the model takes batch 1 only (one call is one inference); use --batch-size 1")


def searched_batches(io: IOSpec, samples: dict[str, np.ndarray], asked: tuple[int, ...] | None) -> tuple[int, ...]:
    """The batch sizes searched: those asked for that the model takes (batches_taken); when none were
    asked for, the rows of the sample inputs of a dynamic-batch model (all arrays alike), else 1."""
    if asked is None:
        rows = {a.shape[0] if a.ndim else None for a in samples.values()}
        asked = ((rows.pop() or 1) if io.batched and len(rows) == 1 else 1,)
    return batches_taken(io, asked)


def make_inputs(inputs: tuple[TensorSpec, ...], batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic random inputs: batch on a dynamic first axis, DYNAMIC_AXIS_SIZE elsewhere."""
    rng = np.random.default_rng(seed)
    out = {}
    for spec in inputs:
        shape = tuple(
            (batch if i == 0 else DYNAMIC_AXIS_SIZE) if d is None else d for i, d in enumerate(spec.shape)
        )
        try:
            dtype = np.dtype(spec.dtype)
        except TypeError:  # bfloat16 and other types NumPy has no name for
            raise InputError(f"input {spec.name!r}: cannot generate data of dtype {spec.dtype}; pass --input-data") from None
        if dtype.kind == "f":
            out[spec.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind in "iu":
            out[spec.name] = rng.integers(0, INT_HIGH, shape).astype(dtype)
        elif dtype.kind == "b":
            out[spec.name] = rng.integers(0, 2, shape).astype(bool)
        else:
            raise InputError(f"input {spec.name!r}: cannot generate data of dtype {dtype}; pass --input-data")
    return out


def random_ints_note(inputs: tuple[TensorSpec, ...]) -> str:
    """A warning for the integer inputs make_inputs drew at random ("" when there are none)."""
    ints = [t.name for t in inputs if np.dtype(t.dtype).kind in "iu"]
    if not ints:
        return ""
    return (f"integer input{'s' if len(ints) > 1 else ''} {', '.join(ints)} drawn at random in [0, {INT_HIGH}): "
            "ids or indices drawn at random may be out of the model's range (or take other branches than real "
            "data); pass real ids with --input-data")


def resize_batch(data: dict[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
    """The same samples tiled or cut along axis 0 to `batch` rows (for benchmarking a batch size)."""
    out = {}
    for name, arr in data.items():
        reps = -(-batch // arr.shape[0])
        out[name] = np.ascontiguousarray(np.concatenate([arr] * reps, axis=0)[:batch])
    return out


@dataclass(frozen=True)
class AxisGroup:
    """Dynamic axes other than the batch axis that have the same size in the samples (ids and mask
    [B, T]): they change size together."""

    size: int
    axes: tuple[tuple[str, int], ...]  # (input name, axis)

    def label(self, size: int) -> str:
        return f"{' and '.join(f'{n} axis {a}' for n, a in self.axes)} of size {size}"


def dynamic_groups(inputs: tuple[TensorSpec, ...], samples: dict[str, np.ndarray]) -> list[AxisGroup]:
    """The inputs' dynamic axes besides the batch axis (axis 0 when every input has it dynamic),
    grouped by their size in the samples."""
    batched = bool(inputs) and all(t.shape and t.shape[0] is None for t in inputs)
    groups: dict[int, list[tuple[str, int]]] = {}
    for spec in inputs:
        for axis, dim in enumerate(spec.shape):
            if dim is None and not (batched and axis == 0):
                groups.setdefault(int(samples[spec.name].shape[axis]), []).append((spec.name, axis))
    return [AxisGroup(size, tuple(axes)) for size, axes in groups.items()]


def resize_axes(data: dict[str, np.ndarray], axes: tuple[tuple[str, int], ...], size: int) -> dict[str, np.ndarray]:
    """The samples tiled or cut to `size` along the given (input, axis) pairs; the rest unchanged."""
    out = dict(data)
    for name, axis in axes:
        arr = out[name]
        reps = -(-size // arr.shape[axis])
        out[name] = np.ascontiguousarray(np.take(np.concatenate([arr] * reps, axis=axis), range(size), axis=axis))
    return out


Bounds = dict[tuple[str, int], tuple[int, "int | None"]]  # (input, axis) -> declared (lowest, highest)


def _other_size(group: AxisGroup, bounds: Bounds) -> int | None:
    """A size besides the samples' that every axis of the group admits: a few more, a few fewer, or
    the declared bound nearest to the samples'; None when the range holds no other size."""
    low = max([1] + [bounds[a][0] for a in group.axes if a in bounds])
    highs = [h for a in group.axes if a in bounds and (h := bounds[a][1]) is not None]
    high = min(highs) if highs else None
    for size in (group.size + OTHER_SIZE_STEP, group.size - OTHER_SIZE_STEP, high, low):
        if size is not None and size != group.size and size >= low and (high is None or size <= high):
            return size
    return None


def shape_variants(inputs: tuple[TensorSpec, ...], samples: dict[str, np.ndarray],
                   bounds: Bounds | None = None) -> list[tuple[str, dict[str, np.ndarray]]]:
    """(label, inputs) with each group of dynamic axes at another size than the samples' (within any
    declared range): a model exported with such an axis fixed at the sample's size fails or differs there."""
    out = []
    for group in dynamic_groups(inputs, samples):
        size = _other_size(group, bounds or {})
        if size is not None:
            out.append((group.label(size), resize_axes(samples, group.axes, size)))
    return out


def perturb(data: dict[str, np.ndarray], seed: int = 1) -> dict[str, np.ndarray]:
    """A second validation set from the samples: floats negated, rescaled and noised; integers and
    booleans shuffled (the same, valid, values elsewhere). A traced artifact that froze a branch the
    samples took diverges from the source here."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, arr in data.items():
        if arr.dtype.kind == "f":
            std = float(np.std(arr)) or 1.0
            noisy = -1.5 * arr.astype(np.float64) + 0.1 * std * rng.standard_normal(arr.shape)
            out[name] = noisy.astype(arr.dtype)
        else:
            out[name] = rng.permutation(arr.reshape(-1)).reshape(arr.shape)
    return out

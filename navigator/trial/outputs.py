"""In the trial worker, for the gate's output check (report/drift.py): a trial's configuration run on
inputs from a file, the outputs saved to another."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from navigator.records import TrialConfig


def outputs_on(ctx: Any, config: TrialConfig, inputs_file: Path, out_file: Path) -> list[str]:
    """In the worker: `config` run on the inputs of `inputs_file`, in batches of its batch size (the
    last one tiled to full size, its extra rows dropped); the outputs saved to `out_file`."""
    from navigator import paths
    from navigator.source.iospec import resize_batch
    from navigator.trial.run import convert

    with np.load(inputs_file, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    expected = sorted(s.name for s in ctx.source.io.inputs)
    if sorted(data) != expected:
        raise ValueError(f"the baseline's validation inputs are {sorted(data)}, the candidate takes {expected}")
    runner = paths.get(config.path).load(convert(ctx, config), ctx.source, {**config.convert, **config.runtime})
    if not ctx.source.io.batched:
        got = [np.asarray(o) for o in runner(data)]
    else:
        rows, batch = next(iter(data.values())).shape[0], config.batch_size
        parts = []
        for start in range(0, rows, batch):
            n = min(batch, rows - start)
            outs = runner(resize_batch({k: v[start:start + n] for k, v in data.items()}, batch))
            parts.append([np.asarray(o)[:n] if np.ndim(o) and np.shape(o)[0] == batch else np.asarray(o)
                          for o in outs])
        got = [np.concatenate(chunk) if chunk[0].ndim else chunk[0] for chunk in zip(*parts)]
    names = [s.name for s in ctx.source.io.outputs]
    np.savez(out_file, **{f"{i:03d}_{name}": g for i, (name, g) in enumerate(zip(names, got))})  # type: ignore[arg-type]  # numpy's stub takes **arrays for allow_pickle
    return names

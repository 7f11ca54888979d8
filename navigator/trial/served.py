"""The served maximum batch: a dynamic-batch winner is written with the largest max_batch_size its artifact
was validated at, which may exceed the batch it was optimised at (the optimisation batch is what one
request carries in the benchmark; the served maximum is what Triton's batcher may put together)."""

from __future__ import annotations

from typing import Any

from navigator import paths
from navigator.records import TrialConfig

# A dynamic-batch model is offered up to this batch (or the largest searched, if larger) when its artifact
# validates there; Triton's dynamic batcher then forms batches up to it under concurrent load.
SERVED_MAX_BATCH = 64


def candidates(batch_sizes: tuple[int, ...], validated: int) -> list[int]:
    """Sizes to try, largest first: powers of two above the batch the trial validated at, up to the top."""
    top = max(SERVED_MAX_BATCH, *batch_sizes)
    return sorted({b for b in (2 ** i for i in range(top.bit_length())) if validated < b < top} | {top}, reverse=True)


def largest_valid(ctx: Any, config: TrialConfig, sizes: list[int]) -> tuple[int, list[str]]:
    """The first of `sizes` at which the trial's runner gives the source's outputs (validation and a full
    batch of rows), and why the larger ones did not; the trial's own batch when none does."""
    from navigator.errors import one_line
    from navigator.trial.bench import uncounted_rows
    from navigator.trial.run import check, convert

    failures: list[str] = []
    try:
        runner = paths.get(config.path).load(convert(ctx, config), ctx.source, {**config.convert, **config.runtime})
    except Exception as exc:  # the artifact loaded for the trial; anything now is reported, not raised
        return config.batch_size, [f"not loaded again: {one_line(exc)}"]
    for batch in sizes:
        try:
            got, validation = check(ctx, config, runner, batch)
        except Exception as exc:  # beyond an engine's profile, out of memory, ...
            failures.append(f"batch {batch}: {one_line(exc)}")
            continue
        reason = validation.reason or uncounted_rows(ctx.source.io, got, batch)
        if not reason:
            return batch, failures
        failures.append(f"batch {batch}: {reason}")
    return config.batch_size, failures


def served_max(worker: Any, ctx: Any, config: TrialConfig, batch_sizes: tuple[int, ...]) -> tuple[int, str]:
    """(max_batch_size, a note for the report) for the deployed trial, validated in the trial worker (in
    this process when there is none)."""
    sizes = candidates(batch_sizes, config.batch_size)
    if worker is not None:
        from navigator.records import to_dict

        try:
            batch, failures = worker.call({"op": "served_max", "config": to_dict(config), "sizes": sizes},
                                          timeout=600)
        except Exception as exc:  # the worker died or timed out: the trial's own batch is validated
            batch, failures = config.batch_size, [f"validation at larger batches failed: {exc}"]
    else:
        batch, failures = largest_valid(ctx, config, sizes)
    note = f"max_batch_size {batch}: trial {config.number} validated at batch {batch}"
    if failures:
        note += f"; larger batches not served ({'; '.join(failures)[:400]})"
    return batch, note

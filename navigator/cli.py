"""Command line: a thin typer adapter over navigator.api; a NavigatorError is one line and exit 2."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from navigator.errors import NavigatorError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Find the fastest correct way to serve a model on NVIDIA Triton Inference Server.")


def _fail(exc: NavigatorError) -> None:
    message = " ".join(str(exc).split())  # always one line
    typer.echo(f"navigator: error: {message}", err=True)
    raise typer.Exit(2)


@app.command()
def optimize(
    model: Path = typer.Option(..., "--model", help="Model: TorchScript / torch.save .pt, ExportedProgram .pt2, .onnx, SavedModel dir, .keras, "
                                 "XGBoost .json/.ubj, LightGBM .txt, scikit-learn .skops/.pkl"),
    budget: str = typer.Option("10m", help="Wall-clock budget of the study, e.g. 90s, 10m, 2h (summed over reruns)."),
    out: Optional[Path] = typer.Option(None, help="Output directory [default: ./navigator-out/<model name>]."),
    batch_size: str = typer.Option("1", help="Batch size: N, LOW:HIGH (powers of two searched) or N,M,..."),
    input_spec: Optional[str] = typer.Option(None, help="Inputs as name:dtype:shape,... (-1 = dynamic axis)."),
    input_data: Optional[Path] = typer.Option(None, help="Validation inputs as an .npz file (read without pickle)."),
    trials: Optional[int] = typer.Option(None, help="Cap on the number of trials in the study."),
    objective: str = typer.Option("throughput", help="throughput (maximised) or latency (p99, minimised)."),
    sampler: str = typer.Option("tpe", help="tpe, random or grid."),
    path: Optional[list[str]] = typer.Option(None, "--path", help="Only search this conversion path (repeatable)."),
    atol: Optional[float] = typer.Option(None, help="Absolute tolerance for validation (default by precision)."),
    rtol: Optional[float] = typer.Option(None, help="Relative tolerance for validation (default by precision)."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Allow unpickling a torch.save or scikit-learn pickle file."),
    trial_timeout: Optional[str] = typer.Option(None, help="Limit of one trial, e.g. 5m [default: per path]."),
    trial_memory: str = typer.Option("default", help="Memory cap of the trial worker, e.g. 8G; 0 = none [default: 80% of RAM]."),
    window: float = typer.Option(0.25, help="Benchmark window in seconds (windows repeat until 3 agree within 10%)."),
    window_calls: int = typer.Option(0, help="Count-based benchmark windows of N calls instead of --window seconds."),
    device: str = typer.Option("auto", help="cpu, cuda or auto (cuda when PyTorch sees a GPU)."),
    force: bool = typer.Option(False, "--force", help="Use an --out directory that holds other files or another study."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    triton_server: Optional[str] = typer.Option(None, help="Triton release the config targets, e.g. 25.02 "
                                                "(older servers: tensorflow_savedmodel, FIL's old parameter names)."),
) -> None:
    """Search conversion paths and runtime settings; write the Triton repository and reports."""
    from navigator.api import optimize as run_optimize

    try:
        result = run_optimize(str(model), budget=budget, out=out, trials=trials, batch_size=batch_size,
                              objective=objective, sampler=sampler, paths=path or None, input_spec=input_spec,
                              input_data=input_data, trust_pickle=trust_pickle, atol=atol, rtol=rtol,
                              progress=progress, window_s=window, trial_timeout=trial_timeout,
                              trial_memory=trial_memory, window_calls=window_calls, force=force,
                              device=device, triton_server=triton_server)
    except NavigatorError as exc:
        _fail(exc)
        return
    w = result.winner
    ok = sum(o.status == "ok" for o in result.outcomes)
    typer.echo(f"trials: {len(result.outcomes)} ({ok} valid)")
    if w is not None and w.bench is not None:
        speed = f", {result.speedup:.2f}x the baseline" if result.speedup else ""
        typer.echo(f"winner: trial {w.config.number} {w.config.path} batch {w.config.batch_size}: "
                   f"{w.bench.throughput:.1f} inferences/s, p99 {w.bench.p99_ms:.3f} ms{speed}")
        typer.echo(f"triton repository: {result.repository}")
    elif any(o.status in ("ok", "unstable") for o in result.outcomes):
        typer.echo("no valid trial could be written as a Triton model; see the report's notes")
    else:
        typer.echo("no trial passed validation; see the report for the reasons")
    typer.echo(f"report: {result.report} and {result.report.with_suffix('.md') if result.report else ''}")
    if w is None:
        raise typer.Exit(1)


@app.command()
def paths() -> None:
    """List the conversion paths and whether each can run here."""
    from navigator import paths as registry

    for device in ("cpu", "cuda"):
        for framework in ("torch", "onnx", "tf", "trees"):
            for c in registry.candidates(framework, device):
                state = "available" if c.reason is None else "unavailable: " + c.reason
                typer.echo(f"{device:5} {framework:6} {c.name:15} {state}")


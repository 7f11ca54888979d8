"""Command line: a thin typer adapter over navigator.api; a NavigatorError is one line and exit 2."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
import typer.core

from navigator.errors import InputError, NavigatorError

if TYPE_CHECKING:
    from navigator.records import Result


def _exit_code(command: str | None, exc: NavigatorError) -> int:
    """2 (a usage error), except for the gate, whose exit codes tell apart what stopped it."""
    if command == "check":
        from navigator.report.check import exit_code_of

        return exit_code_of(exc)
    return 2


class _Commands(typer.core.TyperGroup):
    """The one place a NavigatorError ends a command: one line, its exit code; Ctrl-C: one line saying
    how to continue (the API's Interrupted says it), exit 130 as shells do."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except NavigatorError as exc:
            message = " ".join(str(exc).split())  # always one line
            typer.echo(f"navigator: error: {message}", err=True)
            raise typer.Exit(_exit_code(ctx.invoked_subcommand, exc)) from None
        except KeyboardInterrupt as exc:
            typer.echo(f"navigator: {str(exc) or 'interrupted'}", err=True)
            raise typer.Exit(130) from None


app = typer.Typer(cls=_Commands, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Find the fastest correct way to serve a model on NVIDIA Triton Inference Server.")


def _report_line(report: Path) -> str:
    """The reports written: report.html first (where the `report` extra wrote it), then the others."""
    files = [f for f in (report.with_suffix(".html"), report.with_suffix(".md"), report) if f.is_file()]
    first, *rest = files or [report]
    return f"report: {first}" + (f" (also {', '.join(f.name for f in rest)})" if rest else "")


@app.command()
def optimize(
    ctx: typer.Context,
    model: Path = typer.Option(..., "--model", help="Model: TorchScript / torch.save .pt, ExportedProgram .pt2, .onnx, SavedModel dir, .keras, "
                                 "XGBoost .json/.ubj, LightGBM .txt, scikit-learn .skops/.pkl"),
    budget: str = typer.Option("10m", help="Wall-clock budget of the study, e.g. 90s, 10m, 2h (summed over reruns)."),
    out: Optional[Path] = typer.Option(None, help="Output directory [default: ./navigator-out/<model name>]."),
    batch_size: str = typer.Option("1", help="Batch size: N, LOW:HIGH (powers of two searched) or N,M,..."),
    input_spec: Optional[str] = typer.Option(None, help="Inputs as name:dtype:shape,... (-1 = dynamic axis)."),
    input_data: Optional[Path] = typer.Option(None, help="Validation inputs as an .npz file (read without pickle)."),
    calibration: Optional[Path] = typer.Option(None, "--calibration-data", help="Calibration inputs of the INT8 "
                                               "paths as an .npz file [default: the validation inputs]."),
    trials: Optional[int] = typer.Option(None, help="Cap on the number of trials in the study."),
    objective: str = typer.Option("throughput", help="throughput (maximised), latency (p99, minimised) or pareto "
                                  "(both; the repository is the front's fastest point within every constraint)."),
    sampler: str = typer.Option("tpe", help="tpe, random or grid."),
    paths: Optional[list[str]] = typer.Option(None, "--path", help="Only search this conversion path (repeatable)."),
    atol: Optional[float] = typer.Option(None, help="Absolute tolerance for validation (default by precision)."),
    rtol: Optional[float] = typer.Option(None, help="Relative tolerance for validation (default by precision)."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Allow unpickling a torch.save or scikit-learn pickle file."),
    trial_timeout: Optional[str] = typer.Option(None, help="Limit of one trial, e.g. 5m [default: per path]."),
    trial_memory: str = typer.Option("default", help="Memory cap of the trial worker, e.g. 8G; 0 = none [default: 80% of RAM]."),
    window_s: float = typer.Option(0.25, "--window", help="Benchmark window in seconds (windows repeat until 3 agree within 10%)."),
    window_calls: int = typer.Option(0, help="Count-based benchmark windows of N calls instead of --window seconds."),
    screen: bool = typer.Option(True, "--screen/--no-screen", help="Measure a trial in full only where its short "
                                "first measurement could reach the top 3 (once 3 trials are measured)."),
    device: str = typer.Option("auto", help="cpu, cuda or auto (cuda when PyTorch sees a GPU)."),
    force: bool = typer.Option(False, "--force", help="Use an --out directory that holds other files or another study."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    serving: str = typer.Option("native", help="Repository holds the native backend's config (native) or a "
                                "python-backend model.py running the same artifact (python)."),
    serve_check: bool = typer.Option(False, "--serve-check", help="Serve the result with a real tritonserver: "
                                     "compare HTTP/gRPC answers with the source, measure with perf_analyzer."),
    tune_serving: bool = typer.Option(False, "--tune-serving", help="Also search max_batch_size, dynamic "
                                      "batching, instances and per-instance threads (implies --serve-check)."),
    serving_budget: str = typer.Option("2m", help="Budget of the serving search."),
    concurrency: str = typer.Option("1,4", help="perf_analyzer concurrencies: N,M,... or LOW:HIGH."),
    latency_limit_ms: Optional[float] = typer.Option(None, help="p99 limit (ms) of the search (a trial above it "
                                                     "never wins) and of the serving search."),
    storage: Optional[str] = typer.Option(None, help="Shared study storage, e.g. postgresql://user@host/db "
                                          "(with --study; other machines join with navigator worker)."),
    study: Optional[str] = typer.Option(None, help="Name of the shared study to create or join (with --storage)."),
    heartbeat: int = typer.Option(10, help="Seconds between a shared study's heartbeats (3 missed: worker dead)."),
    triton_server: Optional[str] = typer.Option(None, help="Triton release the config targets, e.g. 25.02 "
                                                "(older servers: tensorflow_savedmodel, FIL's old parameter names)."),
    dynamic_batching: bool = typer.Option(True, "--dynamic-batching/--no-dynamic-batching",
                                          help="Write dynamic_batching {} for models with max_batch_size > 0."),
    allow_traced: bool = typer.Option(False, "--allow-traced", help="Let a traced artifact win although tracing "
                                      "found control flow that depends on the input values."),
    metric: Optional[str] = typer.Option(None, help="User metric path/to/file.py:function or module:function, "
                                         "f(runner) -> float, higher is better, run in every trial (needs --trust-pickle)."),
    max_metric_drop: Optional[str] = typer.Option(None, help="With --metric: a trial whose metric falls more than "
                                                  "this below the source's (0.5% or 0.01) is invalid."),
    search_space: Optional[Path] = typer.Option(None, help="Directory of <path>.yaml files, each keeping some of "
                                                "that path's values (params: {name: [values]}) and optionally "
                                                "its own presets; other paths as packaged."),
) -> None:
    """Search conversion paths and runtime settings; write the Triton repository and reports."""
    from navigator.pyapi import optimize as run_optimize

    # Every option is the Python API's argument of the same name: one parse of the settings, there.
    result = run_optimize(**{**ctx.params, "model": str(model), "paths": paths or None})
    _summary(result, study)


def _summary(result: "Result", study: Optional[str] = None) -> None:
    """What a run produced; exit 1 where no trial passed validation."""
    if result.report is None:  # a worker of a shared study that did not finish last
        typer.echo(f"trials in study {study}: {len(result.outcomes)} "
                   f"({sum(o.status == 'ok' for o in result.outcomes)} valid); other workers are still running: "
                   "the last to finish writes the report, or run navigator report --storage URL --study NAME --out DIR")
        return
    from navigator.report import headline

    w = result.winner
    ok = sum(o.status == "ok" for o in result.outcomes)
    screened = sum(o.status == "screened" for o in result.outcomes)
    typer.echo(f"trials: {len(result.outcomes)} ({ok} valid" + (f"; {screened} more valid, screened out by a short "
               "first measurement" if screened else "") + ")")
    if w is not None and w.bench is not None:
        for line in headline.build(result).lines:  # the report's own header, word for word
            typer.echo(line)
        typer.echo(f"triton repository: {result.repository}")
    if result.metric:  # the user metric as its trials measured it
        typer.echo("metric: " + ", ".join(f"{k} {v:.6g}" for k, v in result.metric.items()))
    if result.phases:
        typer.echo("time: " + ", ".join(f"{k} {v:.0f} s" for k, v in result.phases.items()) +
                   " (per path: the report's \"Where the budget went\")")
    if w is None:
        typer.echo(_no_winner(result))
    typer.echo(_report_line(result.report))
    served_ok = _echo_serving(result.serving) if result.serving else True
    if w is None or not served_ok:
        raise typer.Exit(1)


def _no_winner(result: "Result") -> str:
    """Why a run wrote no repository, in one line: no measured trial met its constraints, none could be
    written, or none passed validation."""
    from navigator import objective as objectives

    s = result.settings
    infeasible = objectives.infeasible_note(objectives.for_study(s), objectives.remeasured(
        result.outcomes, result.finalists)) if s else ""
    if infeasible:
        return infeasible
    if any(o.status in ("ok", "unstable") for o in result.outcomes):
        return "no valid trial could be written as a Triton model; see the report's notes"
    return "no trial passed validation; see the report for the reasons"


@app.command()
def export(
    out: Path = typer.Argument(..., help="An optimize output directory (its study.db and cache/)."),
    trial: int = typer.Option(..., "--trial", help="The number of the trial to write (report.md lists them)."),
    to: Optional[Path] = typer.Option(None, "--to", help="Where the repository goes [default: OUT/export/trial-N]."),
    serving: str = typer.Option("native", help="native (the runtime's backend) or python (the python-backend twin)."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Allow unpickling a torch.save or scikit-learn "
                                      "pickle model file (this invocation's choice, never the report's)."),
) -> None:
    """Write any valid trial's Triton repository (e.g. another point of a Pareto front) from a run's OUT."""
    from navigator.export import export as run_export

    if serving not in ("native", "python"):
        raise InputError(f"--serving {serving!r} is not native or python")
    written = run_export(out, trial, to, python=serving == "python", trust_pickle=trust_pickle)
    typer.echo(f"triton repository: {written}")


def _echo_serving(report: Any) -> bool:
    """Print what the real server did; False when its answers were wrong or it failed."""
    for c in report.checks:
        err = max((o.max_abs for o in c.outputs), default=0.0)
        typer.echo(f"served ({report.deployment}) over {c.protocol}: "
                   f"{'matches the source' if c.ok else 'WRONG: ' + c.reason} (max abs err {err:.2e})")
    for label, trial in (("default serving config", report.default), ("tuned serving config", report.best)):
        if trial is None or (label.startswith("tuned") and trial is report.default):
            continue
        for p in trial.points:
            typer.echo(f"{label}: concurrency {p.concurrency}: {p.throughput:.1f} infer/s, p50 {p.p50_ms:.2f} ms, "
                       f"p99 {p.p99_ms:.2f} ms (queue {p.queue_ms:.2f}, compute {p.compute_ms:.2f}){'' if p.stable else ' unstable'}")
    if report.default and report.best and report.best is not report.default and report.default.score:
        typer.echo(f"serving search: {(report.best.score or 0) / report.default.score:.2f}x the default config "
                   f"({len(report.trials)} configurations)")
    for note in report.notes:
        typer.echo(f"note: {note}")
    return bool(report.checks) and all(c.ok for c in report.checks) and not any(
        n.startswith("serving failed") for n in report.notes)


@app.command("serve-check")
def serve_check(
    out: Path = typer.Argument(..., help="An optimize output directory (model_repository/, validation/)."),
    batch_size: int = typer.Option(1, help="Rows per request for perf_analyzer."),
    concurrency: str = typer.Option("1,4", help="perf_analyzer concurrencies: N,M,... or LOW:HIGH."),
    tune: bool = typer.Option(False, "--tune", help="Search the serving configuration too; the best is written."),
    budget: str = typer.Option("2m", help="Budget of the serving search."),
    latency_limit_ms: Optional[float] = typer.Option(None, help="p99 limit for the serving search (ms)."),
    atol: Optional[float] = typer.Option(None, help="Absolute tolerance [default: the winner's, from report.json]."),
    rtol: Optional[float] = typer.Option(None, help="Relative tolerance [default: the winner's, from report.json]."),
) -> None:
    """Serve a written repository with a real tritonserver on 127.0.0.1, check its answers, measure it."""
    from navigator import serving
    from navigator.settings import parse_budget

    options = serving.ServingOptions("native", True, tune, parse_budget(budget),
                                     serving.parse_concurrency(concurrency), latency_limit_ms, budget_flag="--budget")
    repo = out / "model_repository"
    models = sorted(d for d in repo.iterdir() if (d / "config.pbtxt").is_file()) if repo.is_dir() else []
    if not models:
        raise InputError(f"{out}: no model_repository/<model>/config.pbtxt")
    inputs, reference = serving.load_validation(out / "validation")
    default_atol, default_rtol = serving.tolerances(out)
    report = serving.run(models[0], inputs, reference, default_atol if atol is None else atol,
                         default_rtol if rtol is None else rtol, batch_size, options, out / "serving")
    if not _echo_serving(report):
        raise typer.Exit(1)


@app.command()
def worker(
    storage: str = typer.Option(..., help="The shared study's storage URL, e.g. postgresql://user@host/db."),
    study: str = typer.Option(..., help="Name of the study to join (created by navigator optimize --storage)."),
    model: Optional[Path] = typer.Option(None, help="This machine's copy of the study's model file (default: the path the study records)."),
    out: Optional[Path] = typer.Option(None, help="This worker's directory: cache, logs, report if it finishes last (default: ./navigator-out/<study>-worker)."),
    budget: Optional[str] = typer.Option(None, help="This worker's own time limit, e.g. 30m (default: until the study's budget is spent)."),
    input_data: Optional[Path] = typer.Option(None, help="This machine's copy of the study's --input-data file."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Allow unpickling a torch.save model file."),
    trial_memory: str = typer.Option("default", help="Memory cap of the trial worker, e.g. 8G; 0 = none."),
    heartbeat: int = typer.Option(10, help="Seconds between heartbeats (3 missed: this worker counts as dead)."),
    trials: Optional[int] = typer.Option(None, help="This worker's own cap on the trials it runs (the study's cap holds too)."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    metric: Optional[str] = typer.Option(None, help="The study's user metric, path/to/file.py:function or "
                                         "module:function (needs --trust-pickle; required where the study has "
                                         "--max-metric-drop)."),
) -> None:
    """Join a shared study as one more worker (same model file, search space, hardware class and metric)."""
    from navigator.workers import worker as run_worker

    result = run_worker(storage, study, model=model, out=out, budget=budget, input_data=input_data,
                        trust_pickle=trust_pickle, trial_memory=trial_memory, progress=progress,
                        heartbeat=heartbeat, trials=trials, metric=metric)
    _summary(result, study)


@app.command()
def paths(verbose: bool = typer.Option(False, "--verbose", help="One line per device, framework and path.")) -> None:
    """List the conversion paths that can run here, and why the others cannot."""
    from navigator import paths as registry

    available: dict[str, list[str]] = {}
    unavailable: dict[str, list[str]] = {}  # reason -> the paths it keeps out
    for device in ("cpu", "cuda"):
        for framework in ("torch", "onnx", "tf", "trees"):
            for c in registry.candidates(framework, device):
                if verbose:
                    state = "available" if c.reason is None else "unavailable: " + c.reason
                    typer.echo(f"{device:5} {framework:6} {c.name:15} {state}")
                elif c.reason is None:
                    available.setdefault(f"{device} {framework}", []).append(c.name)
                elif _serves(registry, c.name, framework, device):  # a reason of this machine, not of the pairing
                    names = unavailable.setdefault(c.reason, [])
                    names += [] if c.name in names else [c.name]
    if verbose:
        return
    typer.echo("available here:" if available else "no path can run here")
    for pair, names in available.items():
        typer.echo(f"  {pair + ':':11} {', '.join(names)}")
    if unavailable:
        typer.echo("unavailable here:")
    for reason, names in unavailable.items():
        typer.echo(f"  {', '.join(names)}: {reason}")
    calibrating = sorted({n for d in ("cpu", "cuda") for f in ("torch", "onnx", "tf") for n in registry.calibrating(f, d)})
    if calibrating:
        typer.echo(f"{', '.join(calibrating)}: INT8 (FP8), calibrated on --calibration-data, else on --input-data; "
                   "never on inputs navigator draws at random (those trials fail, saying so)")
    typer.echo("(navigator paths --verbose: one line per device, framework and path)")


def _serves(registry: Any, name: str, framework: str, device: str) -> bool:
    """Whether path `name` is meant for this framework and device (a path that fails to import might be)."""
    try:
        path = registry.get(name)
    except Exception:
        return True
    return framework in path.frameworks and device in path.devices


@app.command()
def report(
    directory: Optional[Path] = typer.Argument(None, help="An --out directory of `navigator optimize` (holds study.db)."),
    out: Optional[Path] = typer.Option(None, help="Where to write (default: DIRECTORY; required with --storage)."),
    storage: Optional[str] = typer.Option(None, help="A shared study's storage URL (with --study): winner, Triton "
                                          "repository and reports from every worker's trials."),
    study: Optional[str] = typer.Option(None, help="Name of the shared study."),
    model: Optional[Path] = typer.Option(None, help="With --storage: this machine's copy of the study's model file."),
    input_data: Optional[Path] = typer.Option(None, help="With --storage: this machine's copy of its --input-data."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Allow unpickling a torch.save model file."),
    force: bool = typer.Option(False, "--force", help="Write into an --out directory that holds other files."),
    heartbeat: int = typer.Option(10, help="With --storage: the workers' --heartbeat (a trial silent for 3 is "
                                  "failed as a dead worker's)."),
) -> None:
    """Rebuild report.json, report.md and report.html from DIRECTORY's study, or (--storage, --study) build
    the winner's repository and the reports of a shared study."""
    from navigator.report.store import render_from_storage, storage_for_dir
    from navigator.search.storage import STUDY_NAME
    from navigator.workers import report as study_report

    if storage or study:
        if not (storage and study and out) or directory is not None:
            raise InputError("a shared study's report takes --storage, --study and --out (no DIRECTORY)")
        _summary(study_report(storage, study, out, model=model, input_data=input_data, trust_pickle=trust_pickle,
                              force=force, heartbeat=heartbeat), study)
    elif directory is None:
        raise InputError("give an optimize output DIRECTORY, or --storage URL --study NAME --out DIR")
    else:
        typer.echo(_report_line(render_from_storage(storage_for_dir(directory), STUDY_NAME, out or directory)))


@app.command()
def check(
    baseline: Path = typer.Option(..., help="The baseline run's report.json."),
    candidate: Optional[Path] = typer.Option(None, help="The candidate run's report.json (compare the reports)."),
    model: Optional[Path] = typer.Option(None, help="A candidate model: optimize it, re-measure both interleaved."),
    budget: str = typer.Option("2m", help="With --model: the candidate's search budget."),
    out: Optional[Path] = typer.Option(None, help="With --model: the candidate's output directory "
                                       "(default: a new temporary directory)."),
    max_regression: float = typer.Option(0.10, help="Allowed slowdown of throughput and p99 latency (0.1 = 10%)."),
    max_metric_drop: float = typer.Option(0.0, help="Allowed drop of the user metric where both reports have one."),
    rounds: int = typer.Option(7, help="With --model: interleaved measurement rounds."),
    path: Optional[list[str]] = typer.Option(None, "--path", help="With --model: only search this path (repeatable)."),
    baseline_model: Optional[Path] = typer.Option(None, help="With --model: the baseline's model file, if it moved."),
    input_spec: Optional[str] = typer.Option(None, help="With --model: the candidate's inputs as name:dtype:shape,... "
                                             "[default: the baseline's]."),
    input_data: Optional[Path] = typer.Option(None, help="With --model: the candidate's validation inputs (.npz)."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Allow unpickling a torch.save or scikit-learn "
                                      "pickle model file (this invocation's choice, never the baseline report's)."),
    summary: Optional[Path] = typer.Option(None, help="Also write the Markdown summary to this file."),
    junit: Optional[Path] = typer.Option(None, help="Write JUnit XML (one test case per criterion) to this file."),
) -> None:
    """CI regression gate: exit 0 pass, 1 regression or output drift (the candidate's winner on the
    baseline's validation inputs is off its reference outputs), 2 usage error, 3 invalid model file,
    4 pickle refused (pass --trust-pickle), 5 no valid trial."""
    from navigator.report import gate
    from navigator.report.check import check as run_check

    verdict = run_check(baseline, candidate, model=str(model) if model else None, budget=budget, out=out,
                        max_regression=max_regression, max_metric_drop=max_metric_drop, rounds=rounds,
                        paths=path or None, baseline_model=baseline_model, trust_pickle=trust_pickle,
                        input_spec=input_spec, input_data=input_data)
    text = gate.markdown(verdict)
    typer.echo(text)
    if summary:
        gate.write(summary, text)
    if junit:
        gate.write(junit, gate.junit(verdict))
    raise typer.Exit(verdict.exit_code)

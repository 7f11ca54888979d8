"""The report's figures (plotly), built from a Result alone so that report.json, the study storage and a
finished run all render the same plots.

Parameter importance uses optuna's own evaluators (fANOVA when scikit-learn is installed, else PED-ANOVA)
on an in-memory study rebuilt from the measured trials of each path: the search space is conditional
(each path has its own parameters), so importances are only meaningful within one path, plus the
top-level choices (path, batch size) across all trials.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, Callable

from navigator import objective as objectives
from navigator.lazy import require
from navigator.report import front
from navigator.records import MEASURED, Result, TrialOutcome

# One colour per path, stable across figures (plotly's qualitative palette).
_PALETTE = ("#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692", "#B6E880",
            "#FF97FF", "#FECB52")
_STATUS_SYMBOL = {"ok": "circle", "unstable": "circle-open", "screened": "circle-dot", "invalid": "x",
                  "failed": "x-thin", "timeout": "hourglass", "crashed": "star-triangle-down"}


def _go() -> Any:
    return require("plotly.graph_objects")


def _value(o: TrialOutcome, objective: str) -> float:
    assert o.bench is not None
    return objectives.get(objective).value(o.bench)


def _label(objective: str) -> str:
    return objectives.get(objective).label


def _colors(result: Result) -> dict[str, str]:
    names = list(dict.fromkeys(o.config.path for o in result.outcomes))
    return {n: _PALETTE[i % len(_PALETTE)] for i, n in enumerate(names)}


def _layout(fig: Any, title: str, x: str, y: str, **more: Any) -> Any:
    layout = {"template": "plotly_white", "height": 420, "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
              "legend": {"title": "path"}, **more}
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, **layout)
    return fig


def _params_text(o: TrialOutcome) -> str:
    items = {**o.config.convert, **o.config.runtime}
    return "<br>".join(f"{k}={v}" for k, v in items.items()) or "defaults"


def history(result: Result) -> Any:
    """Every measured trial's objective by trial number, coloured by path, with the best so far."""
    go, colors = _go(), _colors(result)
    fig = go.Figure()
    measured = [o for o in result.outcomes if o.status in MEASURED and o.bench]
    for path in colors:
        mine = [o for o in measured if o.config.path == path]
        if mine:
            fig.add_trace(go.Scatter(
                x=[o.config.number for o in mine], y=[_value(o, result.objective) for o in mine], mode="markers",
                name=path, marker={"color": colors[path], "size": 9,
                                   "symbol": [_STATUS_SYMBOL[o.status] for o in mine]},
                text=[f"trial {o.config.number} ({o.status})<br>{_params_text(o)}" for o in mine],
                hoverinfo="text+y"))
    best: list[float] = []
    numbers = []
    for o in sorted((o for o in measured if o.status == "ok"), key=lambda o: o.config.number):
        v = _value(o, result.objective)
        best.append(objectives.get(result.objective).best((best[-1], v)) if best else v)
        numbers.append(o.config.number)
    if best:
        fig.add_trace(go.Scatter(x=numbers, y=best, mode="lines", line={"shape": "hv", "color": "#222"},
                                 name="best so far"))
    return _layout(fig, "Optimization history", "trial", _label(result.objective))


def per_path(result: Result) -> Any:
    """The best valid figure of each path; paths without one are listed with their failure count."""
    go, colors = _go(), _colors(result)
    names, values, texts = [], [], []
    for path in colors:
        mine = [o for o in result.outcomes if o.config.path == path]
        ok = [o for o in mine if o.status in MEASURED and o.bench]
        broken = sum(o.status not in MEASURED for o in mine)
        best = max(ok, key=lambda o: objectives.get(result.objective).score(o.bench)) if ok else None  # type: ignore[arg-type]
        names.append(path)
        values.append(_value(best, result.objective) if best else 0.0)
        texts.append(f"trial {best.config.number}, {len(ok)} valid, {broken} failed" if best
                     else f"no valid trial ({broken} failed)")
    fig = go.Figure(go.Bar(x=names, y=values, text=texts, textposition="auto",
                           marker={"color": [colors[n] for n in names]}))
    return _layout(fig, "Best trial per path", "path", _label(result.objective), showlegend=False)


def throughput_latency(result: Result) -> Any:
    """Throughput against p99 latency for every measured trial, with the Pareto front."""
    go, colors = _go(), _colors(result)
    measured = [o for o in result.outcomes if o.status in MEASURED and o.bench]
    fig = go.Figure()
    for path in colors:
        mine = [o for o in measured if o.config.path == path]
        if mine:
            fig.add_trace(go.Scatter(
                x=[o.bench.p99_ms for o in mine if o.bench], y=[o.bench.throughput for o in mine if o.bench],
                mode="markers", name=path, marker={"color": colors[path], "size": 9},
                text=[f"trial {o.config.number} batch {o.config.batch_size}<br>{_params_text(o)}" for o in mine],
                hoverinfo="text+x+y"))
    # the front of the trials within every constraint, by p99 (the line steps from point to point)
    points = [(o.bench.throughput, o.bench.p99_ms) for o in sorted(front.points(result), key=lambda o: o.bench.p99_ms)  # type: ignore[union-attr]
              if o.bench]
    limit = result.settings.latency_limit_ms if result.settings else None
    if limit is not None:
        fig.add_vline(x=limit, line={"color": "#8a1c1c", "dash": "dash"}, annotation_text=f"p99 limit {limit:g} ms")
    if points:
        fig.add_trace(go.Scatter(x=[p[1] for p in points], y=[p[0] for p in points],
                                 mode="lines+markers", name="Pareto front",
                                 line={"color": "#222", "dash": "dot", "shape": "hv"},
                                 marker={"symbol": "diamond-open", "size": 13, "color": "#222"}))
    return _layout(fig, "Throughput vs p99 latency", "p99 latency (ms)", "throughput (inferences/s)")


def _evaluator() -> tuple[Any, str]:
    optuna = require("optuna")
    try:
        import sklearn  # noqa: F401  (fANOVA's random forest)

        return optuna.importance.FanovaImportanceEvaluator(seed=0), "fANOVA"
    except ImportError:
        return optuna.importance.PedAnovaImportanceEvaluator(), "PED-ANOVA"


def _importance_of(trials: list[tuple[dict[str, Any], float]], direction: str) -> dict[str, float]:
    """optuna's importance over (params, value) pairs; only parameters that vary and appear in every trial."""
    optuna = require("optuna")
    names = [k for k in trials[0][0] if all(k in p for p, _ in trials) and len({repr(p[k]) for p, _ in trials}) > 1]
    if not names or len(trials) < 3:
        return {}
    study = optuna.create_study(direction=direction)
    dists = {k: optuna.distributions.CategoricalDistribution(sorted({p[k] for p, _ in trials}, key=repr))
             for k in names}
    study.add_trials([optuna.trial.create_trial(params={k: p[k] for k in names}, distributions=dists, value=v)
                      for p, v in trials])
    evaluator, _ = _evaluator()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dict(optuna.importance.get_param_importances(study, evaluator=evaluator, params=names))


def importances(result: Result) -> dict[str, dict[str, float]]:
    """'all trials' -> importance of path / batch size; each path -> importance of its own parameters."""
    require("optuna").logging.set_verbosity(logging.ERROR)  # as the search does: no line per study
    direction = objectives.get(result.objective).direction
    ok = [o for o in result.outcomes if o.status == "ok" and o.bench]
    out: dict[str, dict[str, float]] = {}
    top = [({"path": o.config.path, "batch_size": o.config.batch_size}, _value(o, result.objective)) for o in ok]
    if top:
        out["all trials"] = _importance_of(top, direction)
    for path in dict.fromkeys(o.config.path for o in ok):
        mine = [({**o.config.convert, **o.config.runtime}, _value(o, result.objective))
                for o in ok if o.config.path == path]
        out[path] = _importance_of(mine, direction)
    return {k: v for k, v in out.items() if v}


def importance(result: Result) -> Any:
    """Horizontal bars of optuna's parameter importances, one group per path."""
    go = _go()
    fig = go.Figure()
    found = importances(result)
    colors = _colors(result)
    for group, values in found.items():
        names = list(values)[::-1]
        fig.add_trace(go.Bar(y=[f"{group}: {n}" for n in names], x=[values[n] for n in names], orientation="h",
                             name=group, marker={"color": colors.get(group, "#888")}))
    _, name = _evaluator()
    title = f"Parameter importance ({name}, per path, on {_label(result.objective)})"
    if not found:
        fig.add_annotation(text="too few valid trials with varying parameters for an importance estimate",
                           showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    return _layout(fig, title, "importance (sums to 1 within a group)", "",
                   height=max(320, 40 + 24 * sum(len(v) for v in found.values())))


def accuracy(result: Result) -> Any:
    """Largest absolute error against the source per trial (log scale) beside the tolerance it had."""
    go, colors = _go(), _colors(result)
    fig = go.Figure()
    floor = 1e-12  # exact matches drawn at the floor of the log axis
    for path in colors:
        mine = [o for o in result.outcomes if o.config.path == path and o.validation and o.validation.outputs]
        if not mine:
            continue
        errs = [max(c.max_abs for c in o.validation.outputs) for o in mine if o.validation]
        fig.add_trace(go.Scatter(
            x=[o.config.number for o in mine], y=[max(e, floor) for e in errs], mode="markers", name=path,
            marker={"color": colors[path], "size": 9, "symbol": [_STATUS_SYMBOL[o.status] for o in mine]},
            text=[f"trial {o.config.number} ({o.status}): max abs {e:.3g}<br>" + "<br>".join(
                f"{c.name}: abs {c.max_abs:.3g} rel {c.max_rel:.3g} atol {c.atol:.3g} rtol {c.rtol:.3g}"
                for c in o.validation.outputs) for o, e in zip(mine, errs) if o.validation],
            hoverinfo="text"))
        fig.add_trace(go.Scatter(
            x=[o.config.number for o in mine], y=[max(c.atol for c in o.validation.outputs) for o in mine
                                                   if o.validation],
            mode="markers", marker={"symbol": "line-ew-open", "size": 14, "color": colors[path]},
            name=f"{path} atol", showlegend=False, hoverinfo="y"))
    return _layout(fig, "Accuracy: max absolute error vs the source per trial (dash: its atol)", "trial",
                   "max abs error", yaxis_type="log")


def serving_curve(result: Result) -> Any:
    """perf_analyzer through the real server: throughput against concurrency, default and tuned serving
    configurations (p99 in the hover); None when the run did not serve the model."""
    s = result.serving
    curves = [("default serving config", s.default), ("tuned serving config", s.best)] if s else []
    curves = [(name, t) for name, t in curves if t is not None and t.points]
    if len(curves) == 2 and curves[1][1] is curves[0][1]:
        curves = curves[:1]
    if not curves:
        return None
    go = _go()
    fig = go.Figure()
    for name, t in curves:
        assert t is not None  # filtered above
        fig.add_trace(go.Scatter(x=[p.concurrency for p in t.points], y=[p.throughput for p in t.points],
                                 mode="lines+markers", name=name,
                                 text=[f"p50 {p.p50_ms:.2f} ms, p99 {p.p99_ms:.2f} ms, queue {p.queue_ms:.2f} ms"
                                       f"{'' if p.stable else ' (unstable)'}" for p in t.points],
                                 hoverinfo="text+x+y"))
    return _layout(fig, "Served by tritonserver (perf_analyzer)", "concurrency", "throughput (inferences/s)")


FIGURES: dict[str, Callable[[Result], Any]] = {
    "history": history, "per_path": per_path, "throughput_latency": throughput_latency,
    "importance": importance, "accuracy": accuracy, "serving": serving_curve}

"""Result -> report.html: one self-contained page (plotly.js inlined, no network needed to open it)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from navigator.lazy import require
from navigator.records import STATUSES, TUNED_BASELINE, Result, TrialOutcome, to_dict
from navigator.report import front, headline, plots


_params = headline.params


def _err(o: TrialOutcome) -> float:
    return max((c.max_abs for c in o.validation.outputs), default=0.0) if o.validation else 0.0


def figures(result: Result) -> list[str]:
    """Each figure as an HTML fragment (a div and its script); plotly.js itself is inlined once. A figure
    whose data the run does not have (None) is left out."""
    out = []
    for name, make in plots.FIGURES.items():
        fig = make(result)
        if fig is None:
            continue
        out.append(fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"plot-{name}",
                               config={"displaylogo": False, "responsive": True}))
    return out


def _settings(result: Result) -> dict[str, Any]:
    """The settings table: the study's, this run's memory cap, the study's trial time."""
    if result.settings is None:
        return {}
    memory = {"memory_bytes": result.local.memory_bytes} if result.local else {}
    return {**to_dict(result.settings), **memory, "study_elapsed_s": result.study_elapsed_s}


def render(result: Result) -> str:
    """The whole page as text."""
    jinja2 = require("jinja2")
    offline = require("plotly.offline")
    env = jinja2.Environment(loader=jinja2.PackageLoader("navigator.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=False)
    env.globals.update(params=_params, err=_err, status=lambda o: front.status(result, o), metric_cell=headline.metric_cell,
                       median=statistics.median, distinguishable=headline.distinguishable)
    w = result.winner
    head = headline.build(result)
    vs_base = next((s for s in head.speedups if s.against == TUNED_BASELINE), None)
    return env.get_template("report.html.j2").render(
        r=result, w=w, b=result.baseline, vs_base=vs_base, head=head,
        max_err=_err(w) if w else 0.0,
        by_status={s: n for s in STATUSES if (n := sum(o.status == s for o in result.outcomes))},
        settings=_settings(result), metric=result.metric,
        metric_source=result.settings.metric_source if result.settings else None,
        metric_column=any(o.metric is not None for o in result.outcomes), notes=result.notes, unavailable=result.unavailable,
        precision_note=headline.PRECISION_RUN,
        figures=figures(result), plotly_js=offline.get_plotlyjs())


def write(result: Result, out: Path) -> Path:
    """report.html in `out` (written to a temporary name, then renamed)."""
    from navigator.osutil import atomic_write

    target = out / "report.html"
    atomic_write(target, render(result))
    return target

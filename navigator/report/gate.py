"""The gate's verdict as a Markdown summary (a pull-request comment, $GITHUB_STEP_SUMMARY) and as JUnit
XML (one test case per criterion), which GitHub Actions, GitLab CI and Jenkins display."""

from __future__ import annotations

import os
import statistics
import xml.etree.ElementTree as ET
from pathlib import Path

from navigator.report.check import Side, Verdict


def _figures(s: Side) -> str:
    if s.failure or not s.throughput:
        return "no winner"
    own = f"winner {s.path} (trial {s.number}, batch {s.batch_size})"
    how = f"; measured with {s.measured}, which served it better" if s.measured else ""
    return (f"{own}{how}: {statistics.median(s.throughput):.1f} inferences/s, p99 "
            f"{statistics.median(s.p99_ms):.3f} ms over {len(s.throughput)} measurement(s)")


def markdown(v: Verdict) -> str:
    failed = ", ".join(c.name for c in v.criteria if not c.ok)
    head = ("### :x: navigator check: no valid trial" if v.candidate.failure
            else f"### :x: navigator check: regression ({failed})" if v.regression
            else "### :white_check_mark: navigator check: no regression")
    how = ("both winners re-measured here in interleaved rounds, compared round by round"
           if v.mode == "interleaved" else "figures from both reports (their finalists' repeated rounds)")
    lines = [head, "", f"Allowed slowdown {v.max_regression:.0%}; {how}. A regression needs the whole 95% "
             "confidence interval past the allowed margin.", "",
             f"- baseline: {_figures(v.baseline)}; report `{v.baseline.report}`",
             f"- candidate: {_figures(v.candidate)}; report `{v.candidate.report}`", "",
             "| check | result | detail |", "|---|---|---|"]
    for c in v.criteria:
        lines.append(f"| {c.name} | {'pass' if c.ok else '**FAIL**'} | {c.detail.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def junit(v: Verdict) -> str:
    suite = ET.Element("testsuite", name="navigator.check", tests=str(len(v.criteria)),
                       failures=str(sum(not c.ok for c in v.criteria)), errors="0", skipped="0")
    for c in v.criteria:
        case = ET.SubElement(suite, "testcase", classname="navigator.check", name=c.name)
        if c.ok:
            ET.SubElement(case, "system-out").text = c.detail
        else:
            failure = ET.SubElement(case, "failure", message=c.detail, type="regression")
            failure.text = c.detail
    root = ET.Element("testsuites", name="navigator", tests=suite.get("tests", "0"),
                      failures=suite.get("failures", "0"))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write(path: Path, text: str) -> None:
    """Write atomically: a CI step never reads a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)

"""Typed records that cross stage boundaries: a trial's configuration and outcome, the finalists, the
serving figures and the Result of a study. The records that describe a model and what a conversion path
makes of it (model_records.py) and the JSON round-trip (`to_dict` / `from_dict`, codec.py) are imported
from here too."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from navigator.codec import UnknownKeys as UnknownKeys, from_dict as from_dict, to_dict as to_dict
from navigator.model_records import (Artifact as Artifact, IOSpec as IOSpec, Params as Params, ParamSpec as ParamSpec,
                                     Scalar as Scalar, TensorSpec as TensorSpec, TritonModel as TritonModel)
from navigator.settings import LocalSettings, StudySettings

# ok: valid and stable; unstable: valid, but the benchmark never met the stability rule;
# invalid: outputs differ from the source; failed: an exception; timeout / crashed: the worker process
# ran past the trial timeout / died (signal, abort, out of memory); screened: valid, but its short first
# measurement showed it could not join the top trials, so it was not measured in full (never a finalist).
Status = Literal["ok", "unstable", "screened", "invalid", "failed", "timeout", "crashed"]
STATUSES = ("ok", "unstable", "screened", "invalid", "failed", "timeout", "crashed")
MEASURED = ("ok", "unstable")  # valid outputs and a full benchmark figure
SCORED = ("ok", "screened")  # a figure the sampler is told (a screened trial's is its short measurement)
BROKEN = ("invalid", "failed", "timeout", "crashed")  # no usable figure; repeating it changes nothing


@dataclass(frozen=True)
class TrialConfig:
    """What one trial runs: the conversion path, its conversion and runtime parameters, the batch."""

    number: int
    path: str
    convert: Params
    runtime: Params
    batch_size: int


@dataclass(frozen=True)
class OutputCheck:
    name: str
    max_abs: float
    max_rel: float
    atol: float
    rtol: float
    nonfinite: int
    ok: bool
    # Integer outputs (class labels) are compared exactly: the share of elements equal to the source's;
    # class scores of an INT8 trial: the share of rows with the source's top-1 class.
    agreement: float | None = None
    # NaN/Inf values in the source's output: the trial must have them at the same positions (`nonfinite`
    # counts where it does not); the finite rest is what max_abs/max_rel measure.
    source_nonfinite: int = 0
    cosine: float | None = None  # class scores of an INT8 trial: the rows' mean cosine similarity


@dataclass(frozen=True)
class Validation:
    ok: bool
    reason: str
    outputs: tuple[OutputCheck, ...]


@dataclass(frozen=True)
class Bench:
    """Timings of one runner at one batch size; latencies in milliseconds per call."""

    batch_size: int
    throughput: float
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    cv: float
    windows: int
    calls: int
    stable: bool
    # GPU runners: the same measurement with host->device input and device->host output copies (what a
    # Triton client's request pays); 0.0 where not measured (CPU runners have no copies to add).
    host_throughput: float = 0.0
    host_p99_ms: float = 0.0
    clock: str = "host"  # what timed each call: the host's perf_counter, or "cuda events" on a GPU


@dataclass(frozen=True)
class SourceRecord:
    """Where a run's model and inputs are, as files (a live object is saved first): what a trial worker
    loads, what report.json records for check --model and load_result, and what a shared study
    publishes to the workers that join it (with trust_pickle False: each machine decides).
    `fingerprint`: the model file's sha256 where the file is the user's own (None: navigator saved it)."""

    model: str
    input_spec: str | None = None
    input_data: str | None = None
    trust_pickle: bool = False
    fingerprint: str | None = None
    calibration_data: str | None = None  # the INT8 paths' calibration inputs (.npz)
    generated_inputs: bool = False  # input_data holds inputs navigator drew at random (never calibrated on)


@dataclass(frozen=True)
class WorkerSpec:
    """How a trial worker process loads the same source as the parent (a file, never a live object):
    `fingerprint` is the parent's identity of the model, the cache's key."""

    source: SourceRecord
    name: str
    fingerprint: str
    batch: int
    cache_dir: str
    metric: str | None = None  # the user metric, cloudpickled (source/metric.py), evaluated in every trial


@dataclass(frozen=True)
class TrialOutcome:
    config: TrialConfig
    status: Status
    error: str = ""
    validation: Validation | None = None
    bench: Bench | None = None
    convert_s: float = 0.0
    cached: bool = False
    duration_s: float = 0.0
    load_s: float = 0.0  # loading the runner plus its first call: where torch.compile compiles
    metric: float | None = None  # the user metric on this trial's runner (higher is better)
    precision_run: str | None = None  # what the loaded runner reports computing in (Runner.precision_run)
    precision: str = ""  # its tolerance class (trial/validate.py TOLERANCES); "" where not known


# Tolerance classes of quantized arithmetic. Where a quantized trial meets the constraints, the best trial
# of each precision group (role -> classes) joins the finalists, so that the groups' figures are measured
# in the same interleaved rounds; a quantized winner is shown beside the BESIDE_QUANTIZED ones.
QUANTIZED = ("int8", "fp8")
PRECISION_ROLES = {"best fp32": ("fp32", "tf32"), "best fp16/bf16": ("fp16", "bf16"), "best int8/fp8": QUANTIZED}
BESIDE_QUANTIZED = ("best fp32", "best fp16/bf16")


# The source framework with its own best settings: the best valid trial of the baseline's path (threads,
# its own options), re-measured with the finalists; the headline speedup is against it, so that a
# thread setting the baseline could have had is not sold as the conversion's gain.
TUNED_BASELINE = "tuned baseline"
# A finalist whose rounds differ by more than this factor (or a ratio whose 95% interval spans more)
# was not measured steadily: its ratio is reported as the interval, flagged unstable.
UNSTABLE_SPREAD = 2.0


@dataclass(frozen=True)
class Finalist:
    """A top trial (or a baseline) re-measured in interleaved rounds at the end of the search."""

    number: int
    path: str
    role: str
    throughput: tuple[float, ...]
    p99_ms: tuple[float, ...]


@dataclass(frozen=True)
class Comparison:
    """Winner vs another finalist: ratio of the objective (>1 = winner better), paired by round,
    with a 95% bootstrap confidence interval; `distinct` is False when the interval holds 1;
    `unstable` when either side's rounds vary too much for a ratio to mean anything by itself."""

    against: str
    number: int
    ratio: float
    low: float
    high: float
    distinct: bool
    unstable: bool = False


@dataclass(frozen=True)
class ServingConfig:
    """Triton's own knobs for a deployment, and the runtime threads each model instance uses."""

    max_batch_size: int
    instances: int = 1
    # On by default where max_batch_size > 0, as Triton's batcher guide advises (dynamic_batching {}:
    # batches as large as possible up to max_batch_size, no delay); the serving search tunes it.
    dynamic_batching: bool = True
    max_queue_delay_us: int = 0
    preferred_batch_sizes: tuple[int, ...] = ()
    threads: int | None = None  # per instance; None keeps the winning trial's own setting
    streams: int | None = None  # OpenVINO streams per instance; None keeps the trial's own


@dataclass(frozen=True)
class PerfPoint:
    """perf_analyzer at one concurrency: inferences/s, client latency percentiles, server queue/compute."""

    concurrency: int
    throughput: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    queue_ms: float
    compute_ms: float
    stable: bool = True


@dataclass(frozen=True)
class ServeCheck:
    """The served model's answers over one protocol against the source framework's."""

    protocol: str  # http or grpc
    ok: bool
    reason: str
    outputs: tuple[OutputCheck, ...] = ()


@dataclass(frozen=True)
class ServingTrial:
    """One serving configuration measured by perf_analyzer; score = best throughput within the p99 limit."""

    number: int
    config: ServingConfig
    points: tuple[PerfPoint, ...] = ()
    score: float | None = None
    error: str = ""


@dataclass(frozen=True)
class ServingReport:
    """What the real server did with the deployment: answers checked, figures, the serving search."""

    deployment: str  # "python" (the python-backend twin) or the native backend's name
    model: str
    checks: tuple[ServeCheck, ...] = ()
    batch_size: int = 1
    concurrency: tuple[int, ...] = ()
    latency_limit_ms: float | None = None
    default: ServingTrial | None = None
    best: ServingTrial | None = None
    trials: tuple[ServingTrial, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Spend:
    """Where one path's share of the budget went: its trials by status, their seconds (converting;
    loading, which includes compiling on first call; in all), and its trials kept back for cost."""

    path: str
    trials: int
    by_status: dict[str, int]
    trial_s: float
    convert_s: float
    load_s: float
    deferred: int = 0  # enqueued trials that waited for cheaper untried paths
    skipped: int = 0  # configurations never started: expected to cost more than the search had left


@dataclass(frozen=True)
class Figure:
    """One trial's figures as the decision saw them: the medians of its interleaved rounds, or (not
    re-measured) its search-time benchmark."""

    role: str
    number: int
    path: str
    params: str
    batch_size: int
    throughput: float
    p99_ms: float
    rounds: tuple[float, ...]  # infer/s per interleaved round; () when not re-measured
    text: str


@dataclass(frozen=True)
class Speedup(Comparison):
    """A comparison of the winner and what the reports say of it."""

    text: str = ""


@dataclass(frozen=True)
class Headline:
    """The numbers the decision used, in words (report/headline.py builds it)."""

    winner: Figure | None
    baselines: tuple[Figure, ...]
    speedups: tuple[Speedup, ...]  # the headline one (against the tuned baseline) first
    engines: str  # which engine measured the winner and which one the written config runs
    lines: tuple[str, ...]  # all of the above in words, for the CLI and the report headers
    # A quantized winner's unquantized alternatives (records.BESIDE_QUANTIZED): the best fp32 and the best
    # fp16/bf16 trial, re-measured with the finalists where the budget had room for them; () otherwise.
    beside: tuple[Figure, ...] = ()


@dataclass(frozen=True)
class CacheStats:
    """The conversion cache in this run: conversions reused, conversions made."""

    hits: int = 0
    misses: int = 0


@dataclass(frozen=True)
class WorkerRecord:
    """One worker of a shared study: the hardware it reported, the trials it ran."""

    hardware: dict[str, Any]
    trials: tuple[int, ...]


@dataclass(frozen=True)
class StudySummary:
    """Who ran what in a shared study (`retries`: retry trial number -> the dead worker's trial)."""

    name: str
    storage: str
    hardware_class: str | None
    workers: dict[str, WorkerRecord]
    dead_worker_trials: tuple[int, ...]
    retries: dict[str, int]
    not_ranked_other_hardware: tuple[int, ...]
    versions_differ: tuple[str, ...]
    still_running: int


# report.json's layout; version 1 (no "version" key) is what navigator wrote before the Result was typed.
REPORT_VERSION = 2


@dataclass(frozen=True)
class Result:
    """What a study produced: every outcome, the winner, the baseline and where the outputs are, and
    everything the reports say about the run. report.json is `to_dict` of it, read back by `from_dict`."""

    model: str
    objective: str
    outcomes: tuple[TrialOutcome, ...]
    winner: TrialOutcome | None
    baseline: TrialOutcome | None
    speedup: float | None
    repository: Path | None
    report: Path | None
    environment: dict[str, str] = field(default_factory=dict)
    finalists: tuple[Finalist, ...] = ()
    comparisons: tuple[Comparison, ...] = ()
    serving: ServingReport | None = None
    notes: tuple[str, ...] = ()
    unavailable: dict[str, str] = field(default_factory=dict)  # path -> why it was not searched here
    source: SourceRecord | None = None
    settings: StudySettings | None = None
    local: LocalSettings | None = None
    study_elapsed_s: float = 0.0  # trial time the study spent, over every run
    study: StudySummary | None = None  # a shared study's workers
    cache: CacheStats = CacheStats()
    metric: dict[str, float] = field(default_factory=dict)  # the user metric: "winner", "baseline" -> value
    engines: dict[str, str] = field(default_factory=dict)  # "measured", "served": the engines' names
    source_nonfinite: dict[str, Any] = field(default_factory=dict)  # output -> the source's own NaN/Inf
    headline: Headline | None = None  # the report's words (filled by the report writer)
    trials_by_status: dict[str, int] = field(default_factory=dict)  # filled by the report writer
    spend: tuple[Spend, ...] = ()  # per path, in the order the study first ran them
    phases: dict[str, float] = field(default_factory=dict)  # seconds of this run: search, finalists, deploy
    version: int = REPORT_VERSION

    @property
    def best(self) -> TrialOutcome | None:
        return self.winner

    @property
    def reports(self) -> dict[str, Path]:
        """The written reports by format: 'json', 'md', 'html'."""
        if self.report is None:
            return {}
        return {s: p for s in ("json", "md", "html") if (p := self.report.with_suffix("." + s)).is_file()}

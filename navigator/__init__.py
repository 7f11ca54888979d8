"""navigator: finds the fastest correct way to serve a trained model on NVIDIA Triton Inference Server.

    import navigator
    result = navigator.optimize(model, sample_inputs, budget="5m", out="navigator-out/mymodel")
    result.best, result.outcomes, result.repository, result.reports
    navigator.load_runner(result)({"x": array})  # the winner, loaded in this process
    navigator.check("base/report.json", "new/report.json").exit_code
    navigator.load_result("navigator-out/mymodel")
"""

from navigator.pyapi import ProgressEvent, Verdict, check, load_result, load_runner, optimize
from navigator.errors import InputError, NavigatorError, StudyMismatchError, UnavailableError
from navigator.records import Bench, Result, TrialConfig, TrialOutcome, Validation

__all__ = [
    "Bench",
    "InputError",
    "NavigatorError",
    "ProgressEvent",
    "Result",
    "StudyMismatchError",
    "TrialConfig",
    "TrialOutcome",
    "UnavailableError",
    "Validation",
    "Verdict",
    "check",
    "load_result",
    "load_runner",
    "optimize",
]
__version__ = "0.1.0"

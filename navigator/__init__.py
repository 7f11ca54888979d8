"""navigator: finds the fastest correct way to serve a trained model on NVIDIA Triton Inference Server.

    import navigator
    result = navigator.optimize(model, sample_inputs, budget="5m", out="navigator-out/mymodel")
    result.best, result.outcomes, result.repository, result.report
"""

from navigator.api import optimize
from navigator.errors import InputError, NavigatorError, StudyMismatchError, UnavailableError
from navigator.records import Bench, Result, TrialConfig, TrialOutcome, Validation

__all__ = [
    "Bench",
    "InputError",
    "NavigatorError",
    "Result",
    "StudyMismatchError",
    "TrialConfig",
    "TrialOutcome",
    "UnavailableError",
    "Validation",
    "optimize",
]
__version__ = "0.1.0"

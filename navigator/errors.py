"""One root error and a few leaves; only the CLI turns them into exit code 2."""

import re

# Terminal colour and cursor codes that some libraries (the torch ONNX exporter) put in messages.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    """The text without terminal escape codes, for reports and one-line errors."""
    return _ANSI.sub("", text)


class NavigatorError(Exception):
    """Root of every error navigator raises on purpose. The message names the problem and the fix."""


class InputError(NavigatorError):
    """The user's model, data, flags or search space are unusable."""


class UnavailableError(NavigatorError):
    """A framework, runtime or device that a step needs is not installed or not present."""


class StudyMismatchError(NavigatorError):
    """An existing study in the output directory belongs to another model, space or objective."""


class TrialError(NavigatorError):
    """A trial failed (conversion, loading, running); recorded on the trial, never escapes the study."""


class ServeError(NavigatorError):
    """A Triton server would not start, load the repository, or answer; the message carries its log's tail."""

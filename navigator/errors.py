"""One root error and a few leaves; only the CLI turns them into exit code 2."""

import re

# Terminal colour and cursor codes that some libraries (the torch ONNX exporter) put in messages.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    """The text without terminal escape codes, for reports and one-line errors."""
    return _ANSI.sub("", text)


def one_line(exc: BaseException) -> str:
    """The error's type and first line; where a traceback inside the message ends in the real cause (the
    TorchScript interpreter's "The following operation failed ..."), that last line too."""
    text = [line.strip() for line in strip_ansi(str(exc)).strip().splitlines() if line.strip()]
    cause = text[-1] if len(text) > 1 and re.match(r"^[A-Za-z_.]*(Error|Exception): ", text[-1]) else ""
    return f"{type(exc).__name__}: {text[0] if text else ''}{' ... ' + cause if cause else ''}"[:500]


class NavigatorError(Exception):
    """Root of every error navigator raises on purpose. The message names the problem and the fix."""


class InputError(NavigatorError):
    """The user's model, data, flags or search space are unusable."""


class UntrustedPickleError(InputError):
    """A model file is a pickle (unpickling runs its code) and this invocation did not pass --trust-pickle."""


class InvalidModelError(InputError):
    """A model file (or the inputs given for it) that cannot be loaded as a model: corrupt, truncated,
    of an unknown format, or not matching its input spec."""


class UnavailableError(NavigatorError):
    """A framework, runtime or device that a step needs is not installed or not present."""


class StudyMismatchError(NavigatorError):
    """An existing study in the output directory belongs to another model, space or objective."""


class TrialError(NavigatorError):
    """A trial failed (conversion, loading, running); recorded on the trial, never escapes the study."""


class ServeError(NavigatorError):
    """A Triton server would not start, load the repository, or answer; the message carries its log's tail."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a study (still a KeyboardInterrupt to a caller of the API); the message says what
    was kept and how to continue. The CLI prints it as one line and exits with 130."""

"""How a failed run ends: the error behind the library's wrapping, in one line that says what to fix.

``derain_zoo.cli.main`` catches the user's mistakes and a DataLoader worker's death and hands them to
``one_line``; jsonargparse's union-type dumps, torch's worker tracebacks and ``[Errno]`` prefixes are
peeled off so the reason comes first.
"""

from __future__ import annotations

import os
import re
import traceback

STOPPED = "the run stopped (predict leaves no unfinished output)"
WORKER_DIED = re.compile(r"DataLoader worker \(pid.*?\) (?:is killed by signal: (?P<signal>[^.]+)|exited unexpectedly)")
UNION_MESSAGE = "Does not validate against any of the Union subtypes"


def one_line(error: BaseException) -> str:
    """The message of a user error as one line: the cause jsonargparse or a DataLoader worker wrapped, first."""
    return " ".join(_worker_message(_os_message(_union_cause(_weights_cause(error)))).split())


def worker_death(error: BaseException) -> str | None:
    """One line for a DataLoader worker that died under the run (None for any other error).

    Workers defer SIGTERM (``derain_zoo.data.workers``), but one killed before it could (just started, or
    past its grace) ends the run as SIGTERM to the main process does. The OOM killer or a full /dev/shm (SIGBUS) kill a
    worker outright: torch says "DataLoader worker (pid N) is killed by signal: ..." or "exited
    unexpectedly", or, when the worker dies while handing a batch over, the main process's read of it
    fails with a reset connection inside the DataLoader.
    """
    match = WORKER_DIED.search(str(error))
    if match is not None and match["signal"] == "Terminated":
        return f"terminated (SIGTERM) while DataLoader workers ran; {STOPPED}"
    if match is not None:
        how = f"was killed by signal: {match['signal']}" if match["signal"] else "exited unexpectedly"
    elif isinstance(error, (ConnectionError, EOFError)) and _raised_in_dataloader(error):
        how = "died while handing over a batch"
    else:
        return None
    return (
        f"a DataLoader worker {how} (out of memory, or /dev/shm full?); {STOPPED}; free memory or pass "
        "--data.num_workers=0"
    )


def _raised_in_dataloader(error: BaseException) -> bool:
    """Whether torch's DataLoader was on the stack where ``error`` was raised (a batch being received)."""
    frames = traceback.extract_tb(error.__traceback__)
    return any(frame.filename.endswith(os.path.join("torch", "utils", "data", "dataloader.py")) for frame in frames)


def _worker_message(text: str) -> str:
    """The message of an error raised in a DataLoader worker, without torch's "Caught ... Original Traceback" text."""
    if "Original Traceback" not in text:
        return text
    last = text.strip().splitlines()[-1]  # "ValueError: truncated frame: ..."
    return last.split(": ", 1)[1] if ": " in last else last


def _os_message(error: BaseException) -> str:
    """``<file>: <reason>`` for a bare OS error (``[Errno 17] File exists: 'x'`` says neither what nor why first)."""
    if isinstance(error, OSError) and error.filename is not None and str(error).startswith("[Errno"):
        where = f"{error.filename}" + (f" -> {error.filename2}" if error.filename2 is not None else "")
        return f"{where}: {error.strerror.lower() if error.strerror else error}"
    return str(error)


def _union_cause(error: BaseException) -> BaseException:
    """The constructor's own error behind jsonargparse's 500-900 character union-type message (``tile_size=0``)."""
    if UNION_MESSAGE not in str(error):
        return error
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if UNION_MESSAGE not in str(cause):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return error


def _weights_cause(error: BaseException) -> BaseException:
    """The WeightsError behind ``error``: jsonargparse wraps constructor errors in a long union-type message."""
    from derain_zoo.weights import WeightsError

    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, WeightsError):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return error

"""DataLoader workers that fail in one line and never leave the main process waiting.

A worker hands each batch over through shared memory. Left to the queue, that copy happens in a
feeder thread: when ``/dev/shm`` is full or the file-size limit (``ulimit -f``) too low, the thread
printed ``RuntimeError: unable to resize file`` and dropped the batch, and the main process waited
for it forever. ``SharedCollate`` moves the batch into shared memory inside the worker's own fetch,
so the failure travels to the main process as the worker's error. Workers defer SIGTERM: sent to
the whole process group (systemd, Slurm, ``timeout``), it killed them first and surfaced as
``DataLoader worker (pid N) is killed by signal: Terminated``; the main process gets it as well,
stops the run cleanly and shuts its workers down. A worker still alive ``SIGTERM_GRACE_S`` seconds
after its SIGTERM ends by it all the same: ignoring it for good hung the main process's exit, which
terminates leftover workers and waits for them.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import Any

from torch import Tensor
from torch.utils.data import get_worker_info


class WorkerMemoryError(RuntimeError):
    """A worker could not place a batch in shared memory; reported by the CLI in one line."""


class SharedCollate:
    """``collate_fn`` followed, in a worker process, by moving the batch's tensors into shared memory."""

    def __init__(self, collate_fn: Callable[[list[Any]], Any]) -> None:
        self.collate_fn = collate_fn

    def __call__(self, items: list[Any]) -> Any:
        batch = self.collate_fn(items)
        if get_worker_info() is not None:
            share(batch)
        return batch

    def __repr__(self) -> str:
        return f"SharedCollate({getattr(self.collate_fn, '__name__', self.collate_fn)})"


def share(batch: Any) -> None:
    """Move every tensor field of a dataclass batch into shared memory, or raise WorkerMemoryError saying why."""
    values = [getattr(batch, field.name) for field in fields(batch)] if is_dataclass(batch) else [batch]
    try:
        for value in values:
            if isinstance(value, Tensor):
                value.share_memory_()
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[-1]
        raise WorkerMemoryError(
            f"a DataLoader worker could not hand a batch to the main process through shared memory ({reason}): "
            "/dev/shm is full or the file-size limit (ulimit -f) too low; free /dev/shm, raise the limit, or pass "
            "--data.num_workers=0"
        ) from None


SIGTERM_GRACE_S = 5


def defer_sigterm(worker_id: int) -> None:
    """``worker_init_fn``: leave SIGTERM to the main process for ``SIGTERM_GRACE_S`` seconds."""
    signal.signal(signal.SIGTERM, _terminate_later)


def _terminate_later(signum: int, frame: object) -> None:
    signal.signal(signal.SIGALRM, _terminate_now)
    signal.alarm(SIGTERM_GRACE_S)


def _terminate_now(signum: int, frame: object) -> None:
    """End by SIGTERM itself, so torch reports the worker as terminated, as an undeferred SIGTERM would be."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)

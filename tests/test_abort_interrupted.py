"""Clean-up that is itself interrupted still removes the temporary output (a killed DataLoader worker's
SIGCHLD handler raises wherever Python is, once per worker that exits, the clean-up included)."""

from __future__ import annotations

from pathlib import Path

import pytest

from derain_zoo import outputs, predict


def _interrupt_first_call(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> None:
    real = getattr(module, name)
    calls = []

    def interrupted(*args: object) -> None:
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("DataLoader worker (pid 1234) is killed by signal: Killed.")
        real(*args)

    monkeypatch.setattr(module, name, interrupted)


def test_a_partial_is_removed_even_when_its_removal_is_interrupted(monkeypatch, tmp_path: Path) -> None:
    partial = tmp_path / ".out.partial-1.mp4"
    partial.write_bytes(b"half a video")
    _interrupt_first_call(monkeypatch, outputs, "remove")
    with pytest.raises(RuntimeError, match="DataLoader worker"):
        outputs.remove_despite_interrupts(partial)
    assert not partial.exists()


class _Bar:
    def close(self) -> None:
        raise RuntimeError("DataLoader worker (pid 1234) exited unexpectedly")


class _Output:
    def __init__(self) -> None:
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True


def test_every_open_output_is_aborted_when_an_earlier_step_is_interrupted() -> None:
    writer = predict.PredictionWriter.__new__(predict.PredictionWriter)
    first, second = _Output(), _Output()
    writer._open = {"a": (first, _Bar()), "b": (second, _Bar())}
    with pytest.raises(RuntimeError, match="DataLoader worker"):
        writer._abort_all()
    assert first.aborted and second.aborted and writer._open == {}

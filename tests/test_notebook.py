"""The comparison notebook executes top to bottom with its small default settings, so it cannot rot."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from derain_zoo.weights import shipped

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "compare_models.ipynb"


def test_compare_notebook_executes_and_shows_every_model():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()
    elapsed = time.perf_counter() - start
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
    assert not [out for out in outputs if out.output_type == "error"]
    markdown = "".join(out.get("data", {}).get("text/markdown", "") for out in outputs)
    assert "| rain (input) |" in markdown and "| temporal median |" in markdown
    for entry in shipped():  # the shipped weights are compared too
        assert f"| {entry.model} {entry.name} |" in markdown
    figures = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(figures) == 4  # runtime scatter, per-sequence bars, a1 and ra1 side by side
    assert elapsed < 240, f"the notebook took {elapsed:.0f} s; keep its default settings tiny"

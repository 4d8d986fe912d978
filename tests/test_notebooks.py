"""The study notebooks: stored without outputs, and executed top to bottom with every figure's
axes labelled with units (CI: ``python -m pytest tests/test_notebooks.py -m slow``)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ("01_quickstart", "02_tasd_what_if", "03_design_space", "04_minilm_tasd")

# Injected before the first cell: every plt.show() checks that each axes of each open figure has
# an x and a y label naming a unit or qualifier in parentheses ("energy (µJ)"); a colour bar
# needs its one label.
LABEL_CHECK = """
import matplotlib.pyplot as _plt

_shown = []


def _check_labels(*args, **kwargs):
    for num in _plt.get_fignums():
        fig = _plt.figure(num)
        for ax in fig.axes:
            labels = [ax.get_ylabel()] if ax.get_label() == "<colorbar>" else [
                ax.get_xlabel(), ax.get_ylabel()]
            for text in labels:
                if "(" not in text or ")" not in text:
                    raise AssertionError(f"figure {num}: axis label {text!r} names no unit")
        _shown.append(num)
    return _orig_show(*args, **kwargs)


_orig_show = _plt.show
_plt.show = _check_labels
"""


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_stored_without_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(not c.outputs and c.execution_count is None for c in code)


def redirect_figures(nb: nbformat.NotebookNode, figures: Path) -> None:
    """A notebook that saves figures (``FIG = ...``) saves them under ``figures`` instead, so that
    a test run leaves the tracked ``docs/figures`` untouched."""
    for i in reversed(range(len(nb.cells))):
        cell = nb.cells[i]
        if cell.cell_type == "code" and "FIG = " in cell.source:
            nb.cells.insert(i + 1, nbformat.v4.new_code_cell(f"FIG = Path({str(figures)!r})"))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_top_to_bottom_with_labelled_figures(name: str, tmp_path: Path) -> None:
    """Each notebook runs top to bottom (any failing cell or label check raises); its run time is
    measured by ``benchmarks/bench_notebooks.py``, not asserted here."""
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    redirect_figures(nb, tmp_path)
    nb.cells.insert(0, nbformat.v4.new_code_cell(LABEL_CHECK))
    nb.cells.append(nbformat.v4.new_code_cell("assert _shown, 'no figure was shown'"))
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()  # raises CellExecutionError on any failing cell or label check

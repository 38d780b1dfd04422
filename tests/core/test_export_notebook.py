"""The notebook export: valid nbformat, one cell per part, and its code cells run top to bottom."""

from __future__ import annotations

import sys
import types
import warnings

import nbformat
import pytest

from cnnbuilder.core.export import ExportError, generate_notebook, notebook_text

from .script_helpers import project, read_metrics


def test_notebook_is_valid_and_its_cells_run_as_a_script(tmp_path, monkeypatch):
    p = project(shapes_train=120, shapes_test=40, epochs=2, batch_size=32)
    nb = nbformat.reads(notebook_text(p), as_version=4)
    nbformat.validate(nb)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    titles = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert len(code) == 7 and [t.split("\n")[0] for t in titles[1:]] == [
        "## Setup: imports, settings and command-line options", "## Data", "## Model", "## Training",
        "## Evaluate on the test images", "## Learning curves"]
    assert code[0].startswith("#") and code[0].splitlines()[-1].startswith("!")  # the only shell line
    assert not any(line.startswith(("!", "%")) for cell in code[1:] for line in cell.splitlines())

    import matplotlib

    matplotlib.use("Agg")
    source = "\n\n".join("\n".join(line for line in cell.splitlines() if not line.startswith("!")) for cell in code)
    module = types.ModuleType("cnnb_notebook")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    monkeypatch.chdir(tmp_path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Agg cannot show(); the figure is still drawn
            exec(compile(source, "notebook", "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]
    rows = read_metrics(tmp_path / "runs" / "mnist_tutorial_cnn")
    assert [r["epoch"] for r in rows] == [1, 2]
    assert 0 <= module.test_acc <= 1 and module.fig.axes[0].get_title() == "Loss"
    assert len(module.fig.axes[0].lines[0].get_xdata()) == module.run.step  # every batch's loss plotted


def test_notebook_of_a_broken_project_is_refused():
    with pytest.raises(ExportError, match="Input block"):
        generate_notebook(project("vgg_cifar10"))


def test_missing_nbformat_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "nbformat", None)
    with pytest.raises(ExportError, match=r"pip install 'cnnbuilder\[notebook\]'"):
        notebook_text(project())

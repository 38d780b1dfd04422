"""Project -> the training script as a Jupyter notebook: one cell per part (setup, data, model,
train, evaluate, plot the curves), each after a short note, runnable top to bottom on Colab."""

from __future__ import annotations

from ..project import Project
from ..training.config import TrainConfig
from . import _template
from .script import ExportError, script_parts


def _nbformat():
    try:
        import nbformat
    except ImportError:
        raise ExportError("exporting a notebook needs the nbformat package: pip install 'cnnbuilder[notebook]'"
                          ) from None
    return nbformat


def generate_notebook(project: Project, config: TrainConfig | None = None):
    """An nbformat v4 NotebookNode (write it with `notebook_text`)."""
    nbf = _nbformat()
    doc, *parts = script_parts(project, config, filename="train.py")
    v4 = nbf.v4
    intro = doc.code.split("\n", 1)
    cells = [v4.new_markdown_cell(f"# {intro[0]}\n\nThe notebook runs in one process; the same training as a "
                                  "script for `python` or `torchrun` is `cnnbuilder export PROJECT --script`.\n\n"
                                  "Run the cells top to bottom."),
             v4.new_code_cell(_template.NOTEBOOK_PIP.strip())]
    for part in parts:
        cells.append(v4.new_markdown_cell(f"## {part.title}"))
        cells.append(v4.new_code_cell(part.code.strip("\n") + "\n\n\n" + _template.NOTEBOOK_RUN[part.name]))
    cells.append(v4.new_markdown_cell("## Evaluate on the test images"))
    cells.append(v4.new_code_cell(_template.NOTEBOOK_EVALUATE))
    cells.append(v4.new_markdown_cell("## Learning curves"))
    cells.append(v4.new_code_cell(_template.NOTEBOOK_PLOT))
    nb = v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    nbf.validate(nb)
    return nb


def notebook_text(project: Project, config: TrainConfig | None = None) -> str:
    nbf = _nbformat()
    return nbf.writes(generate_notebook(project, config)) + "\n"

"""Exporters: the training script and the notebook, siblings that share the one code generator."""

from .notebook import generate_notebook, notebook_text
from .script import ExportError, generate_script, script_parts

__all__ = ["ExportError", "generate_notebook", "generate_script", "notebook_text", "script_parts"]

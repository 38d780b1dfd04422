"""Exporters: the training script, the notebook and ONNX, siblings that share the one code generator
(onnx is imported from .onnx where it is used: it needs optional packages)."""

from .notebook import generate_notebook, notebook_text
from .script import ExportError, generate_script, script_parts

__all__ = ["ExportError", "generate_notebook", "generate_script", "notebook_text", "script_parts"]

"""Exporters: the training script and the notebook, siblings that share the one code generator."""

from .script import ExportError, generate_script, script_parts

__all__ = ["ExportError", "generate_script", "script_parts"]

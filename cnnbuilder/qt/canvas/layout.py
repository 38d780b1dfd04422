"""The auto-layout lives in the core (cnnbuilder.core.layout), so the architecture templates and
other Qt-free code can lay graphs out too; the canvas imports it from here as before."""

from ...core.layout import DX, DY, layered_layout

__all__ = ["DX", "DY", "layered_layout"]

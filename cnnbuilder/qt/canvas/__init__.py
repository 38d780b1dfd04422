"""The node canvas: painted block and edge items, the scene that mirrors the graph, the view."""

from .items import EdgeItem, NodeItem, PortItem
from .scene import BLOCK_MIME, CLIP_MIME, GraphScene
from .view import GraphView

__all__ = ["BLOCK_MIME", "CLIP_MIME", "EdgeItem", "GraphScene", "GraphView", "NodeItem", "PortItem"]

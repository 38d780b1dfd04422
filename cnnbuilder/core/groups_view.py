"""What a collapsed group shows on the canvas, read off the flat graph and its analysis.

One function (`group_view`) so the canvas holds no rule about groups and a shared core helper can
later take its place; `group_entry` says which block inside takes a connection dropped on the
collapsed block.
"""

from __future__ import annotations

from dataclasses import dataclass

from .blocks import fmt_shape
from .graph import Graph
from .shapes import Analysis


@dataclass(frozen=True)
class GroupView:
    blocks: int  # every block inside, nested groups' included
    params: int
    inputs: tuple[tuple[str, int], ...]  # graph.group_interface: (block outside, its port) read inside
    outputs: tuple[tuple[str, int], ...]  # (block inside, its port) read outside
    output_shapes: tuple[str, ...]  # one per output, "" while unknown
    error: str | None  # the first block inside that fails, "label: reason"
    waiting: bool  # the only errors inside come from a failing block upstream


def group_view(graph: Graph, analysis: Analysis, group_id: str) -> GroupView:
    nodes = graph.group_nodes(group_id)
    ins, outs = graph.group_interface(group_id)
    infos = analysis.nodes
    params = sum(infos[n].stats.params for n in nodes if n in infos and infos[n].error is None)
    shapes = []
    for nid, port in outs:
        info = infos.get(nid)
        if info is None or info.shape is None:
            shapes.append("")
        elif info.outputs and port < len(info.outputs):
            shapes.append(fmt_shape(info.outputs[port]))
        else:
            shapes.append(fmt_shape(info.shape) if port == 0 else "")
    failed = waiting = None
    for n in nodes:
        info = infos.get(n)
        if info is not None and info.error:
            text = f"{graph.node(n).label}: {info.error}"
            if not info.waiting:
                failed = text
                break
            waiting = waiting or text
    return GroupView(len(nodes), params, tuple(ins), tuple(outs), tuple(shapes), failed or waiting,
                     failed is None and waiting is not None)


def group_entry(graph: Graph, group_id: str) -> str | None:
    """The block inside that a connection dropped on the collapsed group goes to: the first one, in
    the order the data flows, that still takes an input; None where none does."""
    inside = set(graph.group_nodes(group_id))
    for nid in graph.topo_order():
        if nid in inside:
            limit = graph.node(nid).spec.max_inputs
            if limit is None or len(graph.inputs(nid)) < limit:
                return nid
    return None

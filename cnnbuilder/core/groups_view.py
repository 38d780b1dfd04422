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
    error: str | None  # the first block inside (in data-flow order) that fails, "label: reason"
    waiting: bool  # the only errors inside come from a failing block upstream


def group_view(graph: Graph, analysis: Analysis, group_id: str) -> GroupView:
    return group_views(graph, analysis, [group_id])[group_id]


def group_views(graph: Graph, analysis: Analysis, group_ids: list[str]) -> dict[str, GroupView]:
    """The views of sibling groups (those a scope shows) in one pass over the graph: a scope with
    24 collapsed groups costs one walk, not 24 (graph.group_interface walks the whole graph per
    group). Inputs and outputs come out as graph.group_interface gives them; a test holds them equal."""
    wanted = set(group_ids)
    owner: dict[str, str] = {}
    for node in graph:
        g = node.group
        while g is not None and g not in wanted:
            g = graph.group(g).parent
        if g is not None:
            owner[node.id] = g
    nodes: dict[str, list[str]] = {gid: [] for gid in group_ids}
    ins: dict[str, dict[tuple[str, int], None]] = {gid: {} for gid in group_ids}
    outs: dict[str, dict[tuple[str, int], None]] = {gid: {} for gid in group_ids}
    for nid in graph.topo_order():
        o = owner.get(nid)
        if o is None:
            continue
        nodes[o].append(nid)
        for src in graph.inputs(nid):
            if owner.get(src) != o:
                ins[o][(src, graph.port(src, nid))] = None
        for dst in graph.outputs(nid):
            if owner.get(dst) != o:
                outs[o][(nid, graph.port(nid, dst))] = None
    return {gid: _view(graph, analysis, nodes[gid], tuple(ins[gid]),
                       tuple(outs[gid]) or tuple((n, 0) for n in nodes[gid] if not graph.outputs(n)))
            for gid in group_ids}


def _view(graph: Graph, analysis: Analysis, nodes: list[str], ins: tuple, outs: tuple) -> GroupView:
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
    for n in nodes:  # in the order data flows: the first failure is the cause of the rest
        info = infos.get(n)
        if info is not None and info.error:
            text = f"{graph.node(n).label}: {info.error}"
            if not info.waiting:
                failed = text
                break
            waiting = waiting or text
    return GroupView(len(nodes), params, ins, outs, tuple(shapes), failed or waiting,
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


def scope_layout(graph: Graph, scope: str | None) -> tuple[dict[str, tuple[float, float]],
                                                           dict[str, tuple[float, float]]]:
    """Auto-layout of what one scope shows: its blocks and its collapsed groups (each laid out as
    one block), the edges between them as the canvas draws them. Returns new positions for the
    blocks and for the groups."""
    from .layout import layered_layout

    nodes, groups = graph.members(scope)
    scratch = Graph()
    ids: dict[str, str] = {}
    with scratch.batch():
        for nid in nodes:
            n = graph.node(nid)
            ids[nid] = scratch.add_node(n.type, dict(n.params), node_id=f"v{len(ids)}").id
        for gid in groups:  # a block that takes any number of inputs stands for the group
            ids[gid] = scratch.add_node("Concat", node_id=f"v{len(ids)}").id
        edges: dict[tuple[str, str], int] = {}
        for src, dst, port in graph.edges_with_ports:
            a, b = graph.scope_of(src, scope), graph.scope_of(dst, scope)
            if a is not None and b is not None and a != b and (ids[a], ids[b]) not in edges:
                edges[(ids[a], ids[b])] = port if a in nodes else 0
        scratch.connect_all([(a, b, None, p) for (a, b), p in edges.items()])
    placed = layered_layout(scratch)
    back = {v: k for k, v in ids.items()}
    blocks = {back[v]: pos for v, pos in placed.items() if back[v] not in groups}
    return blocks, {back[v]: pos for v, pos in placed.items() if back[v] in groups}

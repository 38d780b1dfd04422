"""GraphScene: mirrors the document's graph as items and turns gestures into core commands.

It shows one scope at a time: the top level (scope None) or an open group. The blocks directly in
the scope are items, each group directly inside it is one collapsed GroupItem, and inside an open
group values from and to outside appear as read-only stubs. Every edge of the flat graph is drawn
between what stands for its two blocks in the scope (graph.scope_of).

It observes the graph's signals (node_added, edge_removed, ...) and adds or removes single
items; a change that touches groups marks the scope for one rebuild when the edit is done. After
each edit it compares every block's displayed state with the new analysis and repaints only blocks
whose label, summary, shape or error changed. All edits go through Document.push.
"""

from __future__ import annotations

import json

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene, QGraphicsSceneDragDropEvent, QGraphicsSceneMouseEvent

from ...core.blocks import fmt_shape, get_spec
from ...core.blocks.base import MAX_PARTS
from ...core.commands import (
    AddNode,
    Connect,
    Disconnect,
    GroupBlocks,
    Macro,
    Move,
    MoveGroups,
    Ungroup,
    insert_on_edge,
    remove_group,
    remove_nodes,
    splice_into_edge,
    splice_refusal,
)
from ...core.graph import Graph, GraphError, Node
from ...core.groups import GroupInfo, group_entry
from ...core.placement import block_above
from ...core.shapes import NodeInfo, fmt_outputs
from ..document import Document
from ..theme import canvas_colors
from .items import (
    NODE_H,
    NODE_W,
    STUB_H,
    STUB_W,
    ConnectionPreview,
    EdgeItem,
    GroupItem,
    GroupState,
    NodeItem,
    NodeState,
    PortItem,
    StubItem,
)

BLOCK_MIME = "application/x-cnnbuilder-block"
CLIP_MIME = "application/x-cnnbuilder-clip"
SCENE_MARGIN = 1200.0


def node_state(node: Node, info: NodeInfo | None, warning: str | None = None,
               detail: str | None = None) -> NodeState:
    """What a block shows. `warning` is the verdict's warning about it (the model is valid but
    this block does not fit the chosen data yet): an amber badge, and the shape line stays.
    `detail`: with an error, the verdict's arithmetic step that goes wrong (in the tooltips)."""
    spec = node.spec
    resolved = info.resolved if info is not None and info.resolved else spec.resolve(node.params)
    try:
        summary = spec.describe(resolved)
    except (TypeError, KeyError, IndexError, ValueError):
        summary = node.type  # a block in error may lack the inferred values its summary uses
    ok = info is not None and info.shape is not None
    ports = ("",)
    if spec.multi_output:  # one port per part, as many as the parameters make (even while in error)
        ports = tuple(fmt_shape(s) for s in info.outputs) if ok else ("",) * _port_count(spec, resolved)
    return NodeState(
        label=node.label,
        type=node.type,
        category=spec.category,
        summary=summary,
        shape=fmt_outputs(info) if ok else "",
        port_shapes=ports,
        params=f"{_compact(info.stats.params)} params" if ok and info.stats.params else "",
        error=info.error if info is not None and info.error else None,
        waiting=bool(info is not None and info.waiting),
        doc=spec.doc,
        warning=warning if ok else None,
        detail=detail if info is not None and info.error else None,
    )


def group_state(graph: Graph, group_id: str, info: GroupInfo) -> GroupState:
    """What a collapsed group shows: its figures as core/groups computes them."""
    group = graph.group(group_id)
    n = info.blocks
    summary = f"{n} block{'s' if n != 1 else ''}" + (f" · {group.cls}" if group.cls and group.cls != group.name else "")
    shapes = info.shape_texts
    error = info.error(graph)
    return GroupState(
        label=group.name,
        summary=summary,
        shape=" | ".join(shapes) if shapes and all(shapes) else "",
        params=f"{_compact(info.params)} params" if info.params and not error else "",
        error=error,
        waiting=info.problem is None and info.waiting is not None,
        in_tips=tuple(f"from {graph.node(src).label}" + (f" (output {port})" if port else "")
                      for src, port in info.inputs) or ("",),
        port_shapes=shapes or ("",),
    )


def _port_count(spec, resolved: dict) -> int:
    try:
        return max(1, min(spec.output_count(resolved), MAX_PARTS))
    except (TypeError, KeyError, ValueError):
        return 1


def _compact(n: int) -> str:
    """12345 -> '12.3k': short enough to sit beside the output shape on a block."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.3g}{suffix}"
    return str(n)


class GraphScene(QGraphicsScene):
    message = Signal(str)  # a refusal or hint for the status bar
    node_activated = Signal(str)  # a block was double-clicked
    context_menu_requested = Signal(object, object)  # screen QPoint, the item under the mouse or None
    scope_changed = Signal(object)  # the group now shown (None: the top level)
    groups_selected = Signal(list)  # ids of the collapsed groups selected on the canvas

    def __init__(self, document: Document, parent=None):
        super().__init__(parent)
        self.document = document
        self.colors = canvas_colors()
        self.nodes: dict[str, NodeItem] = {}  # the blocks directly in the scope
        self.groups: dict[str, GroupItem] = {}  # the groups directly in the scope, collapsed
        self.stubs: dict[tuple, StubItem] = {}  # inside a group: ("in", block, port) / ("out", block) outside
        self.edges: dict[tuple[str, str], EdgeItem] = {}  # graph edges shown, by (src, dst) block ids
        self.scope: str | None = None
        self._trail: list[str] = []  # the open group's path, to fall back on if it is removed
        self._stale = False  # a change touched groups: rebuild the scope once the edit is done
        self._infos: dict[str, GroupInfo] = {}  # every group's figures (Document.group_info), as last shown
        self._press_groups: dict[str, QPointF] = {}
        self._stubs_due = False  # a block moved inside an open group: its stubs follow once this turn
        self._graph: Graph | None = None
        self._syncing = False
        self._press_pos: dict[str, QPointF] | None = None
        self._conn_port: PortItem | None = None
        self._conn_preview: ConnectionPreview | None = None
        self._conn_target: PortItem | None = None
        self._reroute: tuple[str, str] | None = None  # the connection picked up off a full input port
        self._drop_edge: EdgeItem | None = None
        self.snap = 0.0  # grid size that dragged and new blocks snap to; 0: free placement
        self.setItemIndexMethod(QGraphicsScene.BspTreeIndex)
        document.project_replaced.connect(self.rebuild)
        document.verdict_changed.connect(self.refresh)  # after every edit, and when the data setting changes
        document.selection_changed.connect(self._select_from_document)
        self.selectionChanged.connect(self._selection_to_document)
        self.rebuild()

    # -- following the graph ----------------------------------------------------------
    @property
    def graph(self) -> Graph:
        return self.document.graph

    def _attach(self, graph: Graph) -> None:
        self.detach()
        self._graph = graph
        for sig, slot in self._hooks(graph):
            sig.connect(slot)

    def _hooks(self, g: Graph):
        return ((g.node_added, self._on_node_added), (g.node_removed, self._on_node_removed),
                (g.edge_added, self._on_edge_added), (g.edge_removed, self._on_edge_removed),
                (g.node_changed, self._on_node_changed), (g.group_changed, self._on_group_changed))

    def detach(self) -> None:
        """Stop following the graph (the scene is being thrown away)."""
        if self._graph is not None:
            for sig, slot in self._hooks(self._graph):
                sig.disconnect(slot)
            self._graph = None

    def rebuild(self) -> None:
        """A new project: follow its graph, from the top level."""
        self._attach(self.document.graph)
        was = self.scope
        self.scope, self._trail = None, []
        self._build_scope()
        if was is not None:
            self.scope_changed.emit(None)

    def set_scope(self, group_id: str | None) -> bool:
        """Show the inside of a group (None: the top level). False (nothing done) for no such group."""
        if group_id is not None and group_id not in self._group_ids():
            return False
        changed = group_id != self.scope
        self.scope = group_id
        self._build_scope()
        if changed:
            self.scope_changed.emit(group_id)
        return True

    def go_up(self) -> bool:
        """Back to the scope holding the open group; False at the top level."""
        if self.scope is None:
            return False
        inner = self.scope
        self.set_scope(self.graph.group(inner).parent)
        item = self.groups.get(inner)
        if item is not None:
            self.clearSelection()
            item.setSelected(True)
        return True

    def scope_path(self) -> list[tuple[str | None, str]]:
        """(group id, name) from the top level (None, "Model") down to the open group: the breadcrumb."""
        g = self.graph
        if self.scope is not None and self.scope not in self._group_ids():
            return [(None, "Model")]  # mid-edit: the scope falls back once the edit is done
        return [(None, "Model")] + [(gid, g.group(gid).name) for gid in g.group_path(self.scope)]

    def _group_ids(self) -> set[str]:
        return {grp.id for grp in self.graph.groups}

    def _build_scope(self) -> None:
        """Make the scope's items from the graph: linear in the graph's blocks and edges, so
        opening a group of a 428-block model or undoing a Group stays quick."""
        g = self.graph
        known = self._group_ids()
        fell_back = self.scope is not None and self.scope not in known
        if fell_back:  # e.g. Group undone while inside it: the nearest scope that still exists
            self.scope = next((s for s in reversed(self._trail) if s in known), None)
        self._trail = g.group_path(self.scope)
        self._stale = False
        self._syncing = True
        try:
            self.clear()
            self.nodes.clear()
            self.groups.clear()
            self.stubs.clear()
            self.edges.clear()
            self._conn_port = self._conn_preview = self._conn_target = self._drop_edge = None
            self._reroute = None
            self._press_pos = None
            self._press_groups = {}
            a = self.document.analysis
            node_ids, group_ids = g.members(self.scope)
            for nid in node_ids:
                self._add_node_item(g.node(nid), a.nodes.get(nid))  # refresh() below adds the warnings
            self._infos = self.document.group_info if group_ids else {}
            for gid in group_ids:
                item = GroupItem(gid, group_state(g, gid, self._infos[gid]))
                item.setPos(QPointF(*g.group(gid).pos))
                self.addItem(item)
                self.groups[gid] = item
            if not group_ids and self.scope is None:
                for src, dst in g.edges:  # no groups: every edge joins two blocks in view
                    self._add_edge_item(src, dst)
            else:
                self._add_scope_edges()
            for nid, item in self.nodes.items():
                item.input_order = g.inputs(nid)
        finally:
            self._syncing = False
        self.refresh()
        self.setSceneRect(self._content_rect())
        self._apply_selection(self.document.selection)
        if fell_back:
            self.scope_changed.emit(self.scope)

    def _add_scope_edges(self) -> None:
        g = self.graph
        scope = self.scope
        ins = {gid: {v: k for k, v in enumerate(self._infos[gid].inputs)} for gid in self.groups}
        outs = {gid: {v: k for k, v in enumerate(self._infos[gid].outputs)} for gid in self.groups}
        seen: dict[str, str | None] = {}

        def shown(nid: str) -> str | None:
            if nid not in seen:
                seen[nid] = g.scope_of(nid, scope)
            return seen[nid]

        outer_scopes = g.group_path(scope)[:-1][::-1] + [None] if scope is not None else []
        outside: dict[str, str] = {}

        def beyond(nid: str) -> str:
            """What stands for a block outside the open group in the nearest scope around it that
            shows it: the block itself, or the group holding it ("to layer2.1", not "to conv1")."""
            if nid not in outside:
                outside[nid] = next(r for r in (g.scope_of(nid, s) for s in outer_scopes) if r is not None)
            return outside[nid]

        def beyond_label(rep: str) -> str:
            return g.node(rep).label if rep in g else g.group(rep).name

        pending = []
        for src, dst, port in g.edges_with_ports:
            vs, vd = shown(src), shown(dst)
            if vs == vd:  # inside one collapsed group, or both outside the open one
                continue
            if vs is None:
                rep = beyond(src)
                if rep == src:
                    a = self._stub("in", (src, port), g.node(src).label + (f" (output {port})" if port else ""))
                else:
                    a = self._stub("in", (rep,), beyond_label(rep))
                out = 0
            elif vs in self.groups:
                a, out = self.groups[vs], outs[vs].get((src, port), 0)
            else:
                a, out = self.nodes[vs], port
            if vd is None:
                rep = beyond(dst)
                b, slot = self._stub("out", (rep,), beyond_label(rep)), 0
            elif vd in self.groups:
                b, slot = self.groups[vd], ins[vd].get((src, port), 0)
            else:
                b, slot = self.nodes[vd], None
            pending.append((a, b, out, (src, dst), slot))
            if isinstance(a, StubItem):  # where a stub goes follows the items it is wired to
                a.ends.append(b)
            if isinstance(b, StubItem):
                b.ends.append(a)
        self._place_stubs()
        drawn: dict[tuple, EdgeItem] = {}
        for a, b, out, key, slot in pending:
            same = (id(a), out, id(b), slot)  # e.g. one value read by two blocks in a collapsed group
            edge = drawn.get(same) if slot is not None else None
            if edge is not None:  # drawn once: the one line stands for all of them
                edge.keys.append(key)
                self.edges[key] = edge
                continue
            edge = drawn[same] = EdgeItem(a, b, out, key=key, slot=slot)
            a.edges.add(edge)
            b.edges.add(edge)
            self.addItem(edge)
            self.edges[key] = edge

    def _stub(self, kind: str, key: tuple, label: str) -> StubItem:
        stub = self.stubs.get((kind, *key))
        if stub is None:
            stub = self.stubs[(kind, *key)] = StubItem(kind, label)
            self.addItem(stub)
        return stub

    def item_moved(self, item) -> None:
        """A block or collapsed group moved (dragged, nudged, undone): inside an open group the
        stubs follow, placed again once the moves of this event-loop turn are done (a drag of many
        blocks moves each one)."""
        if self.stubs and not self._stubs_due and not self._syncing:
            self._stubs_due = True
            QTimer.singleShot(0, self, self._follow_stubs)

    def _follow_stubs(self) -> None:
        self._stubs_due = False
        self._place_stubs()

    def _place_stubs(self) -> None:
        """Values from outside in a row above the group's blocks, values going outside in a row
        below, each over (or under) the first block that uses it, never overlapping."""
        if not self.stubs:
            return
        items = [*self.nodes.values(), *self.groups.values()]
        if items:
            top = min(it.pos().y() for it in items) - STUB_H - 60
            bottom = max(it.pos().y() for it in items) + NODE_H + 60
            mid = sum(it.pos().x() for it in items) / len(items)
        else:
            top, bottom, mid = 0.0, 200.0, 0.0
        for kind, y in (("in", top), ("out", bottom)):
            row = []
            for key, stub in self.stubs.items():
                if key[0] != kind:
                    continue
                xs = [it.pos().x() for it in stub.ends]
                x = (min(xs) if xs else mid) + (NODE_W - STUB_W) / 2
                row.append((x, stub))
            row.sort(key=lambda r: r[0])
            last = -1e18
            for x, stub in row:
                x = max(x, last + STUB_W + 16)
                if stub.pos() != QPointF(x, y):
                    stub.setPos(QPointF(x, y))
                    for edge in stub.edges:
                        edge.adjust()
                last = x

    def _add_node_item(self, node: Node, info: NodeInfo | None = None) -> NodeItem:
        # Mid-edit (node_added) the analysis is not current: the block shows its final state in
        # refresh(), which runs once the whole edit is done.
        spec = node.spec
        item = NodeItem(node.id, node_state(node, info), spec.max_inputs, spec.max_inputs != 0)
        item.setPos(QPointF(*node.pos))
        self.addItem(item)
        self.nodes[node.id] = item
        return item

    def _add_edge_item(self, src: str, dst: str) -> None:
        a, b = self.nodes.get(src), self.nodes.get(dst)
        if a is None or b is None or (src, dst) in self.edges:
            return
        edge = EdgeItem(a, b, self.graph.port(src, dst))
        a.edges.add(edge)
        b.edges.add(edge)
        self.addItem(edge)
        self.edges[(src, dst)] = edge

    def _grouped(self) -> bool:
        """Whether the view holds anything but plain blocks (then edits touching it rebuild the scope)."""
        return self.scope is not None or bool(self.groups)

    def _on_node_added(self, nid: str) -> None:
        if self._stale:
            return
        node = self.graph.node(nid)
        if node.group == self.scope:
            self._add_node_item(node)
            self._grow_scene_rect(self.nodes[nid])
        elif self.graph.scope_of(nid, self.scope) is not None:
            self._stale = True  # a collapsed group in view gained a block

    def _on_node_removed(self, nid: str) -> None:
        item = self.nodes.pop(nid, None)
        if item is not None:
            for edge in list(item.edges):
                self._drop_edge_item(edge)
            self.removeItem(item)
        if self._grouped():
            self._stale = True  # it may have fed a group or a stub, or sat inside a collapsed group

    def _on_edge_added(self, src: str, dst: str) -> None:
        if self._stale:
            return
        if src in self.nodes and dst in self.nodes:
            self._add_edge_item(src, dst)
            self._reslot(dst)
        elif self._grouped():
            self._stale = True

    def _on_edge_removed(self, src: str, dst: str) -> None:
        edge = self.edges.get((src, dst))
        if edge is not None:
            self._drop_edge_item(edge)
        if self._grouped() and not (src in self.nodes and dst in self.nodes):
            self._stale = True  # a group's interface may have changed
        if dst in self.graph:
            self._reslot(dst)

    def _on_group_changed(self, gid: str, what: str) -> None:
        item = self.groups.get(gid)
        if what == "pos":
            if item is not None:
                pos = QPointF(*self.graph.group(gid).pos)
                if item.pos() != pos:
                    item.setPos(pos)
                    self._grow_scene_rect(item)
        elif what == "removed":
            if item is not None:
                self._drop_group_item(gid)
            self._stale = True
        elif what in ("added", "members"):
            self._stale = True
        # a new name is painted by refresh(), once per edit

    def _drop_group_item(self, gid: str) -> None:
        item = self.groups.pop(gid)
        for edge in list(item.edges):
            self._drop_edge_item(edge)
        self.removeItem(item)

    def _drop_edge_item(self, edge: EdgeItem) -> None:
        for key in edge.keys:
            self.edges.pop(key, None)
        edge.src.edges.discard(edge)
        edge.dst.edges.discard(edge)
        if edge is self._drop_edge:
            self._drop_edge = None
        self.removeItem(edge)

    def _reslot(self, dst: str) -> None:
        item = self.nodes.get(dst)
        if item is None:
            return
        item.input_order = self.graph.inputs(dst)
        for edge in item.edges:
            if edge.dst is item:
                edge.adjust()

    def _on_node_changed(self, nid: str, what: str) -> None:
        if what == "group":
            self._stale = True
            return
        item = self.nodes.get(nid)
        if item is None:
            return
        if what == "pos":
            pos = QPointF(*self.graph.node(nid).pos)
            if item.pos() != pos:
                item.setPos(pos)
                self._grow_scene_rect(item)
        # params and names are repainted by refresh(), once per edit, with the new analysis

    def refresh(self) -> None:
        """Repaint only the blocks whose displayed state changed (after a change that touched
        groups, rebuild the scope first)."""
        if self._stale:
            self._build_scope()
            return
        v = self.document.verdict
        a, warnings, details = v.analysis, v.node_warnings(), v.error_details()
        g = self.graph
        for nid, item in self.nodes.items():
            state = node_state(g.node(nid), a.nodes.get(nid), warnings.get(nid), details.get(nid))
            if state != item.state:
                labels_changed = state.label != item.state.label
                item.set_state(state)
                if labels_changed:
                    for edge in item.edges:
                        edge.setToolTip(edge.describe())
        if self.groups and self._infos is not self.document.group_info:  # new per revision (a new name too)
            self._infos = self.document.group_info
            for gid, item in self.groups.items():
                item.set_state(group_state(g, gid, self._infos[gid]))

    def set_colors(self, colors) -> None:
        self.colors = colors
        for item in self.items():
            item.update()
        self.update()

    # -- geometry helpers -------------------------------------------------------------
    def _content_rect(self) -> QRectF:
        r = self.itemsBoundingRect()
        if r.isNull():
            r = QRectF(0, 0, NODE_W, NODE_H)
        return r.adjusted(-SCENE_MARGIN, -SCENE_MARGIN, SCENE_MARGIN, SCENE_MARGIN)

    def _grow_scene_rect(self, item: NodeItem) -> None:
        r = item.sceneBoundingRect().adjusted(-SCENE_MARGIN, -SCENE_MARGIN, SCENE_MARGIN, SCENE_MARGIN)
        if not self.sceneRect().contains(r):
            self.setSceneRect(self.sceneRect().united(r))

    def blocks_rect(self) -> QRectF:
        """The bounding box of everything in the scope (for fit-to-view and image export)."""
        r = QRectF()
        for items in (self.nodes, self.groups, self.stubs):
            for item in items.values():
                r = r.united(item.sceneBoundingRect())
        return r

    def group_at(self, pos: QPointF) -> GroupItem | None:
        for it in self.items(pos):
            if isinstance(it, GroupItem):
                return it
            if isinstance(it.parentItem(), GroupItem):
                return it.parentItem()
            if isinstance(it, NodeItem) or isinstance(it.parentItem(), NodeItem):
                return None
        return None

    def node_at(self, pos: QPointF) -> NodeItem | None:
        for it in self.items(pos):
            if isinstance(it, NodeItem):
                return it
            if it.parentItem() is not None and isinstance(it.parentItem(), NodeItem):
                return it.parentItem()
            if isinstance(it, GroupItem) or isinstance(it.parentItem(), GroupItem):
                return None  # a collapsed group above the block
        return None

    def edge_at(self, pos: QPointF, ignore: NodeItem | None = None) -> EdgeItem | None:
        """The connection under `pos`, unless a block (other than `ignore`) lies above it."""
        for it in self.items(pos):
            if isinstance(it, EdgeItem):
                return it
            if it is ignore or (ignore is not None and it.parentItem() is ignore):
                continue
            if isinstance(it, (NodeItem, GroupItem, PortItem, StubItem)) \
                    or isinstance(it.parentItem(), (NodeItem, GroupItem)):
                return None  # a block above the edge wins
        return None

    def port_at(self, pos: QPointF) -> PortItem | None:
        for it in self.items(pos):
            if isinstance(it, PortItem):
                return it
        return None

    # -- selection --------------------------------------------------------------------
    def selected_node_ids(self) -> list[str]:
        chosen = {it.node_id for it in self.selectedItems() if isinstance(it, NodeItem)}
        return [n.id for n in self.graph if n.id in chosen]

    def selected_edges(self) -> list[tuple[str, str]]:
        return [key for it in self.selectedItems() if isinstance(it, EdgeItem) for key in it.keys]

    def selected_group_ids(self) -> list[str]:
        chosen = {it.group_id for it in self.selectedItems() if isinstance(it, GroupItem)}
        return [gid for gid in self.groups if gid in chosen]

    def select_group(self, group_id: str) -> None:
        self.select_groups([group_id])

    def select_groups(self, group_ids: list[str], keep: bool = False) -> None:
        if not keep:
            self.clearSelection()
        for gid in group_ids:
            item = self.groups.get(gid)
            if item is not None:
                item.setSelected(True)

    def visible_positions(self) -> list[tuple[float, float]]:
        """Where the blocks and groups in view sit (what a new block must not cover)."""
        g = self.graph
        return [g.node(n).pos for n in self.nodes] + [g.group(x).pos for x in self.groups]

    def _selection_to_document(self) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            self.document.set_selection(self.selected_node_ids())
        finally:
            self._syncing = False
        self.groups_selected.emit(self.selected_group_ids())

    def _select_from_document(self, ids: list[str]) -> None:
        if self._syncing:
            return
        g = self.graph
        if ids and not any(n in self.nodes for n in ids) and ids[0] in g:
            # Picked elsewhere (the summary table) inside a closed group, or outside the open one.
            if self.set_scope(g.node(ids[0]).group):
                return  # the rebuild selected it
        self._apply_selection(ids)

    def _apply_selection(self, ids: list[str]) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            wanted = set(ids)
            for it in self.selectedItems():
                if not (isinstance(it, NodeItem) and it.node_id in wanted):
                    it.setSelected(False)
            for nid in ids:
                item = self.nodes.get(nid)
                if item is not None and not item.isSelected():
                    item.setSelected(True)
        finally:
            self._syncing = False

    # -- editing helpers (all through Document.push) ----------------------------------
    def _push(self, cmd) -> str | None:
        problem = self.document.push(cmd)
        if problem:
            self.message.emit(problem)
        return problem

    def drag_position(self, pos: QPointF) -> QPointF:
        """Where a block the user drags to `pos` lands: on the grid when snapping. Positions set
        from the model (undo, loading) are not snapped, so they stay exactly as stored."""
        if self.snap and self._press_pos is not None:
            return QPointF(*self.snapped(pos.x(), pos.y()))
        return pos

    def snapped(self, x: float, y: float) -> tuple[float, float]:
        """(x, y) on the grid when snapping is on, else rounded to 0.1 px as positions are stored."""
        if self.snap:
            return (round(x / self.snap) * self.snap, round(y / self.snap) * self.snap)
        return (round(x, 1), round(y, 1))

    def add_block(self, type_name: str, center: QPointF) -> str | None:
        pos = self.snapped(center.x() - NODE_W / 2, center.y() - NODE_H / 2)
        cmd = AddNode(type_name, pos=pos, group=self.scope)
        if self._push(cmd):
            return None
        self.document.set_selection([cmd.node_id])
        return cmd.node_id

    def drop_below(self, type_name: str, center: QPointF) -> str | None:
        """A block dropped just below one whose output is free continues that chain: added and
        connected in one undo step. None (nothing done) where there is no such block."""
        if get_spec(type_name).max_inputs == 0:
            return None
        pos = self.snapped(center.x() - NODE_W / 2, center.y() - NODE_H / 2)
        g = self.graph
        free = ((nid, g.node(nid).pos) for nid in self.nodes if g.free_port(nid) is not None)
        src = block_above(free, pos, (NODE_W, NODE_H))
        if src is None:
            return None
        new_id = self.graph.new_id()
        cmd = Macro(f"Add {type_name}", [AddNode(type_name, pos=pos, node_id=new_id, group=self.scope),
                                         Connect(src, new_id, port=self.graph.free_port(src) or 0)])
        if self.document.push(cmd):
            return None  # e.g. the block above takes no more outputs: add it unconnected instead
        self.document.set_selection([new_id])
        self.message.emit(f"Connected {self.graph.node(src).label} → {self.graph.node(new_id).label} "
                          "(dropped just below it; Ctrl+Z to undo)")
        return new_id

    def drop_block(self, type_name: str, scene_pos: QPointF) -> str | None:
        """What dropping a palette block does: insert it into the edge under the mouse, or add
        it where it was dropped. Returns the new block's id (None if refused)."""
        try:
            spec = get_spec(type_name)
        except KeyError:
            self.message.emit(f"unknown block type {type_name!r}")
            return None
        edge = self.edge_at(scene_pos)
        if edge is None:
            return self.drop_below(type_name, scene_pos) or self.add_block(type_name, scene_pos)
        src, dst = edge.key
        if spec.max_inputs == 0:
            self.message.emit(f"Cannot insert {type_name} into a connection: it takes no inputs")
            return None
        pos = self.snapped(scene_pos.x() - NODE_W / 2, scene_pos.y() - NODE_H / 2)
        readers = self._readers(edge)
        try:  # a line into a collapsed group may stand for several edges: the block goes on the value
            cmd = insert_on_edge(self.graph, src, dst, type_name, pos=pos, also=self._also(edge), group=self.scope)
        except GraphError as exc:
            self.message.emit(f"Cannot insert {type_name} here: {exc}")
            return None
        problem = self.document.push(cmd)
        if problem:
            self.message.emit(f"Cannot insert {type_name} here: {problem}")
            return None
        new_id = cmd.children[1].node_id
        self.document.set_selection([new_id])
        if readers:
            self.message.emit(f"{self.graph.node(new_id).label} now feeds {readers}")
        return new_id

    @staticmethod
    def _also(edge: EdgeItem) -> list[str]:
        """The other blocks a line stands for edges to (one value read by several blocks inside a
        collapsed group is drawn once)."""
        return [d for _, d in edge.keys[1:]]

    def _readers(self, edge: EdgeItem) -> str | None:
        """For a line that stands for several edges: what an inserted block then feeds, to say so."""
        if len(edge.keys) < 2:
            return None
        return (f"the {len(edge.keys)} blocks inside {edge.dst.state.label} that read "
                f"{self.graph.node(edge.key[0]).label}")

    def request_connect(self, src: str, dst: str, port: int = 0) -> str | None:
        """Connect src's output `port` -> dst, or say why not (on the status bar). Returns the refusal."""
        problem = self.graph.connection_problem(src, dst, port)
        if problem:
            msg = f"Cannot connect: {problem}"
            self.message.emit(msg)
            return msg
        return self._push(Connect(src, dst, port=port))

    def nudge_selection(self, dx: float, dy: float) -> bool:
        """Move the selected blocks (and collapsed groups) by (dx, dy); repeated nudges of blocks
        are one undo step."""
        ids, groups = self.selected_node_ids(), self.selected_group_ids()
        if not ids and not groups:
            return False
        g = self.graph
        moves = {nid: self.snapped(g.node(nid).pos[0] + dx, g.node(nid).pos[1] + dy) for nid in ids}
        group_moves = {gid: self.snapped(g.group(gid).pos[0] + dx, g.group(gid).pos[1] + dy) for gid in groups}
        if all(moves[n] == tuple(g.node(n).pos) for n in ids) and \
                all(group_moves[x] == tuple(g.group(x).pos) for x in groups):
            return True
        if not groups:
            return self._push(Move(moves, nudge=True)) is None
        cmd = MoveGroups(group_moves) if not ids else Macro("Move", [Move(moves), MoveGroups(group_moves)])
        return self._push(cmd) is None

    def delete_selection(self) -> bool:
        nodes = self.selected_node_ids()
        groups = self.selected_group_ids()
        gone = set(nodes)
        for gid in groups:
            gone.update(self.graph.group_nodes(gid))
        edges = [e for e in self.selected_edges() if e[0] not in gone and e[1] not in gone]
        if not nodes and not edges and not groups:
            return False
        children = [Disconnect(s, d) for s, d in edges]
        if nodes:
            children.append(remove_nodes(self.graph, nodes))
        children += [remove_group(self.graph, gid) for gid in groups]
        text = "Delete connection" if not nodes and not groups and len(edges) == 1 else "Delete"
        cmd = children[0] if len(children) == 1 else Macro(text, children)
        if not nodes and not groups:
            cmd.text = text
        return self._push(cmd) is None

    # -- groups -----------------------------------------------------------------------
    def group_selection(self, name: str = "group") -> str | None:
        """Group the selected blocks and groups into one (Ctrl+G); returns its id, or None with
        the core's reason on the status bar."""
        nodes, groups = self.selected_node_ids(), self.selected_group_ids()
        problem = self.graph.grouping_problem(nodes, groups)
        if problem:
            self.message.emit(f"Cannot group: {problem}")
            return None
        cmd = GroupBlocks(nodes, groups, name=self._fresh_group_name(name))
        if self._push(cmd):
            return None
        self.document.set_selection([])
        self.select_group(cmd.group_id)
        n = len(nodes) + len(groups)
        self.message.emit(f"Grouped {n} item{'s' if n != 1 else ''} into {cmd.name} "
                          "(double-click it to open it; Ctrl+Shift+G ungroups)")
        return cmd.group_id

    def _fresh_group_name(self, stem: str) -> str:
        taken = {grp.name for grp in self.graph.groups}
        k = 1
        while f"{stem}{k}" in taken:
            k += 1
        return f"{stem}{k}"

    def ungroup_selection(self) -> bool:
        groups = self.selected_group_ids()
        if not groups:
            self.message.emit("Select a group to ungroup")
            return False
        inside = {gid: self.graph.members(gid) for gid in groups}
        cmd = Ungroup(groups[0]) if len(groups) == 1 else Macro("Ungroup", [Ungroup(g) for g in groups])
        if self._push(cmd):
            return False
        self.refresh()  # the blocks are in view now: select them
        self._syncing = True
        try:
            for nodes, subgroups in inside.values():
                for it in [*(self.nodes.get(n) for n in nodes), *(self.groups.get(x) for x in subgroups)]:
                    if it is not None:
                        it.setSelected(True)
        finally:
            self._syncing = False
        self._selection_to_document()
        return True

    def open_group(self, group_id: str) -> bool:
        return self.set_scope(group_id)

    # -- mouse: connections and moves -------------------------------------------------
    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if event.button() == Qt.LeftButton:
            port = self.port_at(event.scenePos())
            if port is not None:
                picked = self._connection_to_pick_up(port)
                if picked is not None:
                    self._pick_up(*picked)
                else:
                    self._start_connection(port)
                event.accept()
                return
        super().mousePressEvent(event)
        if event.button() == Qt.LeftButton:
            self._press_pos = {it.node_id: it.pos() for it in self.selectedItems() if isinstance(it, NodeItem)}
            self._press_groups = {it.group_id: it.pos() for it in self.selectedItems() if isinstance(it, GroupItem)}

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._conn_port is not None:
            self._track_connection(event.scenePos())
            event.accept()
            return
        super().mouseMoveEvent(event)
        if self._press_pos is not None and event.buttons() & Qt.LeftButton:
            self._set_drop_edge(self._splice_target(event.scenePos()))

    def _splice_target(self, pos: QPointF) -> EdgeItem | None:
        """The connection a single dragged, unconnected block would be inserted into if dropped now."""
        if len(self._press_pos) != 1 or self._press_groups:
            return None
        nid = next(iter(self._press_pos))
        item = self.nodes.get(nid)
        if item is None or item.pos() == self._press_pos[nid] or splice_refusal(self.graph, nid):
            return None
        return self.edge_at(pos, ignore=item)

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._conn_port is not None and event.button() == Qt.LeftButton:
            self._finish_connection(event.scenePos())
            event.accept()
            return
        super().mouseReleaseEvent(event)
        if event.button() == Qt.LeftButton and (self._press_pos or self._press_groups):
            old, moved = {}, {}
            for nid, start in (self._press_pos or {}).items():
                item = self.nodes.get(nid)
                if item is not None and item.pos() != start:
                    old[nid] = (start.x(), start.y())
                    moved[nid] = (round(item.x(), 1), round(item.y(), 1))
            group_moves = {}
            for gid, start in self._press_groups.items():
                item = self.groups.get(gid)
                if item is not None and item.pos() != start:
                    group_moves[gid] = (round(item.x(), 1), round(item.y(), 1))
            self._press_pos, self._press_groups = None, {}
            if group_moves:  # blocks and groups dragged together: one undo step
                cmd = MoveGroups(group_moves) if not moved else Macro("Move", [Move(moved, old),
                                                                               MoveGroups(group_moves)])
                self._push(cmd)
                return
            edge, self._drop_edge = self._drop_edge, None
            if edge is not None:
                edge.set_highlight(False)
            if moved and edge is not None and len(moved) == 1:
                nid, pos = next(iter(moved.items()))
                readers = self._readers(edge)
                try:
                    cmd = splice_into_edge(self.graph, nid, *edge.key, pos=pos, also=self._also(edge))
                    problem = self.document.push(cmd)
                except GraphError as exc:
                    problem = str(exc)
                if problem is None:
                    if readers:
                        self.message.emit(f"{self.graph.node(nid).label} now feeds {readers}")
                    return
                self.message.emit(f"Cannot insert {self.graph.node(nid).label} here: {problem}")
            if moved:
                self._push(Move(moved, old))  # one command for the whole drag

    def mouseDoubleClickEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if event.button() == Qt.LeftButton:
            group = self.group_at(event.scenePos())
            if group is not None:
                self.set_scope(group.group_id)
                event.accept()
                return
        item = self.node_at(event.scenePos())
        if item is not None and event.button() == Qt.LeftButton:
            self.node_activated.emit(item.node_id)
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def contextMenuEvent(self, event) -> None:
        item = self.group_at(event.scenePos()) or self.node_at(event.scenePos()) or self.edge_at(event.scenePos())
        if item is not None and not item.isSelected():
            self.clearSelection()
            item.setSelected(True)
        self.context_menu_requested.emit(event.screenPos(), item)
        event.accept()

    def _start_connection(self, port: PortItem) -> None:
        self._conn_port = port
        start = port.scenePos() + QPointF(0, 5 if port.kind == "out" else -5)
        self._conn_preview = ConnectionPreview(start, downward=port.kind == "out")
        self.addItem(self._conn_preview)
        self.message.emit("Drop on an input port to connect" if port.kind == "out"
                          else "Drop on an output port to connect")

    def _connection_to_pick_up(self, port: PortItem) -> tuple[str, str] | None:
        """Pressing a full input port (one that takes no more connections) picks up its connection
        (when its source is in view: a block or a collapsed group, not a value from outside)."""
        if port.kind != "in" or not isinstance(port.node, NodeItem):
            return None
        dst = port.node.node_id
        ins = self.graph.inputs(dst)
        limit = self.graph.node(dst).spec.max_inputs
        if not ins or limit is None or len(ins) < limit:
            return None
        edge = self.edges.get((ins[-1], dst))
        if edge is None or not edge.src.out_ports:
            return None
        return ins[-1], dst

    def _pick_up(self, src: str, dst: str) -> None:
        self._reroute = (src, dst)
        edge = self.edges[(src, dst)]
        edge.setVisible(False)
        ports = edge.src.out_ports
        self._start_connection(ports[min(edge.port, len(ports) - 1)])  # it keeps its output
        self.message.emit("Drop on another input port to re-route the connection, or on empty canvas to remove it")

    def _source(self, item, k: int | None) -> tuple[str | None, int, str | None]:
        """(block, its output port, refusal) for a connection leaving `item`'s output k (None: the
        first free one); a collapsed group's output k is the block inside that produces it."""
        if isinstance(item, GroupItem):
            outs = self._infos[item.group_id].outputs
            if not outs:
                return None, 0, (f"Cannot connect: {item.state.label} has no output yet; "
                                 "open the group to connect inside")
            return *outs[min(k or 0, len(outs) - 1)], None
        return item.node_id, self._free_port(item) if k is None else k, None

    def _sink(self, item) -> tuple[str | None, str | None]:
        """(block, refusal) for a connection dropped on `item`: a collapsed group passes it to its
        first block that still takes an input."""
        if isinstance(item, GroupItem):
            entry = group_entry(self.graph, item.group_id)
            if entry is None:
                return None, (f"Cannot connect: no block inside {item.state.label} takes another input; "
                              "open the group to choose the block inside")
            return entry, None
        return item.node_id, None

    def _ends_for(self, target) -> tuple[str | None, str | None, int, str | None]:
        """(src, dst, src's output port, refusal) for dropping the dragged connection on `target`."""
        start = self._conn_port
        if target is None:
            return None, None, 0, None
        if isinstance(target, PortItem):
            if target.kind == start.kind:
                what = "an output to another output" if start.kind == "out" else "an input to another input"
                return None, None, 0, (f"Cannot connect {what}: drag from an output port (bottom) to an input port "
                                       "(top)")
            other, k = target.node, target.index
        else:
            other, k = target, None
        if start.kind == "out":
            src, port, why = self._source(start.node, start.index)
            dst, why2 = self._sink(other)
        else:
            dst, why = self._sink(start.node)
            src, port, why2 = self._source(other, k)
        if why or why2:
            return None, None, 0, why or why2
        if (src, dst) == self._reroute:
            return src, dst, port, None  # back where it came from
        problem = self.graph.connection_problem(src, dst, port)
        return src, dst, port, (f"Cannot connect: {problem}" if problem else None)

    def _free_port(self, item: NodeItem) -> int:
        """The output a connection dropped on a block's body leaves from: its first unconnected one."""
        return min(self.graph.free_port(item.node_id) or 0, len(item.out_ports) - 1)

    def _drop_target(self, pos: QPointF):
        port = self.port_at(pos)
        if port is not None and port.node is not self._conn_port.node:
            return port
        node = self.group_at(pos) or self.node_at(pos)
        if node is not None and node is not self._conn_port.node:
            return node
        return port if port is not None and port is not self._conn_port else None

    def _track_connection(self, pos: QPointF) -> None:
        target = self._drop_target(pos)
        src, dst, port, problem = self._ends_for(target)
        hot_port = None
        if isinstance(target, PortItem):
            hot_port = target
        elif isinstance(target, NodeItem):
            hot_port = target.in_port if self._conn_port.kind == "out" else target.out_ports[port]
        elif isinstance(target, GroupItem):
            hot_port = target.in_ports[0] if self._conn_port.kind == "out" else target.out_ports[0]
        if self._conn_target is not None and self._conn_target is not hot_port:
            self._conn_target.set_hot(None)
        self._conn_target = hot_port
        ok = None if target is None else problem is None
        if hot_port is not None:
            hot_port.set_hot("ok" if ok else "bad")
        self._conn_preview.set_end(pos, ok)
        if problem:
            self.message.emit(problem)

    def _finish_connection(self, pos: QPointF) -> None:
        target = self._drop_target(pos)
        src, dst, port, problem = self._ends_for(target)
        reroute = self._reroute
        self.cancel_connection()
        if reroute is not None:
            old_src, old_dst = reroute
            if target is None:
                self._push(Macro("Remove connection", [Disconnect(old_src, old_dst)]))
                self.message.emit("")
            elif dst == old_dst:
                self.message.emit("")  # put back where it was
            elif problem:
                self.message.emit(problem)
            else:
                self._push(Macro("Re-route connection", [Disconnect(old_src, old_dst), Connect(src, dst, port=port)]))
                self.message.emit("")
            return
        if problem:
            self.message.emit(problem)
        elif src is not None and dst is not None:
            self._push(Connect(src, dst, port=port))
            self.message.emit("")

    def cancel_connection(self) -> None:
        if self._reroute is not None:
            edge = self.edges.get(self._reroute)
            if edge is not None:
                edge.setVisible(True)
            self._reroute = None
        if self._conn_target is not None:
            self._conn_target.set_hot(None)
        if self._conn_preview is not None:
            self.removeItem(self._conn_preview)
        self._conn_port = self._conn_preview = self._conn_target = None

    # -- drag and drop from the palette -----------------------------------------------
    def _block_type(self, event: QGraphicsSceneDragDropEvent) -> str | None:
        md = event.mimeData()
        if md is None or not md.hasFormat(BLOCK_MIME):
            return None
        return bytes(md.data(BLOCK_MIME)).decode("utf-8", "replace")

    def _set_drop_edge(self, edge: EdgeItem | None) -> None:
        if self._drop_edge is not None and self._drop_edge is not edge:
            self._drop_edge.set_highlight(False)
        self._drop_edge = edge
        if edge is not None:
            edge.set_highlight(True)

    def dragEnterEvent(self, event: QGraphicsSceneDragDropEvent) -> None:
        if self._block_type(event):
            event.setDropAction(Qt.CopyAction)
            event.accept()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QGraphicsSceneDragDropEvent) -> None:
        if self._block_type(event):
            self._set_drop_edge(self.edge_at(event.scenePos()))
            event.setDropAction(Qt.CopyAction)
            event.accept()
        else:
            event.ignore()

    def dragLeaveEvent(self, event: QGraphicsSceneDragDropEvent) -> None:
        self._set_drop_edge(None)
        event.accept()

    def dropEvent(self, event: QGraphicsSceneDragDropEvent) -> None:
        type_name = self._block_type(event)
        self._set_drop_edge(None)
        if not type_name:
            event.ignore()
            return
        event.setDropAction(Qt.CopyAction)
        event.accept()
        self.drop_block(type_name, event.scenePos())

    # -- clipboard --------------------------------------------------------------------
    @staticmethod
    def clip_from_mime(md) -> dict | None:
        if md is None:
            return None
        if md.hasFormat(CLIP_MIME):
            raw = bytes(md.data(CLIP_MIME)).decode("utf-8", "replace")
        elif md.hasText():
            raw = md.text()
        else:
            return None
        try:
            clip = json.loads(raw)
        except (ValueError, RecursionError):
            return None
        if not isinstance(clip, dict) or not isinstance(clip.get("nodes"), list) or not clip["nodes"]:
            return None
        if not isinstance(clip.get("edges", []), list):
            return None
        return clip

    # -- export -----------------------------------------------------------------------
    def render_image(self, painter: QPainter, target: QRectF, source: QRectF) -> None:
        """Draw the blocks (no selection marks) for PNG/SVG export. Item caches are off while
        drawing, so an SVG gets vector shapes and text instead of embedded bitmaps."""
        selected = self.selectedItems()
        self._syncing = True
        try:
            for it in selected:
                it.setSelected(False)
            for it in [*self.nodes.values(), *self.groups.values(), *self.stubs.values()]:
                it.setCacheMode(QGraphicsItem.NoCache)
            painter.fillRect(target, QColor(self.colors.background))
            self.render(painter, target, source)
        finally:
            for it in [*self.nodes.values(), *self.groups.values(), *self.stubs.values()]:
                it.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
            for it in selected:
                it.setSelected(True)
            self._syncing = False

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        painter.fillRect(rect, self.colors.background)

"""GraphScene: mirrors the document's graph as items and turns gestures into core commands.

It observes the graph's signals (node_added, edge_removed, ...) and adds or removes single
items; after each edit it compares every block's displayed state with the new analysis and
repaints only blocks whose label, summary, shape or error changed. All edits go through
Document.push.
"""

from __future__ import annotations

import json

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene, QGraphicsSceneDragDropEvent, QGraphicsSceneMouseEvent

from ...core.blocks import fmt_shape, get_spec
from ...core.blocks.base import MAX_PARTS
from ...core.commands import (
    AddNode,
    Connect,
    Disconnect,
    Macro,
    Move,
    insert_on_edge,
    remove_nodes,
    splice_into_edge,
    splice_refusal,
)
from ...core.graph import Graph, GraphError, Node
from ...core.placement import block_above
from ...core.shapes import NodeInfo, fmt_outputs
from ..document import Document
from ..theme import canvas_colors
from .items import NODE_H, NODE_W, ConnectionPreview, EdgeItem, NodeItem, NodeState, PortItem

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

    def __init__(self, document: Document, parent=None):
        super().__init__(parent)
        self.document = document
        self.colors = canvas_colors()
        self.nodes: dict[str, NodeItem] = {}
        self.edges: dict[tuple[str, str], EdgeItem] = {}
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
                (g.node_changed, self._on_node_changed))

    def detach(self) -> None:
        """Stop following the graph (the scene is being thrown away)."""
        if self._graph is not None:
            for sig, slot in self._hooks(self._graph):
                sig.disconnect(slot)
            self._graph = None

    def rebuild(self) -> None:
        self._attach(self.document.graph)
        self._syncing = True
        try:
            self.clear()
            self.nodes.clear()
            self.edges.clear()
            self._conn_port = self._conn_preview = self._conn_target = self._drop_edge = None
            self._reroute = None
            self._press_pos = None
            g = self.graph
            infos = self.document.analysis.nodes
            for node in g:
                self._add_node_item(node, infos.get(node.id))  # refresh() below adds the warnings
            for src, dst in g.edges:
                self._add_edge_item(src, dst)
            for nid, item in self.nodes.items():
                item.input_order = g.inputs(nid)
        finally:
            self._syncing = False
        self.refresh()
        self.setSceneRect(self._content_rect())
        self._select_from_document(self.document.selection)

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

    def _on_node_added(self, nid: str) -> None:
        self._add_node_item(self.graph.node(nid))
        self._grow_scene_rect(self.nodes[nid])

    def _on_node_removed(self, nid: str) -> None:
        item = self.nodes.pop(nid, None)
        if item is not None:
            for edge in list(item.edges):
                self._drop_edge_item(edge)
            self.removeItem(item)

    def _on_edge_added(self, src: str, dst: str) -> None:
        self._add_edge_item(src, dst)
        self._reslot(dst)

    def _on_edge_removed(self, src: str, dst: str) -> None:
        edge = self.edges.get((src, dst))
        if edge is not None:
            self._drop_edge_item(edge)
        if dst in self.graph:
            self._reslot(dst)

    def _drop_edge_item(self, edge: EdgeItem) -> None:
        self.edges.pop(edge.key, None)
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
        """Repaint only the blocks whose displayed state changed."""
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
        """The bounding box of all blocks (for fit-to-view and image export)."""
        r = QRectF()
        for item in self.nodes.values():
            r = r.united(item.sceneBoundingRect())
        return r

    def node_at(self, pos: QPointF) -> NodeItem | None:
        for it in self.items(pos):
            if isinstance(it, NodeItem):
                return it
            if it.parentItem() is not None and isinstance(it.parentItem(), NodeItem):
                return it.parentItem()
        return None

    def edge_at(self, pos: QPointF, ignore: NodeItem | None = None) -> EdgeItem | None:
        """The connection under `pos`, unless a block (other than `ignore`) lies above it."""
        for it in self.items(pos):
            if isinstance(it, EdgeItem):
                return it
            if it is ignore or (ignore is not None and it.parentItem() is ignore):
                continue
            if isinstance(it, (NodeItem, PortItem)) or isinstance(it.parentItem(), NodeItem):
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
        return [it.key for it in self.selectedItems() if isinstance(it, EdgeItem)]

    def _selection_to_document(self) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            self.document.set_selection(self.selected_node_ids())
        finally:
            self._syncing = False

    def _select_from_document(self, ids: list[str]) -> None:
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
        cmd = AddNode(type_name, pos=pos)
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
        free = ((n.id, n.pos) for n in self.graph if self.graph.free_port(n.id) is not None)
        src = block_above(free, pos, (NODE_W, NODE_H))
        if src is None:
            return None
        new_id = self.graph.new_id()
        cmd = Macro(f"Add {type_name}", [AddNode(type_name, pos=pos, node_id=new_id),
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
        try:
            cmd = insert_on_edge(self.graph, src, dst, type_name, pos=pos)
        except GraphError as exc:
            self.message.emit(str(exc))
            return None
        problem = self.document.push(cmd)
        if problem:
            self.message.emit(f"Cannot insert {type_name} here: {problem}")
            return None
        new_id = cmd.children[1].node_id
        self.document.set_selection([new_id])
        return new_id

    def request_connect(self, src: str, dst: str, port: int = 0) -> str | None:
        """Connect src's output `port` -> dst, or say why not (on the status bar). Returns the refusal."""
        problem = self.graph.connection_problem(src, dst, port)
        if problem:
            msg = f"Cannot connect: {problem}"
            self.message.emit(msg)
            return msg
        return self._push(Connect(src, dst, port=port))

    def nudge_selection(self, dx: float, dy: float) -> bool:
        """Move the selected blocks by (dx, dy); repeated nudges are one undo step."""
        ids = self.selected_node_ids()
        if not ids:
            return False
        moves = {}
        for nid in ids:
            x, y = self.graph.node(nid).pos
            moves[nid] = self.snapped(x + dx, y + dy)
        if all(moves[n] == tuple(self.graph.node(n).pos) for n in ids):
            return True
        return self._push(Move(moves, nudge=True)) is None

    def delete_selection(self) -> bool:
        nodes = self.selected_node_ids()
        gone = set(nodes)
        edges = [e for e in self.selected_edges() if e[0] not in gone and e[1] not in gone]
        if not nodes and not edges:
            return False
        children = [Disconnect(s, d) for s, d in edges]
        if nodes:
            children.append(remove_nodes(self.graph, nodes))
        text = "Delete connection" if not nodes and len(edges) == 1 else "Delete"
        cmd = children[0] if len(children) == 1 else Macro(text, children)
        if not nodes:
            cmd.text = text
        return self._push(cmd) is None

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
        if len(self._press_pos) != 1:
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
        if event.button() == Qt.LeftButton and self._press_pos:
            old, moved = {}, {}
            for nid, start in self._press_pos.items():
                item = self.nodes.get(nid)
                if item is not None and item.pos() != start:
                    old[nid] = (start.x(), start.y())
                    moved[nid] = (round(item.x(), 1), round(item.y(), 1))
            self._press_pos = None
            edge, self._drop_edge = self._drop_edge, None
            if edge is not None:
                edge.set_highlight(False)
            if moved and edge is not None and len(moved) == 1:
                nid, pos = next(iter(moved.items()))
                try:
                    cmd = splice_into_edge(self.graph, nid, *edge.key, pos=pos)
                    problem = self.document.push(cmd)
                except GraphError as exc:
                    problem = str(exc)
                if problem is None:
                    return
                self.message.emit(f"Cannot insert {self.graph.node(nid).label} here: {problem}")
            if moved:
                self._push(Move(moved, old))  # one command for the whole drag

    def mouseDoubleClickEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        item = self.node_at(event.scenePos())
        if item is not None and event.button() == Qt.LeftButton:
            self.node_activated.emit(item.node_id)
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def contextMenuEvent(self, event) -> None:
        item = self.node_at(event.scenePos()) or self.edge_at(event.scenePos())
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
        """Pressing a full input port (one that takes no more connections) picks up its connection."""
        if port.kind != "in":
            return None
        dst = port.node.node_id
        ins = self.graph.inputs(dst)
        limit = self.graph.node(dst).spec.max_inputs
        if not ins or limit is None or len(ins) < limit:
            return None
        return ins[-1], dst

    def _pick_up(self, src: str, dst: str) -> None:
        self._reroute = (src, dst)
        edge = self.edges.get((src, dst))
        if edge is not None:
            edge.setVisible(False)
        ports = self.nodes[src].out_ports
        self._start_connection(ports[min(self.graph.port(src, dst), len(ports) - 1)])  # it keeps its output
        self.message.emit("Drop on another input port to re-route the connection, or on empty canvas to remove it")

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
            other = target.node.node_id
        else:
            other = target.node_id
        mine = start.node.node_id
        if start.kind == "out":
            src, dst, port = mine, other, start.index
        else:
            src, dst = other, mine
            port = target.index if isinstance(target, PortItem) else self._free_port(target)
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
        node = self.node_at(pos)
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
            for it in self.nodes.values():
                it.setCacheMode(QGraphicsItem.NoCache)
            painter.fillRect(target, QColor(self.colors.background))
            self.render(painter, target, source)
        finally:
            for it in self.nodes.values():
                it.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
            for it in selected:
                it.setSelected(True)
            self._syncing = False

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        painter.fillRect(rect, self.colors.background)

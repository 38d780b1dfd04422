"""Painted canvas items: blocks (NodeItem) with their ports and badge, and edges.

A block that cannot work has a red round "!" and its reason in place of its shape line; a valid
block that does not fit the chosen training data has an amber triangle, and keeps its shape line.

Nothing here holds a QWidget: every block is drawn in paint() and cached as a device pixmap, so a
500-block graph pans from the cache. Items never edit the graph; the scene turns gestures into
core commands.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from functools import partial

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPainterPathStroker,
    QPen,
    QPolygonF,
)
from PySide6.QtWidgets import QApplication, QGraphicsItem, QStyleOptionGraphicsItem

from ..theme import ERROR, WARNING, CanvasColors, canvas_colors, category_color

NODE_W = 180.0
NODE_H = 74.0
HEADER_H = 22.0
RADIUS = 6.0
PORT_R = 5.0
MULTI_PORT_W = 72.0  # Add/Concat take many inputs: a wide input port, one slot per edge
LOD_TEXT = 0.4  # below this zoom, blocks are plain coloured boxes


@dataclass(frozen=True)
class NodeState:
    """Everything a block shows; the scene compares states to repaint only what changed."""

    label: str
    type: str
    category: str
    summary: str
    shape: str
    params: str
    error: str | None
    waiting: bool
    doc: str
    warning: str | None = None  # valid, but does not fit the chosen data (never set with an error)
    port_shapes: tuple[str, ...] = ("",)  # one entry per output port: its shape, "" while unknown
    detail: str | None = None  # with an error: the arithmetic step that goes wrong (the verdict's)


class _Fonts:
    """Block fonts and their metrics, made once (eliding text is the costly part of an update)."""

    title: QFont
    body: QFont
    small: QFont
    title_m: QFontMetricsF
    body_m: QFontMetricsF
    small_m: QFontMetricsF
    ready = False

    @classmethod
    def get(cls) -> type[_Fonts]:
        if not cls.ready:
            base = QApplication.font()
            size = base.pointSizeF() if base.pointSizeF() > 0 else 9.0
            cls.title = QFont(base)
            cls.title.setPointSizeF(size)
            cls.title.setBold(True)
            cls.body = QFont(base)
            cls.body.setPointSizeF(size)
            cls.small = QFont(base)
            cls.small.setPointSizeF(max(6.5, size - 1.0))
            cls.title_m, cls.body_m, cls.small_m = (QFontMetricsF(f) for f in (cls.title, cls.body, cls.small))
            cls.ready = True
        return cls


def _colors(item: QGraphicsItem) -> CanvasColors:
    scene = item.scene()
    colors = getattr(scene, "colors", None)
    return colors if colors is not None else canvas_colors()


class _Box(QGraphicsItem):
    """What a block and a collapsed group share: a movable card with a coloured header, three
    lines of text (name, summary, shape or error, with the parameter count at the right), and
    output ports spread along the bottom edge."""

    def __init__(self):
        super().__init__()
        self.edges: set[EdgeItem] = set()
        self._text: tuple[str, str, str, str] = ("", "", "", "")
        self.setFlags(QGraphicsItem.ItemIsSelectable | QGraphicsItem.ItemIsMovable
                      | QGraphicsItem.ItemSendsGeometryChanges)
        self.setCacheMode(QGraphicsItem.DeviceCoordinateCache)

    @staticmethod
    def _x(k: int, n: int) -> float:
        """Where port k of n sits along an edge."""
        return NODE_W / 2 if n <= 1 else NODE_W * (min(k, n - 1) + 1) / (n + 1)

    def _resize_ports(self, ports: list[PortItem], kind: str, count: int) -> bool:
        """`count` ports of this kind, spread along the edge; True when their number changed."""
        changed = len(ports) != count
        while len(ports) > count:
            port = ports.pop()
            port.setParentItem(None)
            if port.scene() is not None:
                port.scene().removeItem(port)
        while len(ports) < count:
            ports.append(PortItem(self, kind, index=len(ports)))
        for k, port in enumerate(ports):
            port.setPos(self._x(k, count), 0.0 if kind == "in" else NODE_H)
            if port.count != count:
                port.prepareGeometryChange()  # the number beside the port comes or goes
                port.count = count
        return changed

    def _set_text(self, label: str, summary: str, third: str, params: str, badge: bool) -> None:
        """The three lines, elided once here rather than on every paint."""
        f = _Fonts.get()
        room = NODE_W - 20
        params_w = f.small_m.horizontalAdvance(params) + 8 if params else 0
        self._text = (
            f.title_m.elidedText(label, Qt.ElideRight, room - (14 if badge else 0)),
            f.body_m.elidedText(summary, Qt.ElideRight, room),
            f.small_m.elidedText(third, Qt.ElideRight, room - params_w),
            params,
        )

    def center(self) -> QPointF:
        return self.pos() + QPointF(NODE_W / 2, NODE_H / 2)

    def itemChange(self, change, value):
        if change == QGraphicsItem.ItemPositionChange:
            scene = self.scene()
            if scene is not None and hasattr(scene, "drag_position"):
                return scene.drag_position(value)
        elif change == QGraphicsItem.ItemPositionHasChanged:
            for edge in self.edges:
                edge.adjust()
            scene = self.scene()
            if scene is not None and hasattr(scene, "item_moved"):
                scene.item_moved(self)
        elif change == QGraphicsItem.ItemSelectedHasChanged:
            self.setZValue(1.0 if value else 0.0)
        return super().itemChange(change, value)

    def _look(self, painter: QPainter, option: QStyleOptionGraphicsItem) -> tuple:
        """What painting needs: colours, state, zoom (level of detail), category colour, whether
        selected, whether it failed (an error of its own, not waiting on one upstream)."""
        st = self.state
        return (_colors(self), st, option.levelOfDetailFromTransform(painter.worldTransform()),
                category_color(st.category), self.isSelected(), st.error is not None and not st.waiting)

    def _paint_card(self, painter: QPainter, c: CanvasColors, cat: QColor, rect: QRectF) -> None:
        painter.setPen(Qt.NoPen)
        painter.setBrush(c.node_fill)
        painter.drawRoundedRect(rect, RADIUS, RADIUS)
        painter.setBrush(cat)
        painter.drawRoundedRect(QRectF(0, 0, NODE_W, HEADER_H), RADIUS, RADIUS)
        painter.drawRect(QRectF(0, HEADER_H - RADIUS, NODE_W, RADIUS))

    def _paint_text(self, painter: QPainter, c: CanvasColors, failed: bool) -> None:
        f = _Fonts.get()
        title, summary, third, params = self._text
        painter.setFont(f.title)
        painter.setPen(c.header_text)
        painter.drawText(QRectF(10, 0, NODE_W - 20, HEADER_H), Qt.AlignVCenter | Qt.AlignLeft, title)
        painter.setFont(f.body)
        painter.setPen(c.text)
        painter.drawText(QRectF(10, HEADER_H + 3, NODE_W - 20, 22), Qt.AlignVCenter | Qt.AlignLeft, summary)
        painter.setFont(f.small)
        painter.setPen(c.error if failed else c.muted)
        painter.drawText(QRectF(10, HEADER_H + 26, NODE_W - 20, 20), Qt.AlignVCenter | Qt.AlignLeft, third)
        if params:
            painter.setPen(c.muted)
            painter.drawText(QRectF(10, HEADER_H + 26, NODE_W - 20, 20), Qt.AlignVCenter | Qt.AlignRight, params)


class NodeItem(_Box):
    def __init__(self, node_id: str, state: NodeState, max_inputs: int | None, takes_input: bool):
        super().__init__()
        self.node_id = node_id
        self.state = state
        self.input_order: list[str] = []  # the graph's input order of this block, for edge slots
        # Hovering fills the tooltip with the block's arithmetic: asked for when a user points at a
        # block, not worked out for every block on every edit.
        self.setAcceptHoverEvents(True)
        self.in_port = PortItem(self, "in", multi=max_inputs is None) if takes_input else None
        self.out_ports: list[PortItem] = []  # one per output; Split and Chunk have several
        self.badge = BadgeItem(self)
        self.set_state(state, force=True)

    @property
    def out_port(self) -> PortItem:
        return self.out_ports[0]

    def _set_outputs(self, shapes: tuple[str, ...]) -> None:
        """One output port per part, spread along the bottom edge, each with its shape as tooltip."""
        moved = self._resize_ports(self.out_ports, "out", max(1, len(shapes)))
        for k, port in enumerate(self.out_ports):
            port.set_shape(shapes[k] if k < len(shapes) else "")
        if moved:
            for edge in self.edges:
                if edge.src is self:
                    edge.adjust()

    def port_x(self, k: int) -> float:
        return self._x(k, len(self.out_ports))

    # -- geometry ---------------------------------------------------------------------
    def boundingRect(self) -> QRectF:
        return QRectF(-2, -2, NODE_W + 4, NODE_H + 4)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(QRectF(0, 0, NODE_W, NODE_H), RADIUS, RADIUS)
        return path

    def out_anchor(self, port: int = 0) -> QPointF:
        return self.pos() + QPointF(self.port_x(port), NODE_H + PORT_R)

    def in_anchor(self, src_id: str) -> QPointF:
        x = NODE_W / 2
        n = len(self.input_order)
        if self.in_port is not None and self.in_port.multi and n > 1 and src_id in self.input_order:
            i = self.input_order.index(src_id)
            x = NODE_W / 2 - MULTI_PORT_W / 2 + MULTI_PORT_W * (i + 1) / (n + 1)
        return self.pos() + QPointF(x, -PORT_R)

    # -- state ------------------------------------------------------------------------
    def set_state(self, state: NodeState, force: bool = False) -> None:
        old = None if force else self.state
        if state == old:
            return
        self.state = state
        if old is None or old.port_shapes != state.port_shapes:
            self._set_outputs(state.port_shapes)
        failed = bool(state.error) and not state.waiting
        warned = bool(state.warning) and not state.error
        # the third line: the reason, or which upstream block this one waits on, else the shape
        third = state.error or (f"→ {state.shape}" if state.shape else "")
        self._set_text(state.label, state.summary, third, "" if state.error else state.params, failed or warned)
        self._set_tooltip(self.isUnderMouse())
        if old is None or (old.error, old.waiting, old.warning, old.detail) != \
                (state.error, state.waiting, state.warning, state.detail):
            self.badge.level = "error" if failed else "warning"
            self.badge.setVisible(failed or warned)
            if failed:
                self.badge.setToolTip(_tip(f"<b style='color:{ERROR}'>✗ Error:</b> ", state.error)
                                      + _detail_html(state.detail))
            elif warned:
                self.badge.setToolTip(_tip(f"<b style='color:{WARNING}'>⚠ Warning:</b> ", state.warning) +
                                      "<br>The model is valid; it does not fit the chosen training data yet.")
            else:
                self.badge.setToolTip("")
            self.badge.update()
        self.update()

    def tooltip_html(self, arithmetic: bool = True) -> str:
        """Name, type and description; the error with its failing arithmetic, or the output shape
        and how it comes out (`arithmetic`: read from the document, short form)."""
        st = self.state
        tip = f"<b>{_esc(st.label)}</b> ({st.type})<br>{_esc(st.doc)}"
        if st.error:
            tip += f"<br><span style='color:{ERROR}'>{_esc(st.error)}</span>" + _detail_html(st.detail)
        elif st.shape:
            tip += f"<br>Output: {st.shape}"
            lines = self._arithmetic_html() if arithmetic else ""
            if lines:
                tip += "<br>" + lines
        if st.warning and not st.error:
            tip += f"<br><span style='color:{WARNING}'>⚠ {_esc(st.warning)}</span>"
        return tip

    def _arithmetic_html(self) -> str:
        from ..arithmetic_view import tooltip_html

        doc = getattr(self.scene(), "document", None)
        if doc is None or self.node_id not in doc.graph:
            return ""
        b = doc.arithmetic(self.node_id)
        return tooltip_html(b, doc.fields.get(self.node_id) if b is not None else None)

    def _set_tooltip(self, arithmetic: bool) -> None:
        tip = self.tooltip_html(arithmetic)
        if tip != self.toolTip():
            self.setToolTip(tip)

    def hoverEnterEvent(self, event) -> None:
        self._set_tooltip(True)
        super().hoverEnterEvent(event)

    # -- painting ---------------------------------------------------------------------
    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        c, st, lod, cat, selected, failed = self._look(painter, option)
        warned = bool(st.warning) and st.error is None
        rect = QRectF(0, 0, NODE_W, NODE_H)
        if st.waiting:
            painter.setOpacity(0.45)
        if lod < LOD_TEXT:
            # Zoomed far out: one box per block, no text or antialiasing; errors stay visible.
            fill = QColor(cat)
            fill.setAlpha(200)
            painter.setBrush(fill)
            border = c.accent if selected else (c.error if failed else (c.warning if warned else cat.darker(130)))
            pen = QPen(border, 3 if (selected or failed or warned) else 1)
            pen.setCosmetic(True)  # in screen pixels: visible however far we zoom out
            painter.setPen(pen)
            painter.drawRect(rect)
            return
        painter.setRenderHint(QPainter.Antialiasing)
        self._paint_card(painter, c, cat, rect)
        if selected:
            painter.setPen(QPen(c.accent, 2.5))
        elif failed:
            painter.setPen(QPen(c.error, 1.6))
        elif warned:
            painter.setPen(QPen(c.warning, 1.6))
        else:
            painter.setPen(QPen(c.node_border, 1.0))
        painter.setBrush(Qt.NoBrush)
        painter.drawRoundedRect(rect.adjusted(0.5, 0.5, -0.5, -0.5), RADIUS, RADIUS)
        self._paint_text(painter, c, failed)


class PortItem(QGraphicsItem):
    """An input (top) or output (bottom) port; dragging from one starts a connection. A block
    with several outputs (Split, Chunk) has one numbered output port per part, `index` 0, 1, ..."""

    def __init__(self, node: NodeItem, kind: str, multi: bool = False, index: int = 0):
        super().__init__(node)
        self.node = node
        self.kind = kind
        self.multi = multi
        self.index = index
        self.count = 1  # output ports on this block; the number is drawn beside the port when > 1
        self.hot: str | None = None  # None, "ok" or "bad" while a connection is dragged over it
        self._hover = False
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.CrossCursor)
        self.setPos(NODE_W / 2, 0.0 if kind == "in" else NODE_H)
        self.setZValue(2)
        self.setToolTip("Input: drop a connection here" if kind == "in"
                        else "Output: drag to another block's input to connect")

    def set_shape(self, shape: str) -> None:
        if self.kind != "out":
            return
        if self.count > 1:
            self.setToolTip(f"Output {self.index}{': ' + shape if shape else ''} — drag to another block's input "
                            "to connect")
        else:
            self.setToolTip("Output: drag to another block's input to connect")
        self.update()

    def _half_w(self) -> float:
        return MULTI_PORT_W / 2 if self.multi else PORT_R

    def boundingRect(self) -> QRectF:
        hw = self._half_w() + 4
        r = QRectF(-hw, -PORT_R - 4, 2 * hw, 2 * PORT_R + 8)
        if self.count > 1:  # room for the output's number, below and right of the port
            r = r.united(QRectF(PORT_R, PORT_R - 2, 16, 14))
        return r

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        hw = self._half_w() + 4
        path.addRect(QRectF(-hw, -PORT_R - 4, 2 * hw, 2 * PORT_R + 8))  # a generous hit area
        return path

    def set_hot(self, hot: str | None) -> None:
        if hot != self.hot:
            self.hot = hot
            self.update()

    def hoverEnterEvent(self, event) -> None:
        self._hover = True
        self.update()

    def hoverLeaveEvent(self, event) -> None:
        self._hover = False
        self.update()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        if option.levelOfDetailFromTransform(painter.worldTransform()) < LOD_TEXT:
            return
        c = _colors(self)
        cat = category_color(self.node.state.category)
        painter.setRenderHint(QPainter.Antialiasing)
        if self.hot == "ok":
            fill, border = c.ok, c.ok
        elif self.hot == "bad":
            fill, border = c.error, c.error
        elif self._hover:
            fill, border = c.accent, c.accent
        else:
            fill, border = c.node_fill, cat
        painter.setPen(QPen(border, 1.6))
        painter.setBrush(fill)
        hw = self._half_w()
        painter.drawRoundedRect(QRectF(-hw, -PORT_R, 2 * hw, 2 * PORT_R), PORT_R, PORT_R)
        if self.count > 1:
            painter.setFont(_Fonts.get().small)
            painter.setPen(c.muted)
            painter.drawText(QRectF(PORT_R, PORT_R - 2, 16, 14), Qt.AlignLeft | Qt.AlignVCenter, str(self.index))


class BadgeItem(QGraphicsItem):
    """The red round "!" on a block that cannot work, or the amber triangle on one that does not
    fit the chosen data (two shapes, not only two colours); its tooltip is the reason."""

    R = 9.0

    def __init__(self, node: NodeItem):
        super().__init__(node)
        self.level = "error"  # or "warning"
        self.setPos(NODE_W - 4, 4)
        self.setZValue(3)
        self.setVisible(False)
        self.setAcceptHoverEvents(True)

    def boundingRect(self) -> QRectF:
        return QRectF(-self.R - 1, -self.R - 1, 2 * self.R + 2, 2 * self.R + 2)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        c = _colors(self)
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setPen(QPen(c.node_fill, 1.5))
        r = self.R
        text_rect = self.boundingRect()
        if self.level == "warning":
            painter.setBrush(c.warning)
            painter.drawPolygon(QPolygonF([QPointF(0, -r), QPointF(r, r * 0.8), QPointF(-r, r * 0.8)]))
            text_rect = text_rect.translated(0, 2)
            ink = QColor("#1d2127")  # dark on amber reads better than white
        else:
            painter.setBrush(c.error)
            painter.drawEllipse(QPointF(0, 0), r, r)
            ink = QColor("#ffffff")
        if option.levelOfDetailFromTransform(painter.worldTransform()) >= LOD_TEXT:
            f = QFont(_Fonts.get().title)
            if self.level == "warning":
                f.setPointSizeF(f.pointSizeF() * 0.85)
            painter.setFont(f)
            painter.setPen(ink)
            painter.drawText(text_rect, Qt.AlignCenter, "!")


STACK = 4.0  # how far the cards behind a collapsed group stick out


@dataclass(frozen=True)
class GroupState:
    """What a collapsed group shows: its name, size, output shape(s), parameter total, and the
    first failing block inside (a red badge)."""

    label: str
    summary: str
    shape: str
    params: str
    error: str | None
    waiting: bool
    in_tips: tuple[str, ...] = ("",)  # one per input port: where the value comes from
    port_shapes: tuple[str, ...] = ("",)  # one per output port
    category: str = "Group"


class GroupItem(_Box):
    """A collapsed group: one movable block drawn as a stack of cards with a double border, one
    input port per value it reads from outside and one output port per value read outside."""

    node_id = None  # not a block: edges to it carry their graph edge as `key`

    def __init__(self, group_id: str, state: GroupState):
        super().__init__()
        self.group_id = group_id
        self.state = state
        self.in_ports: list[PortItem] = []
        self.out_ports: list[PortItem] = []
        self.badge = BadgeItem(self)
        self.set_state(state, force=True)

    def set_state(self, state: GroupState, force: bool = False) -> None:
        old = None if force else self.state
        if state == old:
            return
        self.state = state
        self._resize_ports(self.in_ports, "in", max(1, len(state.in_tips)))
        self._resize_ports(self.out_ports, "out", max(1, len(state.port_shapes)))
        for k, port in enumerate(self.in_ports):
            tip = state.in_tips[k] if k < len(state.in_tips) else ""
            port.setToolTip(f"Input {k}{': ' + tip if tip else ''} — drop a connection here to connect to the "
                            "first block inside that takes one")
        for k, port in enumerate(self.out_ports):
            port.set_shape(state.port_shapes[k] if k < len(state.port_shapes) else "")
        for edge in self.edges:
            edge.adjust()
        failed = bool(state.error) and not state.waiting
        third = state.error or (f"→ {state.shape}" if state.shape else "")
        self._set_text(state.label, state.summary, third, "" if state.error else state.params, failed)
        tip = f"<b>{_esc(state.label)}</b> (group: {_esc(state.summary)})<br>Double-click to open it"
        if state.error:
            tip += f"<br><span style='color:{ERROR}'>{_esc(state.error)}</span>"
        elif state.shape:
            tip += f"<br>Output: {_esc(state.shape)}"
        self.setToolTip(tip)
        self.badge.level = "error"
        self.badge.setVisible(failed)
        self.badge.setToolTip(_tip(f"<b style='color:{ERROR}'>✗ Error inside:</b> ", state.error) if failed else "")
        self.badge.update()
        self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(-2, -2, NODE_W + 2 * STACK + 4, NODE_H + 2 * STACK + 4)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(QRectF(0, 0, NODE_W + 2 * STACK, NODE_H + 2 * STACK), RADIUS, RADIUS)
        return path

    def out_anchor(self, port: int = 0) -> QPointF:
        return self.pos() + QPointF(self._x(port, len(self.out_ports)), NODE_H + PORT_R)

    def in_anchor_at(self, slot: int) -> QPointF:
        return self.pos() + QPointF(self._x(slot, len(self.in_ports)), -PORT_R)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        c, st, lod, cat, selected, failed = self._look(painter, option)
        rect = QRectF(0, 0, NODE_W, NODE_H)
        border = c.accent if selected else (c.error if failed else cat)
        if lod < LOD_TEXT:
            fill = QColor(cat)
            fill.setAlpha(200)
            painter.setBrush(fill)
            pen = QPen(border, 3 if (selected or failed) else 1)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.drawRect(rect.translated(STACK, STACK))
            painter.drawRect(rect)
            return
        painter.setRenderHint(QPainter.Antialiasing)
        for k in (2, 1):  # the cards behind: a stack, so it reads as "several blocks in one"
            painter.setPen(QPen(cat, 1.2))
            painter.setBrush(c.node_fill)
            painter.drawRoundedRect(rect.translated(k * STACK, k * STACK), RADIUS, RADIUS)
        self._paint_card(painter, c, cat, rect)
        painter.setBrush(Qt.NoBrush)
        painter.setPen(QPen(border, 2.5 if selected or failed else 1.4))
        painter.drawRoundedRect(rect.adjusted(0.5, 0.5, -0.5, -0.5), RADIUS, RADIUS)
        painter.setPen(QPen(border, 1.0))  # the double border
        painter.drawRoundedRect(rect.adjusted(3.5, 3.5, -3.5, -3.5), RADIUS - 2, RADIUS - 2)
        self._paint_text(painter, c, failed)


STUB_W, STUB_H = 150.0, 26.0


@dataclass(frozen=True)
class StubState:
    label: str  # the block outside the open group
    category: str = "Utility"


class StubItem(QGraphicsItem):
    """Inside an open group: a read-only marker for a value that comes from a block outside
    ("from conv1", above) or goes to one ("to fc", below), so the group's interface stays visible."""

    node_id = None
    out_ports: list = []

    def __init__(self, kind: str, label: str):
        super().__init__()
        self.kind = kind  # "in": a value from outside; "out": read outside
        self.state = StubState(label)
        self.edges: set[EdgeItem] = set()
        self.ends: list = []  # the items inside it is wired to (known before its edges are drawn)
        self.text = f"from {label}" if kind == "in" else f"to {label}"
        self.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.setToolTip(f"{'Comes from' if kind == 'in' else 'Goes to'} {_esc(label)}, outside this group "
                        "(go up to edit it)")

    def boundingRect(self) -> QRectF:
        return QRectF(-1, -1, STUB_W + 2, STUB_H + 2)

    def out_anchor(self, port: int = 0) -> QPointF:
        return self.pos() + QPointF(STUB_W / 2, STUB_H)

    def in_anchor(self, src_id: str = "") -> QPointF:
        return self.pos() + QPointF(STUB_W / 2, 0)

    def in_anchor_at(self, slot: int) -> QPointF:
        return self.in_anchor()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        c = _colors(self)
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setPen(QPen(c.muted, 1.2, Qt.DashLine))
        painter.setBrush(c.background)
        painter.drawRoundedRect(QRectF(0, 0, STUB_W, STUB_H), STUB_H / 2, STUB_H / 2)
        if option.levelOfDetailFromTransform(painter.worldTransform()) < LOD_TEXT:
            return
        f = _Fonts.get()
        painter.setFont(f.small)
        painter.setPen(c.muted)
        painter.drawText(QRectF(10, 0, STUB_W - 20, STUB_H), Qt.AlignCenter,
                         f.small_m.elidedText(self.text, Qt.ElideMiddle, STUB_W - 20))


class EdgeItem(QGraphicsItem):
    """A tensor flowing from src's output port (`port`, for a block with several) to dst's input
    port (a vertical S-curve)."""

    def __init__(self, src, dst, port: int = 0, key: tuple[str, str] | None = None, slot: int | None = None):
        super().__init__()
        # src/dst are the visible items (a block, a collapsed group, or a stub for a value from or to
        # outside the open group); `key` is the block-to-block edge of the graph it stands for;
        # `port` is src's visible output and `slot` dst's visible input (None: by dst's input order).
        self.src, self.dst, self.port, self.slot = src, dst, port, slot
        self.key: tuple[str, str] = key or (src.node_id, dst.node_id)
        self.keys: list[tuple[str, str]] = [self.key]  # more where one line stands for several edges
        self.highlight = False  # a palette block or a free block is dragged over it (drop inserts there)
        self._path = QPainterPath()
        self._arrow = QPolygonF()
        self._shape: QPainterPath | None = None
        self._bounds = QRectF()
        self.setFlags(QGraphicsItem.ItemIsSelectable)
        self.setZValue(-1)
        self.setToolTip(self.describe())
        self.adjust()

    def describe(self) -> str:
        out = f" (output {self.port})" if len(self.src.out_ports) > 1 or self.port else ""
        return f"{self.src.state.label}{out} → {self.dst.state.label}"

    def adjust(self) -> None:
        p1 = self.src.out_anchor(self.port)
        p2 = self.dst.in_anchor(self.key[0]) if self.slot is None else self.dst.in_anchor_at(self.slot)
        dy = max(30.0, abs(p2.y() - p1.y()) * 0.5)
        if p2.y() < p1.y():  # a backward edge loops around instead of cutting through blocks
            dy = max(80.0, dy)
        path = QPainterPath(p1)
        path.cubicTo(p1 + QPointF(0, dy), p2 - QPointF(0, dy), p2)
        self.prepareGeometryChange()
        self._path = path
        self._arrow = QPolygonF([p2 + QPointF(0, PORT_R - 1), p2 + QPointF(-4.5, -5), p2 + QPointF(4.5, -5)])
        self._shape = None
        self._bounds = path.boundingRect().adjusted(-8, -8, 8, 8)

    def boundingRect(self) -> QRectF:
        return self._bounds

    def shape(self) -> QPainterPath:
        if self._shape is None:
            stroker = QPainterPathStroker()
            stroker.setWidth(12)
            self._shape = stroker.createStroke(self._path)
        return self._shape

    def set_highlight(self, on: bool) -> None:
        if on != self.highlight:
            self.highlight = on
            self.update()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        c = _colors(self)
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        if self.highlight:
            pen = QPen(c.accent, 3.5, Qt.DashLine)
        elif self.isSelected():
            pen = QPen(c.accent, 2.5)
        else:
            pen = QPen(c.edge, 1.6)
        if lod < LOD_TEXT:
            pen.setCosmetic(True)
            pen.setWidthF(1.0 if not (self.highlight or self.isSelected()) else 2.5)
            painter.setPen(pen)
            painter.drawPath(self._path)
            return
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setPen(pen)
        painter.setBrush(Qt.NoBrush)
        painter.drawPath(self._path)
        painter.setPen(Qt.NoPen)
        painter.setBrush(QBrush(pen.color()))
        painter.drawPolygon(self._arrow)


class ConnectionPreview(QGraphicsItem):
    """The dashed curve that follows the mouse while a connection is dragged."""

    def __init__(self, start: QPointF, downward: bool):
        super().__init__()
        self.start, self.end, self.downward = start, start, downward
        self.ok: bool | None = None
        self._path = QPainterPath()
        self.setZValue(10)
        self.set_end(start)

    def set_end(self, end: QPointF, ok: bool | None = None) -> None:
        self.prepareGeometryChange()
        self.end, self.ok = end, ok
        a, b = (self.start, end) if self.downward else (end, self.start)
        dy = max(30.0, abs(b.y() - a.y()) * 0.5)
        path = QPainterPath(a)
        path.cubicTo(a + QPointF(0, dy), b - QPointF(0, dy), b)
        self._path = path

    def boundingRect(self) -> QRectF:
        return self._path.boundingRect().adjusted(-4, -4, 4, 4)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        c = _colors(self)
        color = c.ok if self.ok else (c.error if self.ok is False else c.accent)
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setPen(QPen(color, 2.0, Qt.DashLine))
        painter.drawPath(self._path)


_esc = partial(html.escape, quote=False)  # &, < and > only, as Qt rich text needs


def _detail_html(detail: str | None) -> str:
    from ..arithmetic_view import detail_html

    return f"<br>{detail_html(detail)}" if detail else ""


def _tip(head: str, text: str) -> str:
    """A rich-text tooltip: a long reason wraps instead of running off the screen, a short one
    stays on one line (Qt wraps rich tooltips narrowly)."""
    body = head + _esc(text)
    return body if len(text) > 60 else f"<nobr>{body}</nobr>"

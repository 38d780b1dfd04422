"""GraphView: zoom (wheel, Ctrl+0 fit, Ctrl+1 100 %), pan (middle-drag, space+drag, touchpad),
rubber-band selection and a background grid that thins out when zoomed out."""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QLineF, QPoint, QRectF, Qt, Signal
from PySide6.QtGui import QKeyEvent, QMouseEvent, QPainter, QPen, QWheelEvent
from PySide6.QtWidgets import QFrame, QGraphicsView

from .items import NodeItem
from .scene import GraphScene

MIN_ZOOM, MAX_ZOOM = 0.01, 3.0
GRID = 20.0
NUDGE_KEYS = {Qt.Key_Left: (-1, 0), Qt.Key_Right: (1, 0), Qt.Key_Up: (0, -1), Qt.Key_Down: (0, 1)}


class GraphView(QGraphicsView):
    zoom_changed = Signal(float)

    def __init__(self, scene: GraphScene, parent=None):
        super().__init__(scene, parent)
        self.setRenderHints(QPainter.Antialiasing | QPainter.TextAntialiasing | QPainter.SmoothPixmapTransform)
        self.setDragMode(QGraphicsView.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.IntersectsItemShape)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.SmartViewportUpdate)
        self.setCacheMode(QGraphicsView.CacheBackground)
        self.setFrameShape(QFrame.NoFrame)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.StrongFocus)
        self._space = False
        self._pan_from: QPoint | None = None
        scene.document.selection_changed.connect(self._reveal_selection)

    @property
    def graph_scene(self) -> GraphScene:
        return self.scene()

    # -- zoom -------------------------------------------------------------------------
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, z: float, anchor_under_mouse: bool = False) -> None:
        z = min(MAX_ZOOM, max(MIN_ZOOM, z))
        if math.isclose(z, self.zoom()):
            return
        old = self.transformationAnchor()
        if not anchor_under_mouse:
            self.setTransformationAnchor(QGraphicsView.AnchorViewCenter)
        factor = z / self.zoom()
        self.scale(factor, factor)
        self.setTransformationAnchor(old)
        self.resetCachedContent()
        self.zoom_changed.emit(self.zoom())

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom() * 1.25)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom() / 1.25)

    def zoom_reset(self) -> None:
        self.set_zoom(1.0)

    def _fit_zoom(self):
        """The padded rectangle of all blocks and the zoom that fits it, or None when empty."""
        rect = self.graph_scene.blocks_rect()
        if rect.isNull():
            self.set_zoom(1.0)
            return None
        rect = rect.adjusted(-40, -40, 40, 40)
        vp = self.viewport().rect()
        return rect, min(vp.width() / rect.width(), vp.height() / rect.height())

    def fit(self, max_zoom: float = 1.25) -> None:
        """Fit all blocks in view (never magnified beyond `max_zoom`)."""
        fitted = self._fit_zoom()
        if fitted is None:
            return
        rect, z = fitted
        self.set_zoom(min(z, max_zoom))
        self.centerOn(rect.center())

    def show_start(self, readable: float = 0.75) -> None:
        """The first view of a project: everything if it fits readably, else the top (the Input)
        at a zoom where block text can be read; Ctrl+0 still fits the whole graph."""
        fitted = self._fit_zoom()
        if fitted is None:
            return
        rect, z = fitted
        vp = self.viewport().rect()
        if z >= readable:
            self.fit(max_zoom=1.0)
            return
        self.set_zoom(readable)
        half_h = vp.height() / (2 * readable)
        half_w = vp.width() / (2 * readable)
        x = rect.center().x() if rect.width() <= 2 * half_w else rect.left() + half_w
        self.centerOn(x, rect.top() + half_h)

    def wheelEvent(self, event: QWheelEvent) -> None:
        pixel = event.pixelDelta()
        if not pixel.isNull() and not (event.modifiers() & Qt.ControlModifier):
            # A touchpad scroll pans; a mouse wheel (or pinch with Ctrl) zooms.
            self.pan_by(-pixel.x(), -pixel.y())
            event.accept()
            return
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.set_zoom(self.zoom() * (1.15 ** steps), anchor_under_mouse=True)
        event.accept()

    def viewportEvent(self, event) -> bool:
        if event.type() == QEvent.NativeGesture and event.gestureType() == Qt.ZoomNativeGesture:
            self.set_zoom(self.zoom() * (1.0 + event.value()), anchor_under_mouse=True)  # touchpad pinch
            return True
        return super().viewportEvent(event)

    # -- pan --------------------------------------------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.setInteractive(False)  # pan even when the drag starts on a block
            self.setDragMode(QGraphicsView.ScrollHandDrag)
            event.accept()
            return
        if event.key() == Qt.Key_Escape:
            self.graph_scene.cancel_connection()
        step = self._nudge_step(event)
        if step is not None and self.graph_scene.nudge_selection(*step):
            event.accept()
            return
        super().keyPressEvent(event)

    def _nudge_step(self, event: QKeyEvent) -> tuple[float, float] | None:
        """Arrow keys move the selected blocks by 10 px (Shift: 1 px; when snapping, a grid cell)."""
        d = NUDGE_KEYS.get(event.key())
        if d is None or event.modifiers() & ~(Qt.ShiftModifier | Qt.KeypadModifier):
            return None
        snap = self.graph_scene.snap
        n = snap if snap else (1.0 if event.modifiers() & Qt.ShiftModifier else GRID / 2)
        return (d[0] * n, d[1] * n)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key_Space and not event.isAutoRepeat():
            self._end_space_pan()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def _end_space_pan(self) -> None:
        self._space = False
        self.setInteractive(True)
        self.setDragMode(QGraphicsView.RubberBandDrag)

    def focusOutEvent(self, event) -> None:
        if self._space:
            self._end_space_pan()
        super().focusOutEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MiddleButton:
            self._pan_from = event.position().toPoint()
            self.viewport().setCursor(Qt.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            p = event.position().toPoint()
            d = p - self._pan_from
            self._pan_from = p
            self.pan_by(-d.x(), -d.y())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MiddleButton and self._pan_from is not None:
            self._pan_from = None
            self.viewport().unsetCursor()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def pan_by(self, dx: int, dy: int) -> None:
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + dx)
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + dy)

    # -- selection follows the document (summary table clicks, problem list) ----------
    def _reveal_selection(self, ids: list[str]) -> None:
        if not ids:
            return
        item = self.graph_scene.nodes.get(ids[0])
        if not isinstance(item, NodeItem):
            return
        visible = self.mapToScene(self.viewport().rect()).boundingRect()
        if not visible.contains(item.sceneBoundingRect()):
            self.centerOn(item)

    # -- background -------------------------------------------------------------------
    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        colors = self.graph_scene.colors
        painter.fillRect(rect, colors.background)
        z = self.zoom()
        if z < 0.3:
            return  # a grid finer than a few pixels is noise
        step = GRID if z >= 0.6 else GRID * 5
        left = math.floor(rect.left() / step) * step
        top = math.floor(rect.top() / step) * step
        minor, major = [], []
        x = left
        while x < rect.right():
            (major if round(x / (GRID * 5)) * GRID * 5 == x else minor).append(
                QLineF(x, rect.top(), x, rect.bottom()))
            x += step
        y = top
        while y < rect.bottom():
            (major if round(y / (GRID * 5)) * GRID * 5 == y else minor).append(
                QLineF(rect.left(), y, rect.right(), y))
            y += step
        pen = QPen(colors.grid, 0)
        painter.setPen(pen)
        painter.drawLines(minor)
        pen.setColor(colors.grid_major)
        painter.setPen(pen)
        painter.drawLines(major)

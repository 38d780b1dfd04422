"""The bar above the canvas that says which group is open ("Model ▸ layer1 ▸ block0"); each part
is a button back to that level. Hidden while the model has no groups."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget

from .scene import GraphScene


class BreadcrumbBar(QWidget):
    def __init__(self, scene: GraphScene, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("breadcrumbBar")
        self.scene = scene
        self.buttons: list[QToolButton] = []
        self._shown: tuple = ()
        self.row = QHBoxLayout(self)
        self.row.setContentsMargins(6, 2, 6, 2)
        self.row.setSpacing(2)
        self.row.addStretch(1)
        scene.scope_changed.connect(self.update_path)
        scene.document.graph_changed.connect(self.update_path)  # a group renamed, made or removed
        scene.document.project_replaced.connect(self.update_path)
        self.update_path()

    def update_path(self, *args) -> None:
        scene = self.scene
        path = tuple(scene.scope_path())
        self.setVisible(scene.scope is not None or bool(scene.graph.groups))
        if path == self._shown:
            return
        self._shown = path
        while self.row.count() > 1:  # all but the stretch at the end
            w = self.row.takeAt(0).widget()
            if w is not None:  # hidden now: a deferred delete may wait for the next event-loop turn
                w.hide()
                w.deleteLater()
        self.buttons = []
        for k, (gid, name) in enumerate(path):
            if k:
                sep = QLabel("▸")
                sep.setEnabled(False)
                self.row.insertWidget(self.row.count() - 1, sep)
            b = QToolButton()
            b.setText(name)
            b.setAutoRaise(True)
            b.setToolButtonStyle(Qt.ToolButtonTextOnly)
            last = k == len(path) - 1
            b.setToolTip("The group open on the canvas" if last and gid is not None else
                         "The whole model" if gid is None else f"Back to {name}")
            if last:
                f = b.font()
                f.setBold(True)
                b.setFont(f)
            b.clicked.connect(lambda checked=False, g=gid: self.scene.set_scope(g))
            self.row.insertWidget(self.row.count() - 1, b)
            self.buttons.append(b)

    def texts(self) -> list[str]:
        return [b.text() for b in self.buttons]

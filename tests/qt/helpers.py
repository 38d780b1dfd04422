"""Helpers for the GUI tests: a main window whose dialogs answer from a script (a modal dialog
must never block a test), example documents, and mouse / drag-and-drop input."""

from __future__ import annotations

import warnings
from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QMouseEvent
from PySide6.QtWidgets import QApplication

from cnnbuilder.core.project import load_project
from cnnbuilder.qt.canvas.scene import BLOCK_MIME
from cnnbuilder.qt.document import Document
from cnnbuilder.qt.main_window import MainWindow

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


class ScriptedWindow(MainWindow):
    """A MainWindow whose dialogs return scripted answers and record that they were asked."""

    def __init__(self, document=None):
        self.answers = {"save_changes": "discard", "open_path": None, "save_path": None, "restore": False,
                        "template": None, "stop_training": True, "overwrite_read_only": False}
        self.asked: list[str] = []
        self.errors: list[tuple[str, str]] = []
        super().__init__(document)
        self.training_panel.ask_stop_training = self.ask_stop_training

    def ask_stop_training(self) -> bool:
        self.asked.append("stop_training")
        return self.answers["stop_training"]

    def ask_save_changes(self) -> str:
        self.asked.append("save_changes")
        return self.answers["save_changes"]

    def ask_open_path(self):
        self.asked.append("open_path")
        return self.answers["open_path"]

    def ask_save_path(self, title, filters, suggested):
        self.asked.append("save_path")
        return self.answers["save_path"]

    def ask_overwrite_read_only(self, path) -> bool:
        self.asked.append("overwrite_read_only")
        return self.answers["overwrite_read_only"]

    def show_error(self, title: str, text: str) -> None:
        self.errors.append((title, text))

    def ask_restore_autosave(self, description: str) -> bool:
        self.asked.append("restore")
        return self.answers["restore"]

    def choose_template(self):
        self.asked.append("template")
        return self.answers["template"]


def example(name: str) -> Document:
    project = load_project(EXAMPLES / f"{name}.json")
    project.path = None  # never let a test write over a shipped example
    return Document(project)


# -- input helpers ------------------------------------------------------------------------
def send_mouse(widget, kind, pos: QPoint, button, buttons) -> None:
    p = QPointF(pos)
    ev = QMouseEvent(kind, p, QPointF(widget.mapToGlobal(pos)), button, buttons, Qt.NoModifier)
    QApplication.sendEvent(widget, ev)


def mouse_drag(view, start: QPointF, end: QPointF, steps: int = 4) -> None:
    """Press at `start`, move in steps, release at `end` (scene coordinates)."""
    vp = view.viewport()
    a, b = view.mapFromScene(start), view.mapFromScene(end)
    send_mouse(vp, QMouseEvent.MouseButtonPress, a, Qt.LeftButton, Qt.LeftButton)
    for i in range(1, steps + 1):
        p = a + (b - a) * (i / steps)
        send_mouse(vp, QMouseEvent.MouseMove, p, Qt.NoButton, Qt.LeftButton)
    send_mouse(vp, QMouseEvent.MouseButtonRelease, b, Qt.LeftButton, Qt.NoButton)


def drop_block(view, type_name: str, scene_pos: QPointF) -> None:
    """Drag a palette block over the canvas and drop it, with the same events Qt sends."""
    md = QMimeData()
    md.setData(BLOCK_MIME, type_name.encode("utf-8"))
    vp = view.viewport()
    pos = view.mapFromScene(scene_pos)
    with warnings.catch_warnings():
        # PySide6 marks the QPoint constructors deprecated yet offers no other signature.
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(pos, Qt.CopyAction, md, Qt.LeftButton, Qt.NoModifier)
        move = QDragMoveEvent(pos, Qt.CopyAction, md, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(vp, enter)
    QApplication.sendEvent(vp, move)
    QApplication.sendEvent(vp, QDropEvent(QPointF(pos), Qt.CopyAction, md, Qt.LeftButton, Qt.NoModifier))


def node_by_name(graph, name: str) -> str:
    node = graph.find(name)
    assert node is not None, f"no block named {name}"
    return node.id

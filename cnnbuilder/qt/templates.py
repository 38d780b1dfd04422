"""File ▸ New: a gallery of the shipped example models (with thumbnails drawn by the canvas
itself) and an empty project that holds just an Input block."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.blocks import fmt_shape
from ..core.graph import Graph
from ..core.project import Project, loads
from ..core.shapes import analyze
from ..core.stats import human
from ..core.training.config import shapes_fitting
from .canvas.scene import GraphScene
from .document import Document

THUMB = QSize(200, 150)
DEFAULT_EXAMPLE = "mnist_cnn"


@dataclass
class Template:
    key: str
    title: str
    text: str  # the project file's JSON ("" for the empty project)

    def project(self) -> Project:
        """A fresh, untitled copy (saving asks for a file name; the example stays untouched)."""
        if not self.text:
            return empty_project()
        project = loads(self.text, f"example {self.key}")
        project.path = None
        # Opens ready to train on the built-in data: shapes drawn at the Input's size and channels.
        project.training = shapes_fitting(analyze(project.graph).input_shape, project.training)
        return project

    def describe(self) -> str:
        p = self.project()
        a = analyze(p.graph)
        if not self.text:
            return "An Input block (1×28×28) and nothing else: build your own."
        shapes = f"{fmt_shape(a.input_shape)} → {fmt_shape(a.output_shape)}" if a.ok else "has problems"
        return f"{len(p.graph)} blocks · {human(a.total_params)} parameters · {shapes}"


def empty_project() -> Project:
    g = Graph()
    g.add_node("Input", {"shape": [1, 28, 28]}, name="input", pos=(0.0, 0.0))
    return Project(graph=g, name="Untitled")


def example_texts() -> dict[str, str]:
    root = resources.files("cnnbuilder.resources") / "examples"
    return {p.name[:-5]: p.read_text(encoding="utf-8") for p in root.iterdir() if p.name.endswith(".json")}


def templates() -> list[Template]:
    out = [Template("empty", "Empty project", "")]
    texts = example_texts()
    keys = sorted(texts, key=lambda k: (k != DEFAULT_EXAMPLE, k))
    for key in keys:
        name = loads(texts[key], key).name
        out.append(Template(key, name, texts[key]))
    return out


def default_project() -> Project:
    """What a first start shows: the MNIST example, untitled."""
    texts = example_texts()
    if DEFAULT_EXAMPLE in texts:
        return Template(DEFAULT_EXAMPLE, "", texts[DEFAULT_EXAMPLE]).project()
    return empty_project()


def thumbnail(project: Project, size: QSize = THUMB) -> QPixmap:
    """Render the project's graph with the real canvas items."""
    doc = Document(project)
    scene = GraphScene(doc)
    ratio = 2.0
    img = QImage(int(size.width() * ratio), int(size.height() * ratio), QImage.Format_ARGB32_Premultiplied)
    img.setDevicePixelRatio(ratio)
    img.fill(QColor(scene.colors.background))
    rect = scene.blocks_rect().adjusted(-20, -20, 20, 20)
    painter = QPainter(img)
    painter.setRenderHint(QPainter.Antialiasing)
    scale = min(size.width() / rect.width(), size.height() / rect.height())
    w, h = rect.width() * scale, rect.height() * scale
    target = QRectF((size.width() - w) / 2, (size.height() - h) / 2, w, h)  # centred
    scene.render(painter, target, rect, Qt.KeepAspectRatio)
    painter.end()
    scene.detach()
    scene.deleteLater()
    return QPixmap.fromImage(img)


class TemplateDialog(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("New project")
        self.templates = templates()
        self.list = QListWidget(self)
        self.list.setViewMode(QListView.IconMode)
        self.list.setIconSize(THUMB)
        self.list.setGridSize(QSize(THUMB.width() + 24, THUMB.height() + 44))
        self.list.setResizeMode(QListView.Adjust)
        self.list.setMovement(QListView.Static)
        self.list.setWordWrap(True)
        self.list.setSpacing(6)
        for t in self.templates:
            item = QListWidgetItem(thumbnail(t.project()), t.title)
            item.setData(Qt.UserRole, t.key)
            item.setToolTip(t.describe())
            self.list.addItem(item)
        self.detail = QLabel(self)
        self.detail.setWordWrap(True)
        self.list.currentRowChanged.connect(self._show_detail)
        self.list.itemDoubleClicked.connect(lambda item: self.accept())
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel, self)
        for which, text in ((QDialogButtonBox.Ok, "Create"), (QDialogButtonBox.Cancel, "Cancel")):
            buttons.button(which).setText(text)
            buttons.button(which).setIcon(QIcon())
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Start from an example model or an empty project:"))
        lay.addWidget(self.list, 1)
        lay.addWidget(self.detail)
        lay.addWidget(buttons)
        self.resize(4 * (THUMB.width() + 24) + 70, 2 * (THUMB.height() + 44) + 130)
        self.list.setCurrentRow(1 if len(self.templates) > 1 else 0)

    def _show_detail(self, row: int) -> None:
        if 0 <= row < len(self.templates):
            t = self.templates[row]
            self.detail.setText(f"<b>{t.title}</b>: {t.describe()}")

    def selected_project(self) -> Project | None:
        row = self.list.currentRow()
        return self.templates[row].project() if 0 <= row < len(self.templates) else None

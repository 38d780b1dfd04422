"""File ▸ New: a gallery of the shipped example models and the famous architectures (with
thumbnails drawn by the canvas itself), and an empty project that holds just an Input block.

An architecture (core/architectures.py) is built when it is picked, in a few milliseconds; one that
needs 224×224 images offers its CIFAR-10-sized variant in the "Input size" choice. Each shows its
note (the project's description) beside the grid."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from importlib import resources

from PySide6.QtCore import QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.architectures import ARCHITECTURES
from ..core.blocks import fmt_shape
from ..core.graph import Graph
from ..core.project import Project, loads
from ..core.shapes import analyze
from ..core.stats import human
from ..core.training.config import shapes_fitting
from .canvas.scene import GraphScene
from .document import Document
from .theme import canvas_colors

THUMB = QSize(200, 150)
DEFAULT_EXAMPLE = "mnist_cnn"
EMPTY_NOTE = "An Input block (1×28×28) and nothing else: build your own."


@dataclass
class Choice:
    label: str  # what the "Input size" choice shows ("" when there is only one)
    load: Callable[[], Project]  # a fresh project on every call


@dataclass
class Template:
    key: str
    title: str
    choices: list[Choice]
    year: int | None = None  # architectures only
    showcase: str = ""  # the block its thumbnail starts at ("" for the top)
    _facts: dict[int, tuple[str, str]] = field(default_factory=dict, repr=False)

    def project(self, choice: int = 0) -> Project:
        """A fresh, untitled copy (saving asks for a file name; the template stays untouched)."""
        return ready_to_train(self.choices[choice].load())

    def describe(self, choice: int = 0) -> str:
        """One line of figures: blocks, parameters, MACs, input → output."""
        return self._facts_of(choice)[0]

    def note(self, choice: int = 0) -> str:
        """The paragraph about the model (the project's description), or "" for a plain example."""
        return self._facts_of(choice)[1]

    def _facts_of(self, choice: int) -> tuple[str, str]:
        if choice not in self._facts:
            if self.key == "empty":
                self._facts[choice] = (EMPTY_NOTE, "")
            else:
                p = self.choices[choice].load()
                a = analyze(p.graph)
                shapes = f"{fmt_shape(a.input_shape)} → {fmt_shape(a.output_shape)}" if a.ok else "has problems"
                line = (f"{len(p.graph)} blocks · {human(a.total_params)} parameters · "
                        f"{human(a.total_macs)} MACs · {shapes}")
                self._facts[choice] = (line, p.description)
        return self._facts[choice]


def ready_to_train(project: Project) -> Project:
    """`project` as a new, untitled document (saving asks for a file name) that opens ready to train
    on the built-in data: shapes drawn at the Input's size and channels. New and Import both use it."""
    project.path = None
    project.training = shapes_fitting(analyze(project.graph).input_shape, project.training)
    return project


def empty_project() -> Project:
    g = Graph()
    g.add_node("Input", {"shape": [1, 28, 28]}, name="input", pos=(0.0, 0.0))
    return Project(graph=g, name="Untitled")


def example_texts() -> dict[str, str]:
    root = resources.files("cnnbuilder.resources") / "examples"
    return {p.name[:-5]: p.read_text(encoding="utf-8") for p in root.iterdir() if p.name.endswith(".json")}


def _from_text(key: str, text: str) -> Project:
    return loads(text, f"example {key}")


def templates() -> list[Template]:
    """The empty project, the examples (MNIST first), then the architectures by year. An example
    that is also an architecture (LeNet-5) is listed once, as the architecture."""
    out = [Template("empty", "Empty project", [Choice("", empty_project)])]
    texts = example_texts()
    for key in sorted(texts, key=lambda k: (k != DEFAULT_EXAMPLE, k)):
        if key not in ARCHITECTURES:
            out.append(Template(key, loads(texts[key], key).name, [Choice("", partial(_from_text, key, texts[key]))]))
    for arch in ARCHITECTURES.values():
        choices = [Choice(v.label if len(arch.variants) > 1 else "", partial(arch.project, v)) for v in arch.variants]
        out.append(Template(arch.key, arch.title, choices, arch.year, arch.showcase))
    return out


def default_project() -> Project:
    """What a first start shows: the MNIST example, untitled."""
    texts = example_texts()
    if DEFAULT_EXAMPLE in texts:
        text = texts[DEFAULT_EXAMPLE]
        return Template(DEFAULT_EXAMPLE, "", [Choice("", partial(_from_text, DEFAULT_EXAMPLE, text))]).project()
    return empty_project()


_THUMBS: dict[tuple[str, str], QPixmap] = {}  # (template, canvas background) -> drawn once per run
WINDOW = 1250.0  # the most of a graph's height a thumbnail shows: about eleven rows of blocks


def thumbnail(project: Project, size: QSize = THUMB, showcase: str = "") -> QPixmap:
    """Render the project's graph with the real canvas items. A tall graph (DenseNet's 428 blocks
    in one column of layers) shows a window of it where the blocks can still be told apart: from
    the block named `showcase` down (the first residual block, Inception module, ...), else the top."""
    doc = Document(project)
    scene = GraphScene(doc)
    ratio = 2.0
    img = QImage(int(size.width() * ratio), int(size.height() * ratio), QImage.Format_ARGB32_Premultiplied)
    img.setDevicePixelRatio(ratio)
    img.fill(QColor(scene.colors.background))
    rect = scene.blocks_rect().adjusted(-20, -20, 20, 20)
    start = project.graph.find(showcase) if showcase else None
    if start is not None and start.id in scene.nodes:  # inside a collapsed group it is not drawn
        rect.setTop(start.pos[1] - 20)
    if rect.height() > WINDOW:
        rect.setHeight(WINDOW)
        shown = [item.sceneBoundingRect() for item in scene.nodes.values()
                 if item.sceneBoundingRect().intersects(rect)] or [rect]
        rect.setLeft(min(r.left() for r in shown) - 20)  # centred on the blocks in the window
        rect.setRight(max(r.right() for r in shown) + 20)
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
    """The gallery: thumbnails on the left (drawn one per event-loop turn after the dialog shows, so
    it opens at once, and kept for the next time), the picked template's figures, size choice and
    note on the right."""

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
        blank = QPixmap(THUMB)
        blank.fill(Qt.transparent)
        for t in self.templates:
            title = f"{t.title} ({t.year})" if t.year else t.title
            item = QListWidgetItem(QIcon(blank), title)
            item.setData(Qt.UserRole, t.key)
            self.list.addItem(item)
        self._unpainted = list(range(len(self.templates)))

        self.title = QLabel(self)
        font = self.title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.2)
        self.title.setFont(font)
        self.figures = QLabel(self)
        self.figures.setWordWrap(True)
        self.size_choice = QComboBox(self)
        self.size_choice.currentIndexChanged.connect(lambda _: self._show_detail(self.list.currentRow()))
        size_row = QFormLayout()
        size_row.setContentsMargins(0, 0, 0, 0)
        size_row.addRow("Input size:", self.size_choice)
        self.size_widget = QWidget(self)
        self.size_widget.setLayout(size_row)
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.note.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.note.setTextInteractionFlags(Qt.TextSelectableByMouse)
        side = QWidget(self)
        side.setFixedWidth(380)
        side_lay = QVBoxLayout(side)
        side_lay.setContentsMargins(6, 0, 0, 0)
        for w in (self.title, self.figures, self.size_widget):
            side_lay.addWidget(w)
        side_lay.addWidget(self.note, 1)

        self.list.currentRowChanged.connect(self._select)
        self.list.itemDoubleClicked.connect(lambda item: self.accept())
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel, self)
        for which, text in ((QDialogButtonBox.Ok, "Create"), (QDialogButtonBox.Cancel, "Cancel")):
            buttons.button(which).setText(text)
            buttons.button(which).setIcon(QIcon())
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        body = QHBoxLayout()
        body.addWidget(self.list, 1)
        body.addWidget(side)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Start from an example model, a famous architecture or an empty project:"))
        lay.addLayout(body, 1)
        lay.addWidget(buttons)
        self.resize(4 * (THUMB.width() + 24) + 70 + 380, 3 * (THUMB.height() + 44) + 90)
        self.list.setCurrentRow(1 if len(self.templates) > 1 else 0)
        self._painter = QTimer(self)  # a child: it stops with the dialog
        self._painter.setInterval(0)
        self._painter.timeout.connect(self._paint_next)
        self._painter.start()

    # -- thumbnails, one per event-loop turn --------------------------------------------------
    def _paint_next(self) -> None:
        if not self._unpainted:
            self._painter.stop()
            return
        row = self._unpainted.pop(0)
        t = self.templates[row]
        key = (t.key, canvas_colors().background.name())  # the templates never change; the theme may
        if key not in _THUMBS:
            _THUMBS[key] = thumbnail(t.project(), showcase=t.showcase)
        self.list.item(row).setIcon(QIcon(_THUMBS[key]))

    def finish_thumbnails(self) -> None:
        """Draw the thumbnails still missing now (tests, screenshots)."""
        while self._unpainted:
            self._paint_next()
        self._painter.stop()

    def done(self, result: int) -> None:
        self._painter.stop()  # closed before every thumbnail was drawn: draw no more
        super().done(result)

    # -- the picked template ------------------------------------------------------------------
    def _select(self, row: int) -> None:
        if not 0 <= row < len(self.templates):
            return
        t = self.templates[row]
        keep = self.size_choice.currentIndex() if self.size_choice.count() == len(t.choices) else 0
        self.size_choice.blockSignals(True)
        self.size_choice.clear()
        self.size_choice.addItems([c.label for c in t.choices])
        self.size_choice.setCurrentIndex(max(keep, 0))
        self.size_choice.blockSignals(False)
        self.size_widget.setVisible(len(t.choices) > 1)
        self._show_detail(row)

    def _show_detail(self, row: int) -> None:
        if 0 <= row < len(self.templates):
            t, choice = self.templates[row], self.choice()
            self.title.setText(t.title)
            self.figures.setText(t.describe(choice))
            self.note.setText(t.note(choice))
            self.list.item(row).setToolTip(t.describe(choice))

    def choice(self) -> int:
        return max(self.size_choice.currentIndex(), 0)

    def select(self, key: str, choice: int = 0) -> None:
        """Pick a template by key (and size), as a click would."""
        row = next(i for i, t in enumerate(self.templates) if t.key == key)
        self.list.setCurrentRow(row)
        self.size_choice.setCurrentIndex(choice)

    def selected_project(self) -> Project | None:
        row = self.list.currentRow()
        return self.templates[row].project(self.choice()) if 0 <= row < len(self.templates) else None

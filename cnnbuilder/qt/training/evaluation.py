"""The end-of-run evaluation: test accuracy, confusion matrix and per-class precision/recall.

Up to TABLE_LIMIT classes the matrix is one table of counts that fills its space (cells stretch,
no scroll bars), shaded as a heat map by the share of each true class, with each class's
precision, recall and number of test images in the last columns of its row. Beyond that, counts
are unreadable anyway: the matrix is an image and the per-class figures a table beside it.

Mistakes: clicking a cell of the table (true class row, predicted class column) shows those test
images below it, most confident first, each with the probability the model gave its prediction;
"Most confident mistakes" shows the wrong predictions the model was surest of (also for many
classes). The selection uses the run's per-image predictions (kept by the engine's test pass and in
the run record); the images come from the training worker, which loads the run's test set.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...core.training.inspect_run import (
    GALLERY_LIMIT,
    ImagesRequest,
    InspectError,
    cell_indices,
    confident_mistakes,
    predictions,
)
from ..theme import plot_colors
from .thumbs import pixmap

TABLE_LIMIT = 20  # classes up to which the confusion matrix is a readable table of counts
SUMMARY = ("precision", "recall", "images")
HIT, MISS = QColor(46, 160, 67), QColor(214, 39, 40)  # the diagonal, and the mistakes


def heat(base: QColor, strong: QColor, share: float) -> QColor:
    """`base` blended towards `strong`: a faint tint for a few images, the full colour for all."""
    t = 0.15 + 0.85 * min(1.0, max(0.0, share))
    return QColor(round(base.red() + (strong.red() - base.red()) * t),
                  round(base.green() + (strong.green() - base.green()) * t),
                  round(base.blue() + (strong.blue() - base.blue()) * t))


def _luma(c: QColor) -> float:
    return 0.2126 * c.redF() + 0.7152 * c.greenF() + 0.0722 * c.blueF()


def _header_text(name: str, fm=None, width: int = 0) -> str:
    """A column header: a two-word class name on two lines, each line cut with "…" where it is
    wider than the column (the header's tooltip has the whole name)."""
    words = name.split()
    lines = [" ".join(words[:1]), " ".join(words[1:])] if len(words) == 2 else [name]
    if fm is None or width <= 0:
        return "\n".join(lines)
    return "\n".join(fm.elidedText(line, Qt.ElideRight, width) for line in lines)


THUMB = 72  # gallery image size in pixels


class EvaluationView(QWidget):
    images_requested = Signal(object)  # an ImagesRequest, for the training worker

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._shown = None  # the result on screen: re-shaded when the theme changes
        self.run_config: dict | None = None  # settings of the live run (a record carries its own)
        self._tag = 0
        self._pending: tuple | None = None  # (indices, predictions) of the gallery request on its way
        self.run_label = QLabel("No run yet.")  # which run the numbers below belong to
        self.run_label.setWordWrap(True)
        self.summary = QLabel("Train a model to see how it does on the test images.")
        self.summary.setWordWrap(True)
        font = self.summary.font()
        font.setBold(True)
        self.summary.setFont(font)

        self.matrix = QTableWidget()
        self.matrix.setEditTriggers(QTableWidget.NoEditTriggers)
        self.matrix.setSelectionMode(QAbstractItemView.NoSelection)
        self.matrix.setFocusPolicy(Qt.NoFocus)
        self.matrix.setToolTip("Rows: true class; columns: predicted class. Shade: share of the row "
                               "(green: right, red: mistaken for that class). Precision, recall and the "
                               "number of test images of each class are in the last columns.")
        for header in (self.matrix.horizontalHeader(), self.matrix.verticalHeader()):
            header.setSectionResizeMode(QHeaderView.Stretch)  # the cells share whatever room there is
            header.setMinimumSectionSize(18)
        self.matrix.horizontalHeader().setDefaultAlignment(Qt.AlignCenter)
        self._names: list[str] = []
        self._refit = QTimer(self)  # the stretched sections have their sizes once the layout ran
        self._refit.setSingleShot(True)
        self._refit.setInterval(0)
        self._refit.timeout.connect(self._fit_headers)
        self.matrix.installEventFilter(self)
        self.image_view = pg.GraphicsLayoutWidget()
        self.image_plot = self.image_view.addPlot()
        self.image_plot.invertY(True)
        self.image_plot.setLabel("left", "true class")
        self.image_plot.setLabel("bottom", "predicted class")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("viridis"))
        self.image_plot.addItem(self.image)

        self.per_class = QTableWidget(0, 4)  # beside the image, for many classes
        self.per_class.setHorizontalHeaderLabels(["class", "precision", "recall", "test images"])
        self.per_class.setEditTriggers(QTableWidget.NoEditTriggers)
        self.per_class.verticalHeader().setVisible(False)
        self.per_class.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        many = QSplitter(Qt.Horizontal)
        many.addWidget(self.image_view)
        many.addWidget(self.per_class)
        many.setStretchFactor(0, 3)
        many.setStretchFactor(1, 2)

        self.matrix_stack = QStackedWidget()
        self.matrix_stack.addWidget(self.matrix)
        self.matrix_stack.addWidget(many)
        self.caption = QLabel("Confusion matrix (rows: true class, columns: predicted class). "
                              "Click a cell to see its images.")
        self.caption.setWordWrap(True)
        self.matrix.cellClicked.connect(self._cell_clicked)
        self.mistakes_button = QPushButton("Most confident mistakes")
        self.mistakes_button.setToolTip("The test images the model got wrong with the highest confidence")
        self.mistakes_button.clicked.connect(self.show_confident_mistakes)
        self.mistakes_button.setEnabled(False)
        self.gallery_label = QLabel("")
        self.gallery_label.setWordWrap(True)
        self.gallery = QListWidget()
        self.gallery.setViewMode(QListView.IconMode)
        self.gallery.setIconSize(QSize(THUMB, THUMB))
        self.gallery.setResizeMode(QListView.Adjust)
        self.gallery.setMovement(QListView.Static)
        self.gallery.setGridSize(QSize(THUMB + 40, THUMB + 36))
        self.gallery.setWordWrap(True)
        self.gallery.setSelectionMode(QAbstractItemView.NoSelection)
        self.gallery_box = QWidget()
        gl = QVBoxLayout(self.gallery_box)
        gl.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        head.addWidget(self.gallery_label, 1)
        head.addWidget(self.mistakes_button)
        gl.addLayout(head)
        gl.addWidget(self.gallery, 1)
        self.gallery.hide()
        self.split = QSplitter(Qt.Vertical)
        self.split.addWidget(self.matrix_stack)
        self.split.addWidget(self.gallery_box)
        self.split.setStretchFactor(0, 3)
        self.split.setStretchFactor(1, 2)
        self.split.setChildrenCollapsible(False)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.run_label)
        lay.addWidget(self.summary)
        lay.addWidget(self.caption)
        lay.addWidget(self.split, 1)
        self.restyle()

    def set_run(self, text: str) -> None:
        self.run_label.setText(text)

    def show_run(self, record, title: str) -> None:
        """A stored run (core.runs.RunRecord): its own test results, or why it has none."""
        self.set_run(title)
        if record.confusion is None or record.test_acc is None or record.test_loss is None:
            self.clear(f"{record.name} was {record.status} before its test: no evaluation.")
        else:
            self.show_result(record)

    def clear(self, text: str = "Train a model to see how it does on the test images.") -> None:
        self._shown = None
        self._reset_gallery()
        self._names = []
        self.summary.setText(text)
        self.matrix.clear()
        self.matrix.setRowCount(0)
        self.matrix.setColumnCount(0)
        self.matrix_stack.setCurrentWidget(self.matrix)
        self.per_class.setRowCount(0)

    def show_result(self, ev) -> None:
        """A Finished event, or a stored run (the same field names)."""
        if ev is not self._shown:
            self._reset_gallery()
        self._shown = ev
        self.mistakes_button.setEnabled(self._predictions() is not None)
        cm = np.asarray(ev.confusion, dtype=np.int64)
        names = list(ev.class_names)
        n = int(cm.sum())
        self.summary.setText(f"Test accuracy {ev.test_acc:.2%} (loss {ev.test_loss:.4f}) on {n:,} images, after "
                             f"{ev.epochs} epoch(s) and {ev.step:,} steps")
        support = cm.sum(axis=1)
        if len(names) <= TABLE_LIMIT:
            self._fill_table(cm, names, ev.precision, ev.recall, support)
            self.matrix_stack.setCurrentIndex(0)
            self.per_class.setRowCount(0)
            return
        share = np.divide(cm, np.maximum(support[:, None], 1), dtype=np.float64)
        self.matrix_stack.setCurrentIndex(1)
        self.image.setImage(share.astype(np.float32), levels=(0.0, 1.0), autoLevels=False)
        self.image_plot.autoRange()
        self.per_class.setRowCount(len(names))
        for i, name in enumerate(names):
            cells = [name, _pct(ev.precision[i]), _pct(ev.recall[i]), f"{int(support[i]):,}"]
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j:
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.per_class.setItem(i, j, item)

    def _fill_table(self, cm, names, precision, recall, support) -> None:
        k = len(names)
        share = np.divide(cm, np.maximum(support[:, None], 1), dtype=np.float64)
        pal = QApplication.palette()  # the theme's, already when MainWindow restyles
        base, side = pal.base().color(), pal.alternateBase().color()
        colors = plot_colors(pal)
        m = self.matrix
        m.clear()
        m.setRowCount(k)
        m.setColumnCount(k + len(SUMMARY))
        self._names = list(names)
        for j, name in enumerate(names + list(SUMMARY)):
            head = QTableWidgetItem(_header_text(name) if j < k else name)
            head.setToolTip(f"predicted: {name}" if j < k else None)
            m.setHorizontalHeaderItem(j, head)
        self._refit.start()
        for i, name in enumerate(names):
            head = QTableWidgetItem(name)
            head.setToolTip(f"true class: {name}")
            m.setVerticalHeaderItem(i, head)
        for i in range(k):
            for j in range(k):
                count = int(cm[i, j])
                item = QTableWidgetItem(str(count))
                item.setTextAlignment(Qt.AlignCenter)
                item.setToolTip(f"{count:,} {names[i]} image(s) predicted as {names[j]} "
                                f"({share[i, j]:.1%} of {names[i]})")
                if count:
                    fill = heat(base, HIT if i == j else MISS, float(share[i, j]))
                    item.setBackground(QBrush(fill))
                    item.setForeground(QBrush(colors.cell_text_strong if _luma(fill) < 0.55 else colors.cell_text))
                if i == j:
                    bold = QFont(m.font())
                    bold.setBold(True)
                    item.setFont(bold)
                m.setItem(i, j, item)
            for j, text in enumerate((_pct(precision[i]), _pct(recall[i]), f"{int(support[i]):,}")):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                item.setBackground(QBrush(side))
                m.setItem(i, k + j, item)

    # -- mistakes gallery ------------------------------------------------------------------------
    def _predictions(self):
        """The shown run's per-test-image predictions, or None (a run recorded before they were kept)."""
        ev = self._shown
        if ev is None:
            return None
        tp = getattr(ev, "predictions", None)  # a run record
        if tp is None and getattr(ev, "test_pred", None) is not None:  # a Finished event
            tp = predictions(ev.test_true, ev.test_pred, ev.test_prob)
        return tp

    def _config(self) -> dict | None:
        return getattr(self._shown, "config", None) or self.run_config

    def _reset_gallery(self) -> None:
        self._tag += 1  # an answer on its way belongs to the previous result
        self._pending = None
        self.gallery.clear()
        self.gallery.hide()
        self.gallery_label.setText("")

    def _cell_clicked(self, row: int, col: int) -> None:
        names = self._names
        if self._shown is None or col >= len(names):
            return  # the precision/recall columns
        self.show_cell(row, col)

    def show_cell(self, true_class: int, pred_class: int) -> None:
        names = list(self._shown.class_names) if self._shown is not None else []
        what = (f"True class {names[true_class]}, predicted {names[pred_class]}"
                if 0 <= true_class < len(names) and 0 <= pred_class < len(names) else "")
        self._gallery(what, lambda tp: cell_indices(tp, true_class, pred_class, len(tp.true), len(names)))

    def show_confident_mistakes(self) -> None:
        self._gallery("Most confident mistakes", lambda tp: confident_mistakes(tp, len(tp.true)))

    def _gallery(self, what: str, select) -> None:
        self.gallery.clear()
        self._tag += 1
        self._pending = None
        tp, config = self._predictions(), self._config()
        if tp is None or config is None:
            self._say("this run kept no per-image predictions (it was recorded by an older cnnbuilder, trained "
                      "under torchrun, or had too many test images): train again to see its mistakes")
            return
        try:
            idx = select(tp)
        except InspectError as exc:
            self._say(str(exc))
            return
        if not len(idx):
            self._say(f"No test images: {what}." if what else "No test images.")
            return
        count = f"{len(idx):,} image(s)" + (f", the {GALLERY_LIMIT} most confident shown" if len(idx) > GALLERY_LIMIT
                                             else "")
        idx = idx[:GALLERY_LIMIT]
        self._say(f"{what}: {count}, most confident first. Loading…")
        self._pending = (idx, tp, what, count)
        self.images_requested.emit(ImagesRequest(self._tag, dict(config), tuple(int(i) for i in idx),
                                                 tuple(int(tp.true[i]) for i in idx)))

    def _say(self, text: str) -> None:
        self.gallery_label.setText(text)

    def show_images(self, ev) -> None:
        """A TestImages event answering the last gallery request (older answers are dropped)."""
        if ev.run_id != self._tag or self._pending is None:
            return
        idx, tp, what, count = self._pending
        self._pending = None
        if ev.message:
            self._say(ev.message)
            return
        names = list(self._shown.class_names)
        name = lambda c: names[c] if 0 <= c < len(names) else str(c)
        self.gallery.clear()
        for i, image in zip(idx, ev.images, strict=False):
            t, p, q = int(tp.true[i]), int(tp.pred[i]), float(tp.prob[i])
            item = QListWidgetItem(pixmap(image, THUMB), f"{name(p)} {q:.0%}")
            item.setToolTip(f"test image #{int(i)}: true class {name(t)}, predicted {name(p)} with probability "
                            f"{q:.1%}")
            self.gallery.addItem(item)
        if self.gallery.isHidden():
            self.gallery.show()
            total = sum(self.split.sizes())
            self.split.setSizes([total * 3 // 5, total - total * 3 // 5])  # room for two rows of images
        self._say(f"{what}: {count}, most confident first; under each: the "
                  "predicted class and its probability.")

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        if watched is self.matrix and event.type() == QEvent.Resize:
            self._refit.start()
        return super().eventFilter(watched, event)

    def _fit_headers(self) -> None:
        """Class names as wide as their columns allow (the columns stretch with the view)."""
        header = self.matrix.horizontalHeader()
        fm = header.fontMetrics()
        for j, name in enumerate(self._names[:self.matrix.columnCount()]):
            item = self.matrix.horizontalHeaderItem(j)
            text = _header_text(name, fm, header.sectionSize(j) - 4)
            if item is not None and item.text() != text:
                item.setText(text)

    # -- theme ---------------------------------------------------------------------------------
    def restyle(self) -> None:
        c = plot_colors()
        self.image_view.setBackground(c.background)
        for name in ("left", "bottom"):
            axis = self.image_plot.getAxis(name)
            axis.setPen(pg.mkPen(c.grid))
            axis.setTextPen(pg.mkPen(c.foreground))
        self.image_plot.setLabel("left", "true class", color=c.foreground.name())
        self.image_plot.setLabel("bottom", "predicted class", color=c.foreground.name())
        if self._shown is not None:
            self.show_result(self._shown)  # cell shades and text colours from the new palette



def _pct(v: float) -> str:
    return "—" if v is None or math.isnan(v) else f"{v:.1%}"

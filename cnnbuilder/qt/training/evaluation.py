"""The end-of-run evaluation: test accuracy, confusion matrix and per-class precision/recall.

Up to TABLE_LIMIT classes the matrix is one table of counts that fills its space (cells stretch,
no scroll bars), shaded as a heat map by the share of each true class, with each class's
precision, recall and number of test images in the last columns of its row. Beyond that, counts
are unreadable anyway: the matrix is an image and the per-class figures a table beside it.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHeaderView,
    QLabel,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..theme import plot_colors

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


class EvaluationView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._shown = None  # the result on screen: re-shaded when the theme changes
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
        self.caption = QLabel("Confusion matrix (rows: true class, columns: predicted class)")

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.run_label)
        lay.addWidget(self.summary)
        lay.addWidget(self.caption)
        lay.addWidget(self.matrix_stack, 1)
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
        self._names = []
        self.summary.setText(text)
        self.matrix.clear()
        self.matrix.setRowCount(0)
        self.matrix.setColumnCount(0)
        self.matrix_stack.setCurrentWidget(self.matrix)
        self.per_class.setRowCount(0)

    def show_result(self, ev) -> None:
        """A Finished event, or a stored run (the same field names)."""
        self._shown = ev
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

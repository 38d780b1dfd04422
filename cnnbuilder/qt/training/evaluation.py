"""The end-of-run evaluation: test accuracy, confusion matrix and per-class precision/recall."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

TABLE_LIMIT = 20  # classes up to which the confusion matrix is a readable table of counts


class EvaluationView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.run_label = QLabel("No run yet.")  # which run the numbers below belong to
        self.run_label.setWordWrap(True)
        self.summary = QLabel("Train a model to see how it does on the test images.")
        self.summary.setWordWrap(True)
        font = self.summary.font()
        font.setBold(True)
        self.summary.setFont(font)

        self.matrix = QTableWidget()
        self.matrix.setEditTriggers(QTableWidget.NoEditTriggers)
        self.matrix.setToolTip("Rows: true class; columns: predicted class. Shade: share of the row.")
        self.image_view = pg.GraphicsLayoutWidget()
        self.image_view.setBackground("w")
        self.image_plot = self.image_view.addPlot()
        self.image_plot.invertY(True)
        self.image_plot.setLabel("left", "true class")
        self.image_plot.setLabel("bottom", "predicted class")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("viridis"))
        self.image_plot.addItem(self.image)
        self.matrix_stack = QStackedWidget()
        self.matrix_stack.addWidget(self.matrix)
        self.matrix_stack.addWidget(self.image_view)

        self.per_class = QTableWidget(0, 4)
        self.per_class.setHorizontalHeaderLabels(["class", "precision", "recall", "test images"])
        self.per_class.setEditTriggers(QTableWidget.NoEditTriggers)
        self.per_class.verticalHeader().setVisible(False)
        self.per_class.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)

        split = QSplitter(Qt.Horizontal)
        matrix_box = QWidget()
        ml = QVBoxLayout(matrix_box)
        ml.setContentsMargins(0, 0, 0, 0)
        ml.addWidget(QLabel("Confusion matrix (rows: true, columns: predicted)"))
        ml.addWidget(self.matrix_stack, 1)
        split.addWidget(matrix_box)
        split.addWidget(self.per_class)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([600, 380])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.run_label)
        lay.addWidget(self.summary)
        lay.addWidget(split, 1)

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
        self.summary.setText(text)
        self.matrix.clear()
        self.matrix.setRowCount(0)
        self.matrix.setColumnCount(0)
        self.matrix_stack.setCurrentWidget(self.matrix)
        self.per_class.setRowCount(0)

    def show_result(self, ev) -> None:
        """A Finished event, or a stored run (the same field names)."""
        cm = np.asarray(ev.confusion, dtype=np.int64)
        names = list(ev.class_names)
        n = int(cm.sum())
        self.summary.setText(f"Test accuracy {ev.test_acc:.2%} (loss {ev.test_loss:.4f}) on {n:,} images, after "
                             f"{ev.epochs} epoch(s) and {ev.step:,} steps")
        rows = cm.sum(axis=1, keepdims=True)
        share = np.divide(cm, np.maximum(rows, 1), dtype=np.float64)
        if len(names) <= TABLE_LIMIT:
            self.matrix_stack.setCurrentWidget(self.matrix)
            self.matrix.clear()
            self.matrix.setRowCount(len(names))
            self.matrix.setColumnCount(len(names))
            short = [nm if len(nm) <= 10 else nm[:9] + "…" for nm in names]
            self.matrix.setHorizontalHeaderLabels(short)
            self.matrix.setVerticalHeaderLabels(names)
            for i in range(len(names)):
                for j in range(len(names)):
                    item = QTableWidgetItem(str(int(cm[i, j])))
                    item.setTextAlignment(Qt.AlignCenter)
                    s = float(share[i, j])
                    if cm[i, j]:
                        # Diagonal green, mistakes red, stronger with the share of the row.
                        base = QColor(46, 160, 67) if i == j else QColor(214, 39, 40)
                        base.setAlpha(int(30 + 200 * s))
                        item.setBackground(QBrush(base))
                    self.matrix.setItem(i, j, item)
            self.matrix.resizeColumnsToContents()
        else:
            self.matrix_stack.setCurrentWidget(self.image_view)
            self.image.setImage(share.astype(np.float32), levels=(0.0, 1.0), autoLevels=False)
            self.image_plot.autoRange()

        support = cm.sum(axis=1)
        self.per_class.setRowCount(len(names))
        for i, name in enumerate(names):
            cells = [name, _pct(ev.precision[i]), _pct(ev.recall[i]), f"{int(support[i]):,}"]
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j:
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.per_class.setItem(i, j, item)



def _pct(v: float) -> str:
    return "—" if v is None or math.isnan(v) else f"{v:.1%}"

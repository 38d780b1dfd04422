"""The selected block's output channels for one sample, as one tiled image.

One ImageItem, created once; each frame is a float32 mosaic (row-major) set with explicit levels,
so pyqtgraph never scans the data for its range. The mosaic takes the shape of its view (as many
tiles a row as fill it best), and is laid out again when the view changes shape. With nothing to
show (no block selected, a block without maps) the view gives way to a written hint.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QStackedWidget, QVBoxLayout, QWidget

from ...core.training.featuremaps import columns_for, tile
from ..theme import plot_colors

PICK_HINT = ("Click a block on the canvas to see what it outputs for a sample image: one tile per channel.\n"
             "In the Train workspace (View ▸ Workspace ▸ Train) the canvas stays on the left for this.")


class _MapArea(pg.GraphicsLayoutWidget):
    resized = Signal()

    def resizeEvent(self, ev):  # noqa: N802 - Qt's name
        super().resizeEvent(ev)
        self.resized.emit()

    def showEvent(self, ev):  # noqa: N802 - Qt's name
        super().showEvent(ev)
        self.resized.emit()  # resized while hidden (another tab was in front)


class FeatureMapView(QWidget):
    refresh_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = QLabel("No block selected.")
        self.title.setWordWrap(True)
        self.source = QLabel("")  # which run's weights the maps are computed with
        self.source.setWordWrap(True)
        self.info = QLabel("")
        self.info.setStyleSheet("color: palette(mid);")
        self.per_channel = QCheckBox("Scale each channel")
        self.per_channel.setChecked(True)
        self.per_channel.setToolTip("Stretch every channel to its own range so weak channels stay visible; "
                                    "untick to compare magnitudes across channels")
        self.per_channel.toggled.connect(self._redraw)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Compute the maps now with the current weights")
        self.refresh_button.clicked.connect(self.refresh_requested)

        self.view = _MapArea()
        self.view.ci.setContentsMargins(2, 2, 2, 2)
        self.box = self.view.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("viridis"))
        self.box.addItem(self.image)
        self._relayout = QTimer(self)
        self._relayout.setSingleShot(True)
        self._relayout.setInterval(60)  # a dragged splitter lays the tiles out once it rests
        self._relayout.timeout.connect(self._redraw)
        self.view.resized.connect(self._relayout.start)
        self.hint = QLabel(PICK_HINT)
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignCenter)
        self.hint.setMargin(24)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.hint)
        self.stack.addWidget(self.view)

        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.per_channel)
        top.addWidget(self.refresh_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.source)
        lay.addWidget(self.stack, 1)
        lay.addWidget(self.info)
        self.maps: np.ndarray | None = None
        self.frames = 0  # frames drawn (tests, benchmarks)
        self._cols = 0
        self.restyle()

    def restyle(self) -> None:
        self.view.setBackground(plot_colors().background)


    def set_source(self, text: str) -> None:
        self.source.setText(text)

    def set_block(self, label: str | None) -> None:
        if label is None:
            self.title.setText("No block selected.")
            self.clear_image()
            self.hint.setText(PICK_HINT)
        else:
            self.title.setText(f"Output of {label}")
            if self.maps is None:
                self.hint.setText(f"Computing the output of {label}…")

    def show_maps(self, maps: np.ndarray, total: int, step: int, sample_label: str, note: str = "") -> None:
        self.maps = maps
        self._redraw()
        c = maps.shape[0]
        shape = "×".join(str(d) for d in maps.shape[1:]) if maps.shape[1] * maps.shape[2] > 1 else "1"
        shown = f"{c} channels" + (f" of {total}" if total > c else "")
        parts = [f"{shown}, each {shape}", f"sample: {sample_label}"]
        if step:
            parts.append(f"step {step:,}")
        if note:
            parts.append(note)
        self.info.setText(" · ".join(parts))

    def show_message(self, text: str) -> None:
        self.clear_image()
        self.hint.setText(text)

    def clear_image(self) -> None:
        """Nothing to show: the hint instead of an empty (or one-pixel) image."""
        self.maps = None
        self.info.setText("")
        self.stack.setCurrentWidget(self.hint)

    def _redraw(self) -> None:
        if self.maps is None or self.maps.shape[0] == 0:
            return
        self.stack.setCurrentWidget(self.view)
        c, h, w = self.maps.shape
        area = self.box.boundingRect() if self.view.isVisible() else None
        if area is not None and area.width() > 10 and area.height() > 10:
            self._cols = columns_for(c, h, w, area.width(), area.height())
        # NaN gaps are drawn transparent, so the view's background shows between and after the tiles.
        mosaic = tile(self.maps, per_channel=self.per_channel.isChecked(), cols=self._cols or None, gap=np.nan)
        reshaped = self.image.image is None or self.image.image.shape != mosaic.shape
        self.image.setImage(mosaic, levels=(0.0, 1.0), autoLevels=False)
        if reshaped:  # re-fit only when the mosaic changes size, not on every frame
            self.box.autoRange(padding=0.01)
        self.frames += 1

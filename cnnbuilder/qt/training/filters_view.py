"""The selected convolution's kernels as a grid of tiles, and its weight histogram.

Only paints what `core.inspect.look.filters_of` computed in the worker: the tiles arrive as one
small array and are laid out into one RGB mosaic (`look.mosaic`) for a single ImageItem; the
histogram is one stepped curve. With no convolution selected, a written hint instead.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSplitter, QStackedWidget, QVBoxLayout, QWidget

from ...core.inspect.look import FilterGrid, mosaic
from ..theme import plot_colors

HINT = ("Click a Conv2d block on the canvas to see its kernels (filters) and the histogram of its weights.\n"
        "They are refreshed while the model trains.")


class FiltersView(QWidget):
    refresh_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = QLabel("No block selected.")
        self.title.setWordWrap(True)
        self.source = QLabel("")
        self.source.setWordWrap(True)
        self.caption = QLabel("")
        self.caption.setWordWrap(True)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Read the kernels again from the current weights")
        self.refresh_button.clicked.connect(self.refresh_requested)

        self.view = pg.GraphicsLayoutWidget()
        self.view.ci.setContentsMargins(2, 2, 2, 2)
        self.box = self.view.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.box.addItem(self.image)
        self.hist = pg.PlotWidget()
        self.hist.setMenuEnabled(False)
        self.hist.setLabel("bottom", "weight")
        self.hist.setLabel("left", "count")
        self.hist.setMouseEnabled(x=False, y=False)
        self.curve = self.hist.plot([0, 1], [0], stepMode="center", fillLevel=0, brush=(80, 120, 200, 120))
        split = QSplitter(Qt.Vertical)
        split.addWidget(self.view)
        split.addWidget(self.hist)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        self.hint = QLabel(HINT)
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignCenter)
        self.hint.setMargin(24)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.hint)
        self.stack.addWidget(split)
        self._shown = split

        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.refresh_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.source)
        lay.addWidget(self.stack, 1)
        lay.addWidget(self.caption)
        self.grid: FilterGrid | None = None
        self.is_conv = False  # a convolution is selected: there is something to ask for
        self.frames = 0  # grids drawn (tests)
        self.restyle()

    def restyle(self) -> None:
        colors = plot_colors()
        self.view.setBackground(colors.background)
        self.hist.setBackground(colors.background)

    def set_block(self, label: str | None, is_conv: bool = False) -> None:
        self.grid = None
        self.is_conv = label is not None and is_conv
        if label is None:
            self.title.setText("No block selected.")
            self.show_message(HINT)
        elif not is_conv:
            self.title.setText(label)
            self.show_message(f"{label} has no kernels to show: select a Conv2d (or ConvTranspose2d) block.")
        else:
            self.title.setText(f"Kernels of {label}")
            self.show_message(f"Reading the kernels of {label}…")

    def show_message(self, text: str) -> None:
        self.caption.setText("")
        self.hint.setText(text)
        self.stack.setCurrentWidget(self.hint)

    def set_source(self, text: str) -> None:
        self.source.setText(text)

    def show_grid(self, grid: FilterGrid, source: str = "") -> None:
        self.grid = grid
        n, kh, kw = grid.tiles.shape[:3]
        area = self.box.boundingRect()
        # As many columns as make the mosaic's shape closest to the view's.
        aspect = area.width() / area.height() if area.height() > 10 else 1.5
        cols = max(1, min(n, round(np.sqrt(n * aspect * kh / max(1, kw)))))
        cols = -(-n // -(-n // cols))  # as few columns as give the same rows: no lonely last tile
        picture = mosaic(grid, cols)
        reshaped = self.image.image is None or self.image.image.shape != picture.shape
        self.image.setImage(picture, levels=(0.0, 1.0), autoLevels=False)
        if reshaped:
            self.box.autoRange(padding=0.02)
        self.curve.setData(grid.hist_edges, grid.hist_counts.astype(np.float64))
        self.hist.setTitle(f"weights of {grid.label}: {int(grid.hist_counts.sum()):,} values")
        self.caption.setText(grid.caption)
        if source:
            self.source.setText(f"Weights: {source}")
        self.stack.setCurrentWidget(self._shown)
        self.frames += 1

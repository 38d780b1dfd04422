"""The selected block's output channels for one sample, as one tiled image.

One ImageItem, created once; each frame is a float32 mosaic (row-major) set with explicit levels,
so pyqtgraph never scans the data for its range.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ...core.training.featuremaps import tile


class FeatureMapView(QWidget):
    refresh_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = QLabel("Select a block on the canvas to see its output for a sample image.")
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

        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("k")
        self.box = self.view.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("viridis"))
        self.box.addItem(self.image)

        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.per_channel)
        top.addWidget(self.refresh_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.source)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.info)
        self.maps: np.ndarray | None = None
        self.frames = 0  # frames drawn (tests, benchmarks)

    def set_source(self, text: str) -> None:
        self.source.setText(text)

    def set_block(self, label: str | None) -> None:
        if label is None:
            self.title.setText("Select a block on the canvas to see its output for a sample image.")
            self.clear_image()
        else:
            self.title.setText(f"Output of {label}")

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
        self.info.setText(text)

    def clear_image(self) -> None:
        self.maps = None
        self.image.setImage(np.zeros((1, 1), np.float32), levels=(0.0, 1.0), autoLevels=False)

    def _redraw(self) -> None:
        if self.maps is None or self.maps.shape[0] == 0:
            return
        mosaic = tile(self.maps, per_channel=self.per_channel.isChecked())
        reshaped = self.image.image is None or self.image.image.shape != mosaic.shape
        self.image.setImage(mosaic, levels=(0.0, 1.0), autoLevels=False)
        if reshaped:  # re-fit only when the mosaic changes size, not on every frame
            self.box.autoRange(padding=0.02)
        self.frames += 1

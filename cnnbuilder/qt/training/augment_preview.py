"""A live grid of training images after the chosen augmentation, beside the data settings.

Off until the user turns it on (it loads the data). Then every settings change re-draws it after a
short pause (debounced); the images come from the training worker (core.training.inspect_run
.augment_preview: the same kernels and per-image random draws training uses), never from the GUI
thread. "Shuffle" draws new random parameters for the same images.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ...core.training.inspect_run import PREVIEW_IMAGES, PreviewRequest
from .thumbs import pixmap

DEBOUNCE_MS = 300
COLUMNS = 4
TILE = 56  # pixels per image
SETTING = "training/augment_preview"


class AugmentPreview(QGroupBox):
    requested = Signal(object)  # a PreviewRequest, for the training worker

    def __init__(self, config: Callable[[], dict], parent: QWidget | None = None):
        super().__init__("Augmentation preview", parent)
        self._config = config
        self._tag = 0
        self._seed = 0
        self.setCheckable(True)
        self.setToolTip("16 training images as training will see them with these augmentation settings "
                        "(each with its own random draw); re-drawn as you change the settings")
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(DEBOUNCE_MS)
        self.timer.timeout.connect(self._request)
        self.status = QLabel("Turn on to see training images after augmentation.")
        self.status.setWordWrap(True)
        self.shuffle = QPushButton("Shuffle")
        self.shuffle.setToolTip("New random augmentation parameters for the same images")
        self.shuffle.clicked.connect(self._reshuffle)
        self.grid = QGridLayout()
        self.grid.setSpacing(2)
        self.tiles: list[QLabel] = []
        for i in range(PREVIEW_IMAGES):
            tile = QLabel()
            tile.setFixedSize(TILE, TILE)
            tile.setAlignment(Qt.AlignCenter)
            self.grid.addWidget(tile, i // COLUMNS, i % COLUMNS)
            self.tiles.append(tile)
        self.body = QWidget()
        body = QVBoxLayout(self.body)
        body.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addLayout(self.grid)
        row.addStretch(1)
        body.addLayout(row)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.shuffle)
        body.addLayout(bottom)
        lay = QVBoxLayout(self)
        lay.addWidget(self.body)
        on = QSettings().value(SETTING, False, type=bool)
        self.setChecked(on)
        self._show_body(on)
        self.toggled.connect(self._toggled)

    # -- requests ----------------------------------------------------------------------------------
    def schedule(self, *_args) -> None:
        """The settings changed: re-draw after the debounce (only when on)."""
        if self.isChecked():
            self.timer.start()

    def _toggled(self, on: bool) -> None:
        QSettings().setValue(SETTING, on)
        self._show_body(on)
        if on:
            self.timer.start()
        else:
            self.timer.stop()
            self._tag += 1  # an answer on its way is no longer wanted

    def _show_body(self, on: bool) -> None:
        for tile in self.tiles:
            tile.setVisible(on)
        self.shuffle.setVisible(on)
        self.status.setText("Working…" if on else "Turn on to see training images after augmentation.")

    def _reshuffle(self) -> None:
        self._seed += 1
        self.timer.start()

    def _request(self) -> None:
        self._tag += 1
        self.status.setText("Working…")
        self.requested.emit(PreviewRequest(self._tag, self._config(), self._seed))

    # -- answers -----------------------------------------------------------------------------------
    def show_result(self, ev) -> None:
        """An AugmentPreview event; answers to older requests are dropped."""
        if ev.run_id != self._tag or not self.isChecked():
            return
        if ev.message:
            self.status.setText(ev.message)
            for tile in self.tiles:
                tile.clear()
            return
        for i, tile in enumerate(self.tiles):
            if i < len(ev.images):
                tile.setPixmap(pixmap(ev.images[i], TILE))
            else:
                tile.clear()
        cfg = self._config()
        self.status.setText(_describe(cfg))


def _describe(cfg: dict) -> str:
    parts = []
    if cfg.get("crop_padding"):
        parts.append(f"crop padding {cfg['crop_padding']}")
    if cfg.get("hflip"):
        parts.append("flip")
    if cfg.get("rotation"):
        parts.append(f"rotation ±{cfg['rotation']:g}°")
    if cfg.get("color_jitter"):
        parts.append(f"colour jitter ±{cfg['color_jitter']:g}")
    if cfg.get("hue"):
        parts.append(f"hue ±{cfg['hue']:g}")
    return ("With " + ", ".join(parts)) if parts else "No augmentation: the images as loaded"

"""Predict and explain one image: the image as the model sees it, the top-5 classes as bars, and
Grad-CAM / saliency / SmoothGrad overlaid with an opacity slider.

The view holds only what the user chose (an image file or a test sample, a weights file, the
method, class and block) and emits `requested` when that changes; the panel turns it into a
`core.inspect.look.LookRequest` for the worker. A result is drawn in one go; moving the opacity
slider re-blends the kept map on this side (`explain.overlay`, a few small numpy operations).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...core.inspect.explain import METHODS, overlay
from ...core.inspect.look import LookResult

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp *.ppm *.pgm);;All files (*)"
WEIGHTS_FILTER = "Weights or checkpoints (*.pt *.pth *.safetensors *.ckpt);;All files (*)"
HINT = ("Open an image, drop an image file here, or pick a test sample: the model's top-5 classes and "
        "where it looks.")
TOP = 5


def to_pixmap(rgb: np.ndarray, side: int) -> QPixmap:
    """A uint8 H×W×3 array as a pixmap scaled (nearest neighbour: pixels stay sharp) to fit `side`."""
    a = np.ascontiguousarray(rgb, np.uint8)
    h, w = a.shape[:2]
    img = QImage(a.data, w, h, 3 * w, QImage.Format_RGB888).copy()  # copy: the array may go away
    return QPixmap.fromImage(img).scaled(side, side, Qt.KeepAspectRatio, Qt.FastTransformation)


class PredictView(QWidget):
    requested = Signal()  # what to show changed: the panel sends a request
    weights_changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.image_path: str | None = None
        self.test_index: int | None = None
        self.weights_file: str | None = None
        self.result: LookResult | None = None
        self.frames = 0  # results drawn (tests)
        self.blends = 0  # overlays re-blended by the slider (tests)

        self.open_button = QPushButton("Open image…")
        self.open_button.clicked.connect(self._open)
        self.sample_spin = QSpinBox()
        self.sample_spin.setRange(0, 999_999)
        self.sample_spin.setPrefix("test sample ")
        self.sample_spin.setToolTip("A sample of the loaded test set, by its number")
        self.sample_spin.setKeyboardTracking(False)
        self.sample_spin.valueChanged.connect(self.pick_sample)
        self.random_button = QPushButton("Random sample")
        self.random_button.clicked.connect(self._random_sample)
        self.weights_button = QPushButton("Weights…")
        self.weights_button.setToolTip("Use a checkpoint or exported weights file (model.pt, .safetensors, .ckpt) "
                                       "instead of the run's weights")
        self.weights_button.clicked.connect(self._choose_weights)
        self.run_weights_button = QPushButton("Use run weights")
        self.run_weights_button.setToolTip("Back to the live model or the run chosen in the Runs tab")
        self.run_weights_button.clicked.connect(lambda: self.set_weights_file(None))
        self.run_weights_button.hide()
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Predict again with the weights as they are now")
        self.refresh_button.clicked.connect(self.requested)
        row = QHBoxLayout()
        for w in (self.open_button, self.sample_spin, self.random_button):
            row.addWidget(w)
        row.addStretch(1)
        for w in (self.weights_button, self.run_weights_button, self.refresh_button):
            row.addWidget(w)

        self.source = QLabel("")
        self.source.setWordWrap(True)
        self.message = QLabel(HINT)
        self.message.setWordWrap(True)

        self.picture = QLabel()
        self.picture.setAlignment(Qt.AlignCenter)
        self.picture.setMinimumSize(240, 240)
        self.picture.setStyleSheet("QLabel { background: palette(base); border: 1px solid palette(mid); }")
        self.image_title = QLabel("")
        self.image_title.setWordWrap(True)
        self.notes = QLabel("")
        self.notes.setWordWrap(True)

        self.method = QComboBox()
        self.method.addItem("Prediction only", None)
        for key, name in METHODS.items():
            self.method.addItem(name, key)
        self.method.setCurrentIndex(1)
        self.method.currentIndexChanged.connect(self._changed)
        self.target = QComboBox()
        self.target.setToolTip("The class whose evidence the map shows")
        self.target.currentIndexChanged.connect(self._changed)
        self.block = QComboBox()
        self.block.setToolTip("The block Grad-CAM looks at (the last convolution by default)")
        self.block.currentIndexChanged.connect(self._changed)
        self.opacity = QSlider(Qt.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(50)
        self.opacity.setToolTip("How strongly the map covers the image")
        self.opacity.valueChanged.connect(self._blend)
        controls = QGridLayout()
        controls.addWidget(QLabel("Map"), 0, 0)
        controls.addWidget(self.method, 0, 1)
        controls.addWidget(QLabel("Class"), 1, 0)
        controls.addWidget(self.target, 1, 1)
        controls.addWidget(QLabel("Block"), 2, 0)
        controls.addWidget(self.block, 2, 1)
        controls.addWidget(QLabel("Opacity"), 3, 0)
        controls.addWidget(self.opacity, 3, 1)

        self.bars: list[tuple[QLabel, QProgressBar]] = []
        bars = QGridLayout()
        bars.addWidget(QLabel("<b>Top 5</b>"), 0, 0, 1, 2)
        for i in range(TOP):
            name, bar = QLabel(""), QProgressBar()
            bar.setRange(0, 1000)
            bar.setTextVisible(True)
            bar.setFormat("")
            bars.addWidget(name, i + 1, 0)
            bars.addWidget(bar, i + 1, 1)
            self.bars.append((name, bar))
        bars.setColumnStretch(1, 1)
        self.map_note = QLabel("")
        self.map_note.setWordWrap(True)

        left = QVBoxLayout()
        left.addWidget(self.picture, 1)
        left.addWidget(self.image_title)
        left.addWidget(self.notes)
        right = QVBoxLayout()
        right.addLayout(bars)
        right.addSpacing(8)
        right.addLayout(controls)
        right.addWidget(self.map_note)
        right.addStretch(1)
        body = QHBoxLayout()
        body.addLayout(left, 3)
        body.addLayout(right, 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(row)
        lay.addWidget(self.source)
        lay.addWidget(self.message)
        lay.addLayout(body, 1)
        self._samples = 0
        self._filling = False
        self.clear()

    # -- what the user chooses ------------------------------------------------------------------
    def ask_image_path(self) -> str | None:  # overridable in tests
        path, _ = QFileDialog.getOpenFileName(self, "Open image", "", IMAGE_FILTER)
        return path or None

    def ask_weights_path(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self, "Weights or checkpoint", "", WEIGHTS_FILTER)
        return path or None

    def _open(self) -> None:
        path = self.ask_image_path()
        if path:
            self.open_image(path)

    def _choose_weights(self) -> None:
        path = self.ask_weights_path()
        if path:
            self.set_weights_file(path)

    def _random_sample(self) -> None:
        self.pick_sample(random.randrange(max(1, self._samples)))

    def open_image(self, path: str) -> None:
        self.image_path, self.test_index = str(path), None
        self._reset_choices()
        self.requested.emit()

    def pick_sample(self, index: int) -> None:
        self.image_path, self.test_index = None, int(index)
        if self.sample_spin.value() != index:  # called directly (Random, tests): the box shows it too
            self.sample_spin.blockSignals(True)
            self.sample_spin.setValue(int(index))
            self.sample_spin.blockSignals(False)
        self._reset_choices()
        self.requested.emit()

    def set_weights_file(self, path: str | None) -> None:
        self.weights_file = path
        self.run_weights_button.setVisible(path is not None)
        self.weights_changed.emit()
        if self.has_image():
            self.requested.emit()

    def set_test_size(self, n: int) -> None:
        self._samples = max(0, int(n))
        self.sample_spin.setMaximum(max(0, self._samples - 1))

    def has_image(self) -> bool:
        return self.image_path is not None or self.test_index is not None

    def choices(self) -> dict:
        """The request's fields this view decides."""
        return dict(image=self.image_path, test_index=self.test_index, method=self.method.currentData(),
                    target=self.target.currentData(), block=self.block.currentData())

    def _reset_choices(self) -> None:
        """A new image: the class and block go back to their defaults (predicted, last convolution)."""
        self._filling = True
        self.target.setCurrentIndex(0 if self.target.count() else -1)
        self.block.setCurrentIndex(0 if self.block.count() else -1)
        self._filling = False

    def _changed(self) -> None:
        if not self._filling and self.has_image():
            self.requested.emit()

    # -- drag and drop ---------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if _dropped_file(event.mimeData()) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt's name
        path = _dropped_file(event.mimeData())
        if path is not None:
            event.acceptProposedAction()
            self.open_image(path)

    # -- results ----------------------------------------------------------------------------------
    def set_source(self, text: str) -> None:
        self.source.setText(text)

    def busy(self) -> None:
        self.message.setText("Computing…")

    def show_message(self, text: str) -> None:
        """Nothing could be computed: say why, in the panel, and show no stale picture."""
        self.result = None
        self.message.setText(text)
        self.message.setStyleSheet("QLabel { color: #b42318; }")
        self.picture.clear()
        self.picture.setText("")
        self.notes.setText("")
        self.image_title.setText("")
        self.map_note.setText("")
        for name, bar in self.bars:
            name.setText("")
            bar.setValue(0)
            bar.setFormat("")

    def forget(self) -> None:
        self.image_path = self.test_index = None
        self.set_weights_file(None)
        self.clear()

    def clear(self) -> None:
        self.show_message(HINT)
        self.message.setStyleSheet("")

    def show_result(self, r: LookResult) -> None:
        self.result = r
        self.message.setText("")
        self.message.setStyleSheet("")
        self.image_title.setText(r.image_name)
        self.notes.setText("; ".join(r.notes))
        for (name, bar), (cls, p) in zip(self.bars, list(r.top) + [("", 0.0)] * (TOP - len(r.top)), strict=False):
            name.setText(cls)
            bar.setValue(int(round(1000 * p)))
            bar.setFormat(f"{p:.1%}" if cls else "")
        self._fill(r)
        if "test_size" in r.extra:
            self.set_test_size(r.extra["test_size"])
        if r.source:
            self.source.setText(f"Weights: {r.source}")
        if r.heat is None:
            self.map_note.setText(r.map_note)
        else:
            what = METHODS.get(r.method, r.method)
            where = next((label for nid, label in r.blocks if nid == r.block), "")
            cls = r.class_names[r.target] if 0 <= r.target < len(r.class_names) else str(r.target)
            self.map_note.setText(f"{what} for {cls}" + (f" at {where}" if where else "") +
                                  (f" ({r.map_note})" if r.map_note else ""))
        self._blend()
        self.frames += 1

    def _fill(self, r: LookResult) -> None:
        """The class and block choices, keeping the user's; index 0 is the default."""
        self._filling = True
        want_t, want_b = self.target.currentData(), self.block.currentData()
        self.target.clear()
        predicted = r.top[0][0] if r.top else ""
        self.target.addItem(f"predicted ({predicted})", None)
        for i, name in enumerate(r.class_names):
            self.target.addItem(name, i)
        self.target.setCurrentIndex(max(0, self.target.findData(want_t)) if want_t is not None else 0)
        self.block.clear()
        last = next((label for nid, label in r.blocks if nid == r.block), "")
        self.block.addItem(f"default ({last or 'last convolution'})", None)
        for nid, label in r.blocks:
            self.block.addItem(label, nid)
        self.block.setCurrentIndex(max(0, self.block.findData(want_b)) if want_b is not None else 0)
        self.block.setEnabled(self.method.currentData() == "gradcam")
        self._filling = False

    def _blend(self) -> None:
        r = self.result
        if r is None or r.display is None:
            return
        side = max(64, min(self.picture.width(), self.picture.height()) - 4)
        if r.heat is None:
            rgb = r.display
        else:
            rgb = overlay(r.display, r.heat, self.opacity.value() / 100.0, min_side=0)
            self.blends += 1
        self.picture.setPixmap(to_pixmap(rgb, side))

    def resizeEvent(self, ev) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(ev)
        self._blend()


def _dropped_file(mime) -> str | None:
    if not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile() and not Path(url.toLocalFile()).is_dir():
            return url.toLocalFile()
    return None

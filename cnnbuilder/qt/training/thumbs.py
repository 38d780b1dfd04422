"""uint8 C×H×W images (1 or 3 channels) as pixmaps, enlarged without smoothing so pixels stay sharp."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap


def pixmap(image: np.ndarray, size: int) -> QPixmap:
    """`image` (uint8 C×H×W, C = 1 or 3) scaled to fit `size`×`size` pixels."""
    a = np.asarray(image, dtype=np.uint8)
    if a.ndim != 3 or a.shape[0] not in (1, 3):
        raise ValueError(f"expected a 1- or 3-channel C×H×W image, got shape {a.shape}")
    if a.shape[0] == 1:
        data = np.ascontiguousarray(a[0])
        img = QImage(data.data, data.shape[1], data.shape[0], data.strides[0], QImage.Format_Grayscale8)
    else:
        data = np.ascontiguousarray(a.transpose(1, 2, 0))
        img = QImage(data.data, data.shape[1], data.shape[0], data.strides[0], QImage.Format_RGB888)
    return QPixmap.fromImage(img.copy()).scaled(size, size, Qt.KeepAspectRatio, Qt.FastTransformation)

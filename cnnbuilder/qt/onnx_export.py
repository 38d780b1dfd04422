"""File > Export > ONNX…: the core ONNX exporter (`core.export.onnx`) behind a file dialog.

Weights: the last training run's, when its model is the one on the canvas; otherwise the user picks
a weights file (model.pt, model.safetensors, a checkpoint) or exports the untrained model. The
export and its onnxruntime check need torch, so they run in the training process
(qt/training/worker.py); the window keeps working and shows the result when it comes back.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from ..core.export.onnx import onnx_missing
from ..core.project import graph_to_dict

TITLE = "Cannot export ONNX"
WEIGHTS_FILTER = "Weights (*.pt *.pth *.safetensors *.ckpt);;All files (*)"


def ask_weights(parent: QWidget) -> str | None:
    """No trained model in this session: a weights file's path, "" for untrained weights, None to cancel."""
    box = QMessageBox(QMessageBox.Question, "Export ONNX",
                      "This session has no trained model for this network. Export it with weights from a file "
                      "(model.pt, model.safetensors or a checkpoint), or untrained?", QMessageBox.Cancel, parent)
    from_file = box.addButton("Weights File…", QMessageBox.AcceptRole)
    untrained = box.addButton("Untrained", QMessageBox.DestructiveRole)
    box.exec()
    if box.clickedButton() is untrained:
        return ""
    if box.clickedButton() is from_file:
        path, _ = QFileDialog.getOpenFileName(parent, "Weights to export", "", WEIGHTS_FILTER)
        return path or None
    return None


def export_onnx_dialog(window) -> bool:
    missing = onnx_missing()
    if missing:
        window.show_error(TITLE, f"{missing}\n\nInstall them into the Python environment cnnbuilder runs in, then "
                                 "restart cnnbuilder.")
        return False
    if not window.document.analysis.ok:
        window.show_error(TITLE, "The model has problems; the Summary panel lists them.")
        return False
    if window.training_panel.is_running():
        window.show_error(TITLE, "Training is running: export when it has finished or been stopped.")
        return False
    trained = window.training_panel.worker.has_model_for(window.document.graph)
    weights = None
    if not trained:
        weights = ask_weights(window)
        if weights is None:
            return False
    path = window.ask_save_path("Export ONNX", "ONNX models (*.onnx)", window._suggest(".onnx"))
    if not path:
        return False
    return export_onnx_file(window, path, weights=weights or None, trained=trained)


def export_onnx_file(window, path, weights=None, trained: bool = False) -> bool:
    """Ask the training process to export; the status bar (or an error dialog) says how it went.
    `trained`: with the weights of the model the process keeps from the last run."""
    QGuiApplication.setOverrideCursor(Qt.BusyCursor)  # busy, not waiting: the window still responds
    window.show_status(f"Exporting ONNX to {path}…", 0)

    def done(ok: bool, message: str) -> None:
        QGuiApplication.restoreOverrideCursor()
        if ok:
            window.show_status(message, 15000)
        else:
            window.show_status("ONNX export failed", 5000)
            window.show_error(TITLE, message)

    window.training_panel.worker.export_onnx(graph_to_dict(window.document.graph), str(path), weights and str(weights),
                                             trained, window.document.project.name, done)
    return True

"""File > Export > ONNX…: the core ONNX exporter (`core.export.onnx`) behind a file dialog.

Weights: the last training run's, when its model is the one on the canvas; otherwise the user picks
a weights file (model.pt, model.safetensors, a checkpoint) or exports the untrained model. The
export and its onnxruntime check take a few seconds, under a wait cursor.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from ..core.codegen import CodegenError, generate
from ..core.export.onnx import OnnxExportError, export_onnx, onnx_missing

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


def trained_state(window) -> dict | None:
    """The last run's weights, when that run trained the model now on the canvas (CPU copies)."""
    from ..core.training.checkpoint import plain_state_dict

    trainer = window.training_panel.worker.trainer
    if trainer is None or trainer.model is None:
        return None
    try:
        same = generate(window.document.graph).code == trainer.code
    except CodegenError:
        return None
    return plain_state_dict(trainer.model) if same else None


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
    state = trained_state(window)
    weights = None
    if state is None:
        weights = ask_weights(window)
        if weights is None:
            return False
    path = window.ask_save_path("Export ONNX", "ONNX models (*.onnx)", window._suggest(".onnx"))
    if not path:
        return False
    return export_onnx_file(window, path, weights=weights or None, state_dict=state)


def export_onnx_file(window, path, weights=None, state_dict=None) -> bool:
    QGuiApplication.setOverrideCursor(Qt.WaitCursor)
    try:
        report = export_onnx(window.document.graph, path, weights=weights, state_dict=state_dict,
                             title=window.document.project.name)
    except OnnxExportError as exc:
        window.show_error(TITLE, str(exc))
        return False
    finally:
        QGuiApplication.restoreOverrideCursor()
    window.show_status(report.message()[0].upper() + report.message()[1:], 15000)
    return True

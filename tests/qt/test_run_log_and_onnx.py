"""The GUI side of run logs and ONNX: the Training panel's Run log settings live in the project and
send each run's metrics.csv (and TensorBoard files) to the chosen folder; File > Export ONNX… uses
the last run's weights, explains missing packages, and refuses what the exporter cannot do. The
export runs in the training process: its result shows when it comes back."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnbuilder.core import runs
from cnnbuilder.core.project import load_project
from cnnbuilder.qt import onnx_export
from cnnbuilder.qt.document import Document
from cnnbuilder.qt.training import TrainingPanel

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
TINY = {"dataset": "shapes", "shapes_train": 200, "shapes_test": 40, "batch_size": 32, "epochs": 1, "lr": 0.003}


@pytest.fixture
def panel(qtbot):
    project = load_project(EXAMPLES / "mnist_cnn.json")
    project.training = dict(TINY)
    project.path = None  # never write next to a shipped example
    p = TrainingPanel(Document(project))
    qtbot.addWidget(p)
    yield p
    assert p.shutdown(10_000)


def test_run_log_settings_are_project_settings_and_the_run_writes_there(qtbot, panel, tmp_path):
    pytest.importorskip("tensorboard")
    doc = panel.document
    box, folder = panel._fields["tensorboard"][0], panel._fields["log_dir"]
    box.setChecked(True)
    folder[2](str(tmp_path / "logs"))
    panel._settings_edited()
    assert doc.project.training["tensorboard"] is True and doc.project.training["log_dir"] == str(tmp_path / "logs")
    doc.set_training({**doc.project.training, "tensorboard": False})  # e.g. undo: the box follows
    assert not box.isChecked()
    box.setChecked(True)
    assert panel.start()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=60_000)
    assert panel.progress.format().startswith("Finished"), panel.error_label.text()
    (run,) = (tmp_path / "logs").iterdir()
    assert run.name.startswith("MNIST_tutorial_CNN-")  # an unsaved project: named after the model
    names = sorted(p.name for p in run.iterdir())
    assert names[0].startswith("events.out.tfevents.") and names[1] == "metrics.csv"
    assert f"run log: {run}" in panel.log.toPlainText()


def test_missing_tensorboard_is_explained_before_the_run(monkeypatch, panel):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    panel._fields["tensorboard"][0].setChecked(True)
    assert not panel.start() and not panel.is_running()
    assert "pip install 'cnnbuilder[tensorboard]'" in panel.error_label.text()


def test_export_onnx_with_the_last_runs_weights(qtbot, monkeypatch, make_window, tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    window = make_window("lenet5")
    window.document.set_training(dict(TINY))
    assert window.training_panel.start()
    qtbot.waitUntil(lambda: not window.training_panel.is_running(), timeout=60_000)
    window.answers["save_path"] = str(tmp_path / "lenet.onnx")
    asked = []
    monkeypatch.setattr(onnx_export, "ask_weights", lambda parent: asked.append(1) or "")
    window.act_export_onnx.trigger()
    qtbot.waitUntil(lambda: "verified" in window.statusBar().currentMessage() or bool(window.errors), timeout=60_000)
    assert window.errors == [] and not asked  # the trained model was used without asking
    panel = window.training_panel
    model = runs.build_model(panel._store(), panel.runs_view.current())  # the run's recorded weights
    x = torch.randn(3, 1, 28, 28)
    got = ort.InferenceSession(str(tmp_path / "lenet.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"input": x.numpy()})[0]
    with torch.no_grad():
        assert np.abs(got - model(x).numpy()).max() < 1e-4
    assert "verified with onnxruntime" in window.statusBar().currentMessage()


def test_export_onnx_explains_missing_packages_and_refusals(qtbot, monkeypatch, window, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name, *a))
    window.answers["save_path"] = str(tmp_path / "m.onnx")
    window.act_export_onnx.trigger()
    assert "pip install 'cnnbuilder[onnx]'" in window.errors[-1][1] and not (tmp_path / "m.onnx").exists()
    monkeypatch.setattr(importlib.util, "find_spec", real)
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(onnx_export, "ask_weights", lambda parent: None)  # cancelled: nothing happens
    assert not onnx_export.export_onnx_dialog(window) and len(window.errors) == 1
    monkeypatch.setattr(onnx_export, "ask_weights", lambda parent: str(tmp_path / "missing.pt"))
    assert onnx_export.export_onnx_dialog(window)  # asked of the training process ...
    qtbot.waitUntil(lambda: len(window.errors) == 2, timeout=60_000)  # ... which answers with the reason
    assert "no such weights file" in window.errors[-1][1] and not (tmp_path / "m.onnx").exists()
    assert window.statusBar().currentMessage() == "ONNX export failed"

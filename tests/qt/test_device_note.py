"""The Training panel's device list shows why an NVIDIA GPU is missing from it (a CPU-only PyTorch):
a line that cannot be chosen, with the full text as its tooltip. The list comes from the training
process, so the notes are faked there (tests/qt/child_hooks.py) and the list asked for again."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from cnnbuilder.core.project import load_project
from cnnbuilder.qt.document import Document
from cnnbuilder.qt.training import TrainingPanel

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
NOTE = "An NVIDIA GPU is present, but this PyTorch 2.x is a CPU-only build: download cnnbuilder's CUDA build"


def _panel(qtbot, device: str = "cpu") -> TrainingPanel:
    project = load_project(EXAMPLES / "mnist_cnn.json")
    project.training = {"dataset": "shapes", "device": device}
    panel = TrainingPanel(Document(project))
    qtbot.addWidget(panel)
    return panel


def test_device_list_shows_the_note_as_a_line_that_cannot_be_chosen(qtbot, in_child):
    panel = _panel(qtbot)
    try:
        combo = panel._fields["device"][0]
        in_child(panel.worker, "tests.qt.child_hooks:device_notes", [NOTE])
        panel.worker.detect_devices()
        qtbot.waitUntil(lambda: combo.findData(None) >= 0, timeout=60_000)  # detection runs in the training process
        i = combo.findData(None)
        assert combo.itemText(i) == NOTE
        assert not combo.model().item(i).isEnabled()  # shown, but not a device to pick
        assert combo.itemData(i, Qt.ToolTipRole) == NOTE and NOTE in combo.toolTip()
        assert NOTE in panel.device_label.toolTip()
        assert combo.currentData() == "cpu" and panel.config().device == "cpu"  # the setting is untouched
        assert [combo.itemData(k) for k in range(combo.count())][-1] is None  # after the real choices
    finally:
        assert panel.shutdown(10_000)


def test_no_note_no_extra_line(qtbot, in_child):
    panel = _panel(qtbot, device="auto")
    try:
        combo = panel._fields["device"][0]
        in_child(panel.worker, "tests.qt.child_hooks:device_notes", [])
        panel.worker.detect_devices()
        in_child(panel.worker, "tests.qt.child_hooks:pid")  # answered in order: the list has arrived
        qtbot.waitUntil(lambda: combo.findData("auto") >= 0 and "detecting" not in combo.itemText(0), timeout=60_000)
        assert combo.findData(None) < 0 and combo.toolTip() == "" and panel.device_label.toolTip() == ""
    finally:
        assert panel.shutdown(10_000)

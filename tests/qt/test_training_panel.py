"""The Training panel (pytest-qt, offscreen): Train runs to the end and the plots fill; closing or
shutting down mid-run stops the run in the training process; fixes for model/data misfits; errors stay in the
panel; feature maps follow the selection; settings persist in the project."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from cnnbuilder.core.project import load_project
from cnnbuilder.core.training.events import BatchMetrics
from cnnbuilder.qt.document import Document
from cnnbuilder.qt.training import TrainingPanel

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
TINY = {"dataset": "shapes", "shapes_train": 600, "shapes_test": 120, "batch_size": 32, "epochs": 2, "lr": 0.003}
LONG = {**TINY, "epochs": 500}  # far longer than any test waits


@pytest.fixture
def make_panel(qtbot):
    panels = []

    def make(example: str = "mnist_cnn", training: dict | None = None) -> TrainingPanel:
        project = load_project(EXAMPLES / f"{example}.json")
        project.training = dict(TINY if training is None else training)
        project.path = None  # runs of an unsaved project go to the (per-test) data folder, not resources/
        panel = TrainingPanel(Document(project))
        qtbot.addWidget(panel)
        panels.append(panel)
        return panel

    yield make
    for panel in panels:  # every panel lets go of its training process, whatever the test did
        assert panel.shutdown(10_000)
        assert panel.worker.is_finished()


def wait_idle(qtbot, panel, timeout=60_000):
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=timeout)


def curve_len(panel, run_id, name) -> int:
    x, _ = panel.plots.runs[run_id].curves[name].getData()
    return 0 if x is None else len(x)


def test_train_button_runs_to_completion_and_plots_update(qtbot, make_panel):
    panel = make_panel()
    panel.show()
    qtbot.waitUntil(panel.train_button.isEnabled, timeout=60_000)  # once the training process has torch
    assert panel.train_button.text() == "Train"
    qtbot.mouseClick(panel.train_button, Qt.LeftButton)
    assert panel.is_running() and not panel.train_button.isEnabled() and panel.stop_button.isEnabled()
    wait_idle(qtbot, panel)
    assert panel.progress.format().startswith("Finished"), panel.error_label.text()
    rid = panel.plots.current
    assert curve_len(panel, rid, "raw") == 34 and curve_len(panel, rid, "smooth") == 34  # 540/32 = 17 steps × 2
    assert curve_len(panel, rid, "train_loss") == 2 and curve_len(panel, rid, "val_acc") == 2
    assert curve_len(panel, rid, "lr") > 0
    assert "Test accuracy" in panel.evaluation.summary.text()
    m = panel.evaluation.matrix  # 10×10 counts, then each class's precision, recall and images
    assert m.rowCount() == 10 and m.columnCount() == 13
    assert [m.horizontalHeaderItem(c).text() for c in (10, 11, 12)] == ["precision", "recall", "images"]
    assert m.item(0, 11).text().endswith("%") and int(m.item(0, 12).text()) == sum(
        int(m.item(0, c).text()) for c in range(10))
    assert panel.train_button.isEnabled() and panel.export_button.isEnabled()
    assert "Device: CPU" in panel.device_label.text()


def test_closing_mid_run_stops_the_worker(qtbot, make_panel):
    panel = make_panel(training=LONG)
    panel.show()
    assert panel.start()
    qtbot.waitUntil(lambda: panel.progress.value() > 0, timeout=60_000)
    assert panel.is_running()
    panel.close()
    assert panel.worker.is_finished() and not panel.is_running()
    assert not panel.train_button.isEnabled()  # a shut-down panel cannot start again


def test_shutdown_mid_run_joins_quickly(qtbot, make_panel):
    panel = make_panel(training=LONG)
    assert panel.start()
    qtbot.waitUntil(lambda: panel.progress.value() > 0, timeout=60_000)
    assert panel.shutdown(5000)
    assert panel.worker.is_finished()
    assert panel.confirm_close()  # nothing left to ask about


def test_stop_pause_and_resume_buttons(qtbot, make_panel):
    panel = make_panel(training=LONG)
    assert panel.start()
    qtbot.waitUntil(lambda: panel.progress.value() > 0, timeout=60_000)
    qtbot.mouseClick(panel.pause_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.pause_button.text() == "Resume", timeout=10_000)
    qtbot.wait(300)  # frames that were queued before the pause must not overwrite it
    assert panel.status.text().startswith("Paused") and panel.progress.format().startswith("Paused")
    qtbot.mouseClick(panel.pause_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.pause_button.text() == "Pause", timeout=10_000)
    qtbot.mouseClick(panel.stop_button, Qt.LeftButton)
    wait_idle(qtbot, panel, 20_000)
    assert panel.progress.format().startswith("Stopped")
    assert panel.train_button.isEnabled() and panel.save_button.isEnabled()


def test_input_mismatch_offers_a_one_click_undoable_fix(qtbot, make_panel):
    panel = make_panel("vgg_cifar10")
    doc = panel.document
    assert not panel.fit_frame.isHidden()
    assert "1×28×28" in (doc.verdict.node_warning("n1") or "") and doc.verdict.ok
    assert not panel.start()  # refused, with the reason shown
    assert not panel.error_label.isHidden() and "does not fit" in panel.error_label.text()
    texts = [b.text() for b in panel.fit_frame.buttons()]
    assert "Set Input to 1×28×28" in texts and "Make the shapes 3×32×32" in texts
    with qtbot.waitSignal(doc.verdict_changed):
        next(b for b in panel.fit_frame.buttons() if b.text().startswith("Set Input")).click()
    assert doc.verdict.warnings == ()
    assert doc.graph.node("n1").params["shape"] == (1, 28, 28)
    assert panel.fit_frame.isHidden()
    doc.undo_stack.undo()
    assert doc.graph.node("n1").params["shape"] == (3, 32, 32) and not panel.fit_frame.isHidden()
    # The other fix changes the data instead of the model; the form follows.
    next(b for b in panel.fit_frame.buttons() if b.text().startswith("Make the shapes")).click()
    assert doc.project.training["shapes_channels"] == 3 and doc.project.training["shapes_size"] == 32
    assert panel.config().shapes_channels == 3 and panel.config().shapes_size == 32
    assert panel.fit_frame.isHidden()


def test_output_size_mismatch_fix(qtbot, make_panel):
    panel = make_panel(training={**TINY, "dataset": "cifar100"})
    fix = next(b for b in panel.fit_frame.buttons() if "100 outputs" in b.text())
    fix.click()
    last = next(n for n in panel.document.graph if n.type == "Linear")
    assert last.params["out_features"] == 100


def test_settings_persist_in_the_project(qtbot, make_panel):
    panel = make_panel()
    doc = panel.document
    assert not doc.is_modified()
    epochs = panel._fields["epochs"][0]
    epochs.setValue(7)
    assert doc.project.training["epochs"] == 7 and doc.is_modified()
    panel._fields["optimizer"][0].setCurrentIndex(panel._fields["optimizer"][0].findData("sgd"))
    assert doc.project.training["optimizer"] == "sgd"
    assert panel._fields["nesterov"][0].isVisibleTo(panel)  # SGD-only settings appear
    panel._fields["hue"][0].setValue(0.1)
    assert doc.project.training["hue"] == pytest.approx(0.1)
    doc.set_training({**doc.project.training, "batch_size": 128})  # e.g. undo or another view
    assert panel._fields["batch_size"][0].value() == 128


def test_errors_are_shown_and_the_app_stays_usable(qtbot, make_panel, tmp_path):
    panel = make_panel(training={**TINY, "dataset": "mnist", "data_root": str(tmp_path)})
    assert panel.start()  # the folder exists; torchvision finds nothing in it
    wait_idle(qtbot, panel)
    assert not panel.error_label.isHidden() and "not found" in panel.error_label.text()
    assert panel.train_button.isEnabled()
    # A run that diverges: stopped with advice, shown in the panel.
    panel2 = make_panel("lenet5", {**TINY, "optimizer": "sgd", "lr": 50.0, "loss": "mse", "epochs": 3})
    assert panel2.start()
    wait_idle(qtbot, panel2)
    assert "learning rate" in panel2.error_label.text() and panel2.progress.format() == "Failed"


def test_feature_maps_follow_the_selection(qtbot, make_panel):
    panel = make_panel(training=LONG)
    panel.show()
    panel.tabs.setCurrentWidget(panel.features)
    panel.document.set_selection(["n2"])  # conv1, not training: computed once with untrained weights
    qtbot.waitUntil(lambda: panel.features.frames > 0, timeout=60_000)
    assert panel.features.maps.shape == (16, 28, 28)
    assert "untrained" in panel.features.info.text()
    first = panel.features.frames
    assert panel.start()
    qtbot.waitUntil(lambda: panel.features.frames >= first + 3, timeout=60_000)  # live while training
    assert "step" in panel.features.info.text()
    image = panel.features.image.image
    assert image.dtype == np.float32 and image.shape[0] > 28
    panel.document.set_selection(["n9"])  # the Linear: ten values as a 4×3 mosaic
    qtbot.waitUntil(lambda: panel.features.maps is not None and panel.features.maps.shape == (10, 1, 1),
                    timeout=30_000)


def test_feature_maps_stream_only_while_their_tab_is_shown(qtbot, make_panel):
    panel = make_panel(training=LONG)
    panel.show()
    panel.tabs.setCurrentWidget(panel.plots)
    panel.document.set_selection(["n2"])
    assert panel.start()
    qtbot.waitUntil(lambda: len(panel.plots.runs[panel.plots.current].steps) > 20, timeout=60_000)
    assert panel._control.feature_node is None and panel.features.frames == 0  # nobody is looking
    panel.tabs.setCurrentWidget(panel.features)
    assert panel._control.feature_node == "n2"
    qtbot.waitUntil(lambda: panel.features.frames >= 2, timeout=60_000)  # at once, then live
    panel.tabs.setCurrentWidget(panel.plots)
    assert panel._control.feature_node is None
    panel._stop()
    wait_idle(qtbot, panel)


def test_stale_events_are_dropped(qtbot, make_panel):
    panel = make_panel()
    assert panel.start()
    wait_idle(qtbot, panel)
    rid = panel.plots.current
    before = curve_len(panel, rid, "raw")
    old = BatchMetrics(rid, 1, 999, 999, np.array([999]), np.array([0.5], np.float32), 0.5, 0.5, 0.001, 1.0, 0.0,
                       1.0)
    panel._on_event(old)  # the run has ended: its late events must not touch the plots
    panel.plots.refresh()
    assert curve_len(panel, rid, "raw") == before


def test_run_history_overlay_checkpoint_export_and_resume(qtbot, make_panel, tmp_path):
    panel = make_panel()
    assert panel.start()
    wait_idle(qtbot, panel)
    ckpt = tmp_path / "run1.ckpt"
    panel.ask_checkpoint_save_path = lambda: str(ckpt)
    # Wait on what the GUI thread sees: waitSignal on the worker's own signal would run pytest-qt's
    # slot in the worker thread.
    panel.save_button.click()
    qtbot.waitUntil(lambda: "saved checkpoint" in panel.log.toPlainText(), timeout=30_000)
    assert ckpt.exists()
    panel.ask_export_dir = lambda: str(tmp_path / "export")
    panel.export_button.click()
    qtbot.waitUntil(lambda: "exported" in panel.log.toPlainText(), timeout=30_000)
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == ["model.pt", "model.py", "model.safetensors"]

    panel._fields["epochs"][0].setValue(3)
    panel.ask_checkpoint_open_path = lambda: str(ckpt)
    panel.resume_button.click()
    wait_idle(qtbot, panel)
    assert panel.progress.format().startswith("Finished"), panel.error_label.text()
    runs = panel.plots.runs
    assert len(runs) == 2 and panel.plots.run_list.count() == 2
    first, second = list(runs)  # in the order they ran (keys are timestamps: two in one second sort at random)
    assert curve_len(panel, second, "raw") == 51  # the resumed run carries the first 34 steps on
    assert curve_len(panel, second, "train_loss") == 3
    # Overlay: an earlier run's curves hide when unticked, show when ticked.
    panel.plots.set_checked(first, False)
    assert not runs[first].curves["smooth"].isVisible()
    panel.plots.set_checked(first, True)
    assert runs[first].curves["smooth"].isVisible() and not runs[first].curves["raw"].isVisible()
    # Deleting a run (confirmed) removes its curves too.
    panel.runs_view.ask_delete_run = lambda name: True
    panel.runs_view.select(first)
    assert panel.runs_view.delete_current()
    assert list(panel.plots.runs) == [second]

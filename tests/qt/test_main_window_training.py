"""Training from the main window: F5/Train runs to the end with live plots, closing mid-run stops
the worker cleanly (or keeps the window when the user says so), and a dataset that does not fit
the model puts a warning on the Input block on the canvas."""

from __future__ import annotations

import pytest

TINY = {"dataset": "shapes", "shapes_train": 600, "shapes_test": 120, "batch_size": 32, "epochs": 1, "lr": 0.003}
LONG = {**TINY, "epochs": 500}


@pytest.fixture
def trained_window(make_window):
    windows = []

    def make(training: dict):
        w = make_window("mnist_cnn")
        w.document.set_training(training)  # the panel follows the document's settings
        windows.append(w)
        return w

    yield make
    for w in windows:
        assert w.training_panel.shutdown(10_000)


def test_train_action_runs_to_completion_and_plots_update(qtbot, trained_window):
    w = trained_window(TINY)
    assert w.act_train.shortcut().toString() == "F5"
    w.act_train.trigger()
    panel = w.training_panel
    assert panel.is_running() and not w.act_train.isEnabled()
    assert w.docks["training_dock"].isVisible()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=60_000)
    assert panel.progress.format().startswith("Finished"), panel.error_label.text()
    x, _ = panel.plots.runs[panel.plots.current].curves["raw"].getData()
    assert x is not None and len(x) > 0
    assert w.act_train.isEnabled()


def test_closing_the_window_mid_run_stops_the_worker(qtbot, trained_window):
    w = trained_window(LONG)
    w.answers["save_changes"] = "discard"
    assert w.train()
    panel = w.training_panel
    qtbot.waitUntil(lambda: panel.progress.value() > 0, timeout=60_000)
    w.answers["stop_training"] = False
    w.close()
    assert w.isVisible() and panel.is_running()  # the user chose to keep training
    w.answers["stop_training"] = True
    w.close()
    assert not w.isVisible()
    assert panel.worker.is_finished() and not panel.is_running()


def test_dataset_mismatch_badges_the_input_block(qtbot, trained_window):
    w = trained_window(TINY)
    # CIFAR-sized input for a 1×28×28 dataset: a warning on the Input block (the model is valid).
    from cnnbuilder.core.commands import SetParam

    input_id = w.document.analysis.input_id
    assert w.document.push(SetParam(input_id, "shape", [3, 32, 32])) is None
    item = w.scene.nodes[input_id]
    assert item.state.warning and "1×28×28" in item.state.warning and not item.state.error
    assert not w.train()  # refused, with the reason in the panel
    assert "does not fit" in w.training_panel.error_label.text()
    w.document.undo_stack.undo()
    assert not w.scene.nodes[input_id].state.warning and not w.scene.nodes[input_id].badge.isVisible()

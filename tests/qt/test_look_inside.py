"""The Filters and Predict tabs of the Training panel (issue 11 §2-§4): kernels of the selected
convolution with their histogram, live while training; predictions and Grad-CAM / saliency for a
test sample, an opened or dropped file, with a run's, the live or a file's weights; bad files as
messages in the panel; the opacity slider re-blends without asking the worker again."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from cnnbuilder.core.commands import SetParam
from cnnbuilder.core.inspect.predict import build
from cnnbuilder.core.project import load_project
from cnnbuilder.core.training.checkpoint import export_weights
from tests.qt import test_training_panel as training_tests

LONG, wait_idle = training_tests.LONG, training_tests.wait_idle
make_panel = training_tests.make_panel  # the panel fixture, shut down after each test


def filters_tab(qtbot, panel, node):
    panel.show()
    panel.tabs.setCurrentWidget(panel.filters)
    before = panel.filters.frames
    panel.document.set_selection([node])
    return before


def test_filters_follow_the_selection_with_a_hint_for_other_blocks(qtbot, make_panel):
    panel = make_panel()
    filters_tab(qtbot, panel, "n2")  # conv1: 16 filters over 1 input channel, 5×5
    qtbot.waitUntil(lambda: panel.filters.grid is not None, timeout=60_000)
    g = panel.filters.grid
    assert g.tiles.shape == (16, 5, 5) and not g.rgb and "pair" in panel.filters.caption.text()
    assert int(g.hist_counts.sum()) == 16 * 25
    x, y = panel.filters.curve.getData()
    assert len(x) == len(g.hist_edges) and y.sum() == 400
    assert panel.filters.image.image.shape[2] == 3
    assert "untrained" in panel.filters.source.text()
    assert panel.filters.stack.currentWidget() is not panel.filters.hint

    panel.document.set_selection(["n3"])  # a ReLU: no kernels
    assert panel.filters.grid is None and panel.filters.stack.currentWidget() is panel.filters.hint
    assert "no kernels" in panel.filters.hint.text() and "Conv2d" in panel.filters.hint.text()

    panel.document.set_selection(["n5"])  # conv2: 32×16 pairs, too many: one mean tile per filter
    qtbot.waitUntil(lambda: panel.filters.grid is not None and panel.filters.grid.node_id == "n5", timeout=60_000)
    assert panel.filters.grid.tiles.shape == (32, 5, 5)
    assert "mean over its 16 input channels" in panel.filters.caption.text()
    panel.document.set_selection([])
    assert panel.filters.stack.currentWidget() is panel.filters.hint


def test_filters_refresh_while_training_with_the_live_weights(qtbot, make_panel):
    panel = make_panel(training=LONG)
    filters_tab(qtbot, panel, "n2")
    qtbot.waitUntil(lambda: panel.filters.frames > 0, timeout=60_000)
    untrained = panel.filters.grid.tiles.copy()
    assert panel.start()
    first = panel.filters.frames
    qtbot.waitUntil(lambda: panel.filters.frames >= first + 2, timeout=60_000)  # throttled, but live
    assert "live model at step" in panel.filters.source.text()
    assert not np.allclose(panel.filters.grid.tiles, untrained)  # the weights moved
    panel._stop()
    wait_idle(qtbot, panel)


def predict_tab(panel):
    panel.show()
    panel.tabs.setCurrentWidget(panel.predict)
    return panel.predict


def wait_result(qtbot, view, before):
    qtbot.waitUntil(lambda: view.frames > before or (view.result is None and view.message.text()
                                                      not in ("Computing…", "")), timeout=60_000)


def test_predict_a_test_sample_explain_it_and_reblend_without_recomputing(qtbot, make_panel):
    panel = make_panel()
    view = predict_tab(panel)
    assert not view.has_image() and "Open an image" in view.message.text()
    view.pick_sample(3)
    wait_result(qtbot, view, 0)
    r = view.result
    assert r is not None, view.message.text()
    assert r.display.shape == (28, 28, 3) and "test sample 3" in view.image_title.text()
    assert len(r.top) == 5 and [b.value() for _, b in view.bars] == sorted((b.value() for _, b in view.bars),
                                                                           reverse=True)
    assert view.bars[0][0].text() == r.top[0][0] and view.bars[0][1].format().endswith("%")
    assert r.method == "gradcam" and r.block == "n5"  # the last convolution by default
    assert "Grad-CAM" in view.map_note.text() and not view.picture.pixmap().isNull()
    assert view.target.count() == 11 and view.block.count() == 1 + len(r.blocks)
    assert view.sample_spin.maximum() == 119  # the test set's size is known now
    assert view.sample_spin.value() == 3
    frames = view.frames
    view.random_button.click()
    qtbot.waitUntil(lambda: view.frames > frames, timeout=60_000)
    assert f"test sample {view.sample_spin.value()} " in view.image_title.text()

    tag, frames, blends = panel._look_tag, view.frames, view.blends
    before = view.picture.pixmap().toImage()
    view.opacity.setValue(90)
    assert view.blends == blends + 1 and view.frames == frames and panel._look_tag == tag  # no request
    assert view.picture.pixmap().toImage() != before

    view.target.setCurrentIndex(view.target.findData(7))  # explain class 7 at conv1
    qtbot.waitUntil(lambda: view.frames > frames, timeout=60_000)
    assert view.result.target == 7
    frames = view.frames
    view.block.setCurrentIndex(view.block.findData("n2"))
    qtbot.waitUntil(lambda: view.frames > frames, timeout=60_000)
    assert view.result.block == "n2" and view.result.target == 7 and "conv1" in view.map_note.text()
    for method in ("saliency", "smoothgrad"):
        frames = view.frames
        view.method.setCurrentIndex(view.method.findData(method))
        qtbot.waitUntil(lambda f=frames: view.frames > f, timeout=60_000)
        assert view.result.method == method and view.result.heat.shape == (28, 28)


def test_open_drop_and_weights_files_with_clear_messages_for_bad_ones(qtbot, make_panel, tmp_path):
    panel = make_panel()
    view = predict_tab(panel)
    photo = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(photo)
    view.ask_image_path = lambda: str(photo)
    view.open_button.click()
    wait_result(qtbot, view, 0)
    assert view.result is not None, view.message.text()
    assert "resized from 80×60 to 28×28" in view.notes.text() and "converted from RGB to grayscale" in \
        view.notes.text()
    assert view.image_title.text() == "photo.jpg"

    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG but not really")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(junk))])
    panel.tabs.setCurrentWidget(panel.features)
    frames = view.frames
    drop = QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    panel.dropEvent(drop)  # dropped anywhere on the panel: the Predict tab opens it
    assert panel.tabs.currentWidget() is view and view.image_path == str(junk)
    qtbot.waitUntil(lambda: "not an image" in view.message.text(), timeout=60_000)
    assert str(junk) in view.message.text() and "Traceback" not in view.message.text()
    assert view.result is None and view.picture.pixmap().isNull() and view.frames == frames
    assert view.bars[0][0].text() == ""

    # Weights from a file: one exported from a model with known weights gives its prediction.
    model = build(panel.document.graph, seed=42)
    export_weights(model.model, panel.document.graph, tmp_path / "w")
    view.ask_weights_path = lambda: str(tmp_path / "w" / "model.pt")
    view.pick_sample(0)
    qtbot.waitUntil(lambda: view.result is not None, timeout=60_000)
    untrained_top, frames = view.result.top, view.frames
    view.weights_button.click()
    qtbot.waitUntil(lambda: view.frames > frames, timeout=60_000)
    assert "model.pt" in view.source.text() and view.run_weights_button.isVisible()
    assert view.result.top != untrained_top  # other weights, other probabilities
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"no weights here")
    view.ask_weights_path = lambda: str(bad)
    view.weights_button.click()
    qtbot.waitUntil(lambda: "bad.pt" in view.message.text(), timeout=60_000)
    assert view.result is None
    view.run_weights_button.click()  # back to the run's (here: untrained) weights
    qtbot.waitUntil(lambda: view.result is not None, timeout=60_000)
    assert "bad.pt" not in view.source.text() and not view.run_weights_button.isVisible()


def test_predict_with_the_live_model_then_the_recorded_run(qtbot, make_panel):
    panel = make_panel(training=LONG)
    view = predict_tab(panel)
    assert panel.start()
    qtbot.waitUntil(lambda: panel.progress.value() > 0, timeout=60_000)
    view.pick_sample(1)
    qtbot.waitUntil(lambda: view.result is not None, timeout=60_000)
    assert "live model at step" in view.source.text()
    panel.pause_button.click()  # a paused run still answers
    qtbot.waitUntil(lambda: panel._paused, timeout=60_000)
    frames = view.frames
    view.pick_sample(2)
    qtbot.waitUntil(lambda: view.frames > frames, timeout=30_000)
    assert "test sample 2" in view.image_title.text() and panel._paused
    panel._stop()
    wait_idle(qtbot, panel)
    qtbot.waitUntil(lambda: panel.runs_view.current() is not None, timeout=30_000)
    frames = view.frames
    view.refresh_button.click()
    qtbot.waitUntil(lambda: view.frames > frames, timeout=60_000)
    assert f"weights of {panel.runs_view.current().name}" in view.source.text()
    panel.document.set_project(load_project(training_tests.EXAMPLES / "mnist_cnn.json"))
    assert not view.has_image() and view.result is None and "Open an image" in view.message.text()


def test_a_broken_model_says_so_in_both_tabs(qtbot, make_panel):
    panel = make_panel()
    view = predict_tab(panel)
    panel.document.push(SetParam("n5", "kernel_size", 30))  # larger than its 14×14 input
    assert not panel.document.analysis.ok
    tag = panel._look_tag
    view.pick_sample(0)
    assert "Fix the model" in view.message.text() and panel._look_tag == tag  # nothing sent
    panel.tabs.setCurrentWidget(panel.filters)
    panel.document.set_selection(["n2"])
    assert "Fix the model" in panel.filters.hint.text()

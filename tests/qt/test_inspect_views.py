"""Mistakes gallery (click a confusion-matrix cell, "Most confident mistakes"), activation
sparklines in the Summary, and the augmentation preview beside the data settings (pytest-qt)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from cnnbuilder.core import runs
from cnnbuilder.core.training.events import Activations, Finished, TestImages
from cnnbuilder.core.training.inspect_run import GALLERY_LIMIT
from cnnbuilder.qt.summary_view import ACT_COL
from cnnbuilder.qt.theme import WARNING

from . import test_training_panel as training_tests
from .test_training_panel import TINY, wait_idle

make_panel = training_tests.make_panel  # the fixture: panels whose worker threads are joined after the test

pytestmark = pytest.mark.usefixtures("isolated_settings")


def click_cell(table, row, col):
    rect = table.visualRect(table.model().index(row, col))
    from PySide6.QtTest import QTest

    QTest.mouseClick(table.viewport(), Qt.LeftButton, Qt.NoModifier, rect.center())


def trained(qtbot, make_panel):
    panel = make_panel()
    panel.resize(1200, 900)
    panel.show()
    acts = []
    panel.activations.connect(acts.append)
    assert panel.start()
    wait_idle(qtbot, panel)
    assert panel.progress.format().startswith("Finished"), panel.error_label.text()
    return panel, acts


def test_mistakes_gallery_from_a_cell_and_the_most_confident(qtbot, make_panel):
    panel, acts = trained(qtbot, make_panel)
    ev = panel.evaluation
    panel.tabs.setCurrentWidget(ev)
    assert isinstance(ev._shown, runs.RunRecord) and ev._shown.predictions is not None  # the recorded run
    cm = np.array(ev._shown.confusion)
    i, j = np.unravel_index(np.argmax(cm - np.diag(np.diag(cm)) if (cm - np.diag(np.diag(cm))).any() else cm),
                            cm.shape)
    assert ev.mistakes_button.isEnabled() and ev.gallery.isHidden()
    click_cell(ev.matrix, int(i), int(j))
    qtbot.waitUntil(lambda: ev.gallery.count() > 0, timeout=20_000)
    assert ev.gallery.count() == min(GALLERY_LIMIT, cm[i, j]) and ev.gallery.isVisible()
    names = ev._shown.class_names
    item = ev.gallery.item(0)
    assert item.text().startswith(names[j]) and item.text().endswith("%") and not item.icon().isNull()
    assert f"true class {names[i]}" in item.toolTip()
    assert f"True class {names[i]}, predicted {names[j]}:" in ev.gallery_label.text()
    probs = [float(ev.gallery.item(k).text().split()[-1][:-1]) for k in range(ev.gallery.count())]
    assert probs == sorted(probs, reverse=True)
    # an empty cell says so; the precision/recall columns ask for nothing
    empty = np.argwhere(cm == 0)
    if len(empty):
        click_cell(ev.matrix, int(empty[0][0]), int(empty[0][1]))
        assert "No test images" in ev.gallery_label.text() and ev.gallery.count() == 0
    with qtbot.assertNotEmitted(ev.images_requested):
        click_cell(ev.matrix, 0, len(names) + 1)
    wrong = int(cm.sum() - np.trace(cm))
    qtbot.mouseClick(ev.mistakes_button, Qt.LeftButton)
    if wrong:
        qtbot.waitUntil(lambda: ev.gallery.count() == min(GALLERY_LIMIT, wrong), timeout=20_000)
        assert "most confident mistakes" in ev.gallery_label.text().lower()
    # activations went out during the run, and the Finished event kept what the gallery needs
    assert acts and all(isinstance(a, Activations) for a in acts) and acts[0].step == 0


def test_gallery_for_a_live_result_drops_stale_answers_and_explains_old_records(qtbot, make_panel):
    panel = make_panel()
    ev = panel.evaluation
    k = 2
    fin = Finished(1, 1, 10, 0.5, 0.5, np.array([[1, 1], [0, 2]]), np.array([1.0, 2 / 3]), np.array([0.5, 1.0]),
                   ("a", "b"), 1.0, {}, np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]),
                   np.array([0.9, 0.8, 0.7, 0.6], np.float32))
    ev.run_config = dict(TINY)
    ev.show_result(fin)
    asked = []
    ev.images_requested.connect(asked.append)
    ev.show_cell(0, 1)
    assert asked[-1].indices == (1,) and asked[-1].labels == (0,)
    ev.show_images(TestImages(asked[-1].tag - 1, np.array([1]), np.zeros((1, 1, 4, 4), np.uint8)))  # stale
    assert ev.gallery.count() == 0
    ev.show_images(TestImages(asked[-1].tag, np.array([1]), np.full((1, 1, 4, 4), 200, np.uint8)))
    assert ev.gallery.count() == 1 and ev.gallery.item(0).text() == "b 80%"
    ev.show_cell(1, 1)
    ev.show_images(TestImages(asked[-1].tag, np.array([3, 2]), np.zeros((0, 1, 1, 1), np.uint8),
                              "cannot show the test images: the data changed"))
    assert "data changed" in ev.gallery_label.text()
    # a run recorded before predictions were kept: a message, never a traceback
    old = runs.RunRecord("r", "run 1", runs.now_iso(), "p", "finished", dict(TINY), "", {}, {}, 1, 1, 1, 1.0,
                         0.5, 0.5, ("a", "b"), ((1, 1), (0, 2)), (1.0, 0.5), (0.5, 1.0))
    n = len(asked)
    ev.show_run(old, "old run")
    assert not ev.mistakes_button.isEnabled()
    ev.show_cell(0, 1)
    assert len(asked) == n and "no per-image predictions" in ev.gallery_label.text()
    assert k == len(old.class_names)


def test_summary_shows_activation_sparklines_and_warns_about_dead_units(qtbot, make_window):
    w = make_window("mnist_cnn", show=True)
    g = w.document.graph
    relu = next(n for n in g if n.type == "ReLU")
    conv = next(n for n in g if n.type == "Conv2d")
    panel = w.summary_panel
    model = panel.table.model()
    assert model.headerData(ACT_COL, Qt.Horizontal) == "Activations"
    row = model.row_of(relu.id)
    assert model.index(row, ACT_COL).data() is None and panel.activation_warning.isHidden()
    for step, dead in ((0, 0.1), (5, 0.4), (10, 0.7)):
        w.training_panel.activations.emit(Activations(3, step, 1, (conv.id, relu.id), np.array([0.1, 0.3], np.float32),
                                                      np.array([1.0, 0.5], np.float32),
                                                      np.array([np.nan, dead], np.float32)))
    assert model.index(row, ACT_COL).data() == "70% dead"
    assert model.index(row, ACT_COL).data(Qt.ForegroundRole).name() == WARNING
    assert model.index(model.row_of(conv.id), ACT_COL).data().startswith("μ")
    assert not panel.activation_warning.isHidden() and relu.label in panel.activation_warning.text()
    assert "70%" in panel.activation_warning.text()
    panel.table.viewport().grab()  # the sparkline delegate paints without error
    w.training_panel.activations.emit(Activations(4, 0, 0, (relu.id,), np.array([0.3], np.float32),
                                                  np.array([0.5], np.float32), np.array([0.2], np.float32)))
    assert model.index(row, ACT_COL).data() == "20% dead" and panel.activation_warning.isHidden()


def test_augment_preview_redraws_as_settings_change(qtbot, make_panel):
    panel = make_panel(training={**TINY, "rotation": 30.0})
    panel.show()
    prev = panel.augment_preview
    asked = []
    prev.requested.connect(asked.append)
    assert not prev.isChecked() and all(t.isHidden() for t in prev.tiles)  # off until asked: it loads data
    panel.settings_form.set_values(crop_padding=2)
    panel.settings_form.edited.emit()
    qtbot.wait(500)
    assert not asked
    prev.setChecked(True)
    qtbot.waitUntil(lambda: prev.tiles[15].pixmap() is not None and not prev.tiles[15].pixmap().isNull(),
                    timeout=20_000)
    assert asked[-1].config["rotation"] == 30.0 and "rotation ±30°" in prev.status.text()
    first = prev.tiles[0].pixmap().toImage()
    spin = panel.settings_form.fields["crop_padding"][0]
    spin.setValue(8)  # the user edits a setting: re-drawn after the debounce, in the worker
    qtbot.waitUntil(lambda: asked[-1].config["crop_padding"] == 8, timeout=5000)
    qtbot.waitUntil(lambda: "crop padding 8" in prev.status.text(), timeout=20_000)
    assert prev.tiles[0].pixmap().toImage() != first
    n = len(asked)
    qtbot.mouseClick(prev.shuffle, Qt.LeftButton)
    qtbot.waitUntil(lambda: len(asked) == n + 1, timeout=5000)
    assert asked[-1].seed != asked[-2].seed
    # a folder that does not exist: a message in the preview
    panel.settings_form.set_values(dataset="folder", data_root="/nonexistent/data")
    panel.settings_form.edited.emit()
    qtbot.waitUntil(lambda: "/nonexistent/data" in prev.status.text(), timeout=20_000)
    assert prev.status.text().startswith("no preview")
    QApplication.processEvents()

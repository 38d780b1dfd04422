"""The Design / Train workspaces (issue 9, section 2): in Train, at 1280×720 and at 1600×1000, all
four plots have room, a 10-class confusion matrix fits without scrolling, feature-map tiles fill
their view, no button text is cut; the canvas stays clickable; the switch has shortcuts, a menu
and a toolbar entry, loses no state and is remembered."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QAbstractButton, QApplication, QCheckBox, QPushButton, QTabBar, QToolButton, QWidget

from cnnbuilder.core.training.featuremaps import columns_for, tile
from cnnbuilder.core.training.synthetic import CLASSES

from .helpers import node_by_name

SIZES = [(1280, 720), (1600, 1000)]


def in_train(qtbot, make_window, size):
    w = make_window("mnist_cnn")
    w.resize(*size)
    qtbot.waitUntil(lambda: w.width() == size[0] and w.height() == size[1], timeout=3000)
    w.set_workspace("train")
    qtbot.wait(100)  # the dock layout and the canvas fit settle
    return w


def cut_texts(root) -> list[str]:
    """Visible buttons, check boxes and tabs whose text is wider than the room they have."""
    cut = []
    for b in root.findChildren(QAbstractButton):
        if not b.isVisible() or not b.text():
            continue
        if isinstance(b, QToolButton) and b.toolButtonStyle() == Qt.ToolButtonIconOnly:
            continue
        extra = 22 if isinstance(b, QCheckBox) else 8  # the indicator, or the frame's margins
        if b.fontMetrics().horizontalAdvance(b.text().replace("&", "")) + extra > b.width():
            cut.append(f"{type(b).__name__} {b.text()!r}: {b.width()} px")
    for bar in root.findChildren(QTabBar):
        if not bar.isVisible():
            continue
        for i in range(bar.count()):
            if bar.fontMetrics().horizontalAdvance(bar.tabText(i)) + 8 > bar.tabRect(i).width():
                cut.append(f"tab {bar.tabText(i)!r}: {bar.tabRect(i).width()} px")
    return cut


class FakeResult:
    """The fields of a Finished event that the evaluation shows: 10 shapes classes, 1 000 images."""

    def __init__(self):
        rng = np.random.default_rng(0)
        cm = np.diag(np.full(10, 90))
        for i in range(10):
            for _ in range(10):
                cm[i, rng.integers(10)] += 1
        cm[3, 5] += 40  # one class often mistaken for another: a strong red cell
        self.confusion = cm
        self.class_names = CLASSES
        self.precision = [float(cm[i, i] / cm[:, i].sum()) for i in range(10)]
        self.recall = [float(cm[i, i] / cm[i].sum()) for i in range(10)]
        self.test_acc, self.test_loss, self.epochs, self.step = 0.9, 0.3, 3, 255


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_train_workspace_gives_every_plot_room(qtbot, make_window, size):
    w = in_train(qtbot, make_window, size)
    panel = w.training_panel
    assert w.workspace == "train" and w.workspace_actions["train"].isChecked()
    assert w.docks["training_dock"].isVisible() and w.docks["training_settings_dock"].isVisible()
    assert not w.docks["palette_dock"].isVisible() and not w.docks["inspector_dock"].isVisible()
    assert w.view.isVisible() and w.view.width() >= 300 and w.view.height() >= 150  # the canvas stays
    assert panel.settings_scroll.window() is w and not panel.settings_placed_here()  # under the canvas
    assert panel.tabs.currentWidget() is panel.plots and panel.plots.view.isVisible()
    for plot in panel.plots.plots:
        r = plot.geometry()
        assert r.width() >= 280 and r.height() >= 160, (plot.titleLabel.text, r)
        assert plot.mapRectToScene(plot.boundingRect()).intersected(panel.plots.view.sceneRect()) == \
            plot.mapRectToScene(plot.boundingRect())  # inside the view: not clipped
    # The training panel never needs its own scroll bars (they mean something is cut or hidden).
    assert not w.training_scroll.horizontalScrollBar().isVisible()
    assert not w.training_scroll.verticalScrollBar().isVisible()
    assert not panel.settings_scroll.horizontalScrollBar().isVisible()  # the form fits its width; it scrolls down
    panel._paused = True  # "Resume" is the longer text of the Pause button
    panel._update_buttons()
    try:
        assert cut_texts(w) == []
        for tab in (panel.features, panel.evaluation, panel.runs_view):
            panel.tabs.setCurrentWidget(tab)
            assert cut_texts(w) == [], tab
    finally:
        panel._paused = False
        panel._update_buttons()


def test_resizing_in_train_keeps_the_room(qtbot, make_window):
    # QMainWindow gives a resize to the canvas; in Train the training area takes it instead.
    w = in_train(qtbot, make_window, (1600, 1000))
    column = w.view.width()
    w.resize(1280, 720)
    qtbot.waitUntil(lambda: w.width() == 1280, timeout=3000)
    qtbot.wait(50)
    assert abs(w.view.width() - column) <= 2 and w.view.height() >= 200
    for plot in w.training_panel.plots.plots:
        assert plot.geometry().width() >= 280 and plot.geometry().height() >= 160
    assert not w.training_scroll.verticalScrollBar().isVisible()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_design_workspace_cuts_no_text(qtbot, make_window, size):
    w = make_window("mnist_cnn")
    w.resize(*size)
    qtbot.waitUntil(lambda: w.width() == size[0], timeout=3000)
    assert w.workspace == "design" and w.docks["palette_dock"].isVisible()
    assert not w.docks["training_settings_dock"].isVisible() and w.training_panel.settings_placed_here()
    assert cut_texts(w) == []
    w.docks["training_dock"].raise_()
    qtbot.wait(50)
    assert cut_texts(w) == []


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_confusion_matrix_fits_without_scrolling(qtbot, make_window, size):
    w = in_train(qtbot, make_window, size)
    ev = w.training_panel.evaluation
    w.training_panel.tabs.setCurrentWidget(ev)
    result = FakeResult()
    ev.show_result(result)
    qtbot.wait(50)
    m = ev.matrix
    assert m.isVisible() and m.rowCount() == 10 and m.columnCount() == 13
    assert not m.horizontalScrollBar().isVisible() and not m.verticalScrollBar().isVisible()
    vp = m.viewport().rect()
    fm = m.fontMetrics()
    for i in range(10):
        for j in range(13):
            cell = m.visualItemRect(m.item(i, j))
            assert vp.contains(cell), (i, j, cell, vp)  # every cell, precision and recall included
            text = m.item(i, j).text()
            assert fm.horizontalAdvance(text) + 4 <= cell.width() and fm.height() <= cell.height(), (text, cell)
    head = m.horizontalHeader()
    assert head.sectionViewportPosition(12) + head.sectionSize(12) <= head.viewport().width()
    assert [m.horizontalHeaderItem(c).text() for c in (10, 11, 12)] == ["precision", "recall", "images"]
    hfm = head.fontMetrics()
    for j in range(10):  # class names fit their columns (cut with "…" where they must be)
        for line in m.horizontalHeaderItem(j).text().split("\n"):
            assert hfm.horizontalAdvance(line) <= head.sectionSize(j), (line, head.sectionSize(j))
    assert m.horizontalHeaderItem(6).text().startswith("horizo")  # "horizontal bars", on two lines
    # A heat map: the stronger a cell's share of its row, the further its colour from the plain base.
    base = m.palette().base().color()

    def strength(i, j) -> float:
        c = m.item(i, j).background().color()
        return abs(c.red() - base.red()) + abs(c.green() - base.green()) + abs(c.blue() - base.blue())

    diag = [strength(i, i) for i in range(10)]
    assert min(diag) > 100  # ~90 % right: strongly green
    assert 0 < strength(3, 5) < min(diag)  # 40 of 140 mistaken: a clear but weaker red
    weak = next((i, j) for i in range(10) for j in range(10) if i != j and 0 < result.confusion[i, j] <= 2)
    assert strength(*weak) < strength(3, 5)
    assert m.item(3, 5).background().color().red() > m.item(3, 5).background().color().green()
    assert m.item(0, 0).background().color().green() > m.item(0, 0).background().color().red()
    # The counts stay readable on their shade.
    for i, j in ((0, 0), (3, 5), weak):
        bg, fg = m.item(i, j).background().color(), m.item(i, j).foreground().color()
        assert abs(bg.lightness() - fg.lightness()) > 90, (i, j, bg.name(), fg.name())


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_feature_map_tiles_fill_their_view(qtbot, make_window, size):
    w = in_train(qtbot, make_window, size)
    panel = w.training_panel
    fv = panel.features
    panel.tabs.setCurrentWidget(fv)
    qtbot.wait(50)
    # Nothing selected: a written hint where the image would be, no coloured square.
    assert not w.document.selection
    assert fv.stack.currentWidget() is fv.hint and fv.hint.isVisible() and not fv.view.isVisible()
    assert "Click a block on the canvas" in fv.hint.text()
    maps = np.random.default_rng(1).normal(size=(16, 28, 28)).astype(np.float32)  # conv1 of the tutorial CNN

    def coverage() -> float:
        vp = fv.view.viewport().rect()
        shown = fv.view.mapFromScene(fv.image.sceneBoundingRect()).boundingRect().intersected(vp)
        return shown.width() * shown.height() / (vp.width() * vp.height())

    fv.show_maps(maps, 16, 0, "circle")
    assert fv.stack.currentWidget() is fv.view
    qtbot.waitUntil(lambda: coverage() > 0.6, timeout=3000)  # not a small square grid in an empty field
    assert fv.image.image.shape != tile(maps).shape  # laid out for the view, not as a square
    # The gaps and the empty slots after the last tile are see-through (the view's background), not
    # the colour map's darkest purple.
    fv.show_maps(maps[:13], 13, 0, "circle")
    qtbot.wait(50)
    mosaic, shown = fv.image.image, fv.image.qimage
    assert np.isnan(mosaic[0]).all() and np.isnan(mosaic[-2, -2])  # the frame and the empty last slot
    assert shown.pixelColor(0, 0).alpha() == 0 and shown.pixelColor(shown.width() - 2, shown.height() - 2).alpha() == 0
    assert shown.pixelColor(5, 5).alpha() == 255  # inside the first tile


def test_columns_for_fills_wide_tall_and_square_views():
    assert columns_for(16, 28, 28, 800, 200) == 8  # wide: two rows of eight
    assert columns_for(16, 28, 28, 200, 800) == 2  # tall: two columns
    assert columns_for(16, 28, 28, 500, 500) == 4
    assert columns_for(10, 1, 1, 300, 100) == 5  # a vector: two rows (ties keep fewer columns)
    assert columns_for(0, 28, 28, 100, 100) == 1 and columns_for(3, 28, 28, 0, 100) == 1
    for c in (1, 7, 64):  # never more columns than channels, and every channel gets a tile
        cols = columns_for(c, 5, 9, 640, 480)
        assert 1 <= cols <= c
        assert tile(np.ones((c, 5, 9), np.float32), cols=cols).shape[1] == cols * 10 + 1


def test_canvas_click_in_train_picks_the_feature_map_block(qtbot, make_window):
    w = in_train(qtbot, make_window, (1280, 720))
    panel = w.training_panel
    panel.tabs.setCurrentWidget(panel.features)
    conv = node_by_name(w.document.graph, "conv1")
    item = w.scene.nodes[conv]
    w.view.centerOn(item)
    qtbot.wait(20)
    at = w.view.mapFromScene(item.sceneBoundingRect().center())
    assert w.view.viewport().rect().contains(at)
    qtbot.mouseClick(w.view.viewport(), Qt.LeftButton, Qt.NoModifier, at)
    assert w.document.selection == [conv]
    assert panel._feature_node == conv and "conv1" in panel.features.title.text()
    assert "Computing" in panel.features.hint.text() or panel.features.maps is not None


def test_switching_keeps_state_and_is_remembered(qtbot, make_window):
    w = make_window("mnist_cnn")
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=3000)
    design, train = w.workspace_actions["design"], w.workspace_actions["train"]
    assert design.shortcut() == QKeySequence("Alt+1") and train.shortcut() == QKeySequence("Alt+2")
    view_menu = next(a.menu() for a in w.menuBar().actions() if a.text() == "&View")
    ws_menu = next(a.menu() for a in view_menu.actions() if a.text() == "&Workspace")
    assert ws_menu.actions() == [design, train]  # the menu shows the shortcuts beside them
    assert w.workspace_buttons["design"].isChecked() and w.workspace_buttons["train"].text() == "Train"
    conv = node_by_name(w.document.graph, "conv1")
    w.document.set_selection([conv])
    panel = w.training_panel
    panel.plots.add_stored("r1", "Run 1", {"step": [1, 2, 3], "loss": [2.0, 1.0, 0.5]}, checked=True)

    qtbot.keyClick(w, Qt.Key_2, Qt.AltModifier)
    assert w.workspace == "train" and w.workspace_buttons["train"].isChecked()
    assert not w.docks["palette_dock"].isVisible() and w.docks["training_dock"].isVisible()
    assert w.document.selection == [conv] and panel._feature_node == conv  # nothing lost
    assert len(panel.plots.runs["r1"].steps) == 3 and panel.plots.run_list.count() == 1
    qtbot.keyClick(w, Qt.Key_1, Qt.AltModifier)
    assert w.workspace == "design" and w.docks["palette_dock"].isVisible()
    assert w.docks["inspector_dock"].isVisible() and not w.docks["training_settings_dock"].isVisible()
    assert panel.settings_placed_here() and w.document.selection == [conv]
    train.trigger()  # the toolbar button and the menu item are this action
    assert w.workspace == "train"
    assert w.settings.value("workspace") == "train"
    w.close()

    again = make_window("mnist_cnn")  # a new start reads the workspace and its arrangement back
    assert again.workspace == "train" and again.workspace_actions["train"].isChecked()
    assert again.docks["training_dock"].isVisible() and again.docks["training_settings_dock"].isVisible()
    assert not again.docks["palette_dock"].isVisible()
    assert not again.training_panel.settings_placed_here()
    again.set_workspace("design")  # Design comes back as it was left
    assert again.docks["palette_dock"].isVisible() and again.training_panel.settings_placed_here()


def test_f5_switches_to_train(qtbot, make_window):
    w = make_window("mnist_cnn")
    w.document.set_selection([])
    from cnnbuilder.core.commands import SetParam

    # A model that cannot run: Train refuses, and the Train workspace shows why.
    w.document.push(SetParam(node_by_name(w.document.graph, "fc1"), "in_features", 7))
    assert not w.train()
    assert w.workspace == "train" and w.training_panel.error_label.isVisible()


def test_clipped_text_check_sees_a_cut_button(qtbot):
    # The check used above finds what it is meant to find.
    holder = QWidget()
    qtbot.addWidget(holder)
    b = QPushButton("Resume from checkpoint…", holder)
    b.setGeometry(0, 0, 60, 24)
    holder.show()
    assert cut_texts(holder) == ["QPushButton 'Resume from checkpoint…': 60 px"]
    b.resize(b.sizeHint())
    assert cut_texts(holder) == []

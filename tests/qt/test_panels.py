"""Palette, code preview, summary table, clipboard, themes."""

from __future__ import annotations

import json

from PySide6.QtCore import QMimeData, Qt
from PySide6.QtGui import QGuiApplication, QKeySequence
from PySide6.QtWidgets import QApplication, QPlainTextEdit, QTableWidget

from cnnbuilder.core.commands import SetParam
from cnnbuilder.qt.canvas.scene import CLIP_MIME
from cnnbuilder.qt.code_view import DEBOUNCE_MS, PythonHighlighter
from cnnbuilder.qt.summary_view import ID_ROLE
from cnnbuilder.qt.theme import light_palette

from .helpers import node_by_name


def test_palette_lists_blocks_by_category_and_filters(window):
    palette = window.palette_panel
    assert palette.tree.topLevelItemCount() == 7
    assert {"Conv2d", "MaxPool2d", "ReLU", "BatchNorm2d", "Linear", "Add", "Input"} <= set(palette.items)
    assert not palette.items["Conv2d"].icon(0).isNull()
    md = palette.tree.mimeData([palette.items["Conv2d"]])
    assert bytes(md.data("application/x-cnnbuilder-block")) == b"Conv2d"
    palette.search.setText("norm")
    assert set(palette.visible_types()) == {"BatchNorm2d", "BatchNorm1d", "GroupNorm", "LayerNorm", "LocalResponseNorm"}
    palette.search.setText("split")  # the blocks with several outputs sit in Merge, found by what they do
    assert {"Split", "Chunk"} <= set(palette.visible_types())
    assert palette.items["Split"].parent().text(0) == "Merge"
    palette.search.setText("zzz")
    assert palette.visible_types() == []
    palette.search.setText("")
    assert len(palette.visible_types()) == len(palette.items)


def test_double_click_appends_after_selected_block(window):
    g = window.document.graph
    fc1 = node_by_name(g, "fc1")
    window.document.set_selection([fc1])
    window.palette_panel.tree.itemActivated.emit(window.palette_panel.items["Softmax"], 0)
    new = window.document.selection[0]
    assert g.node(new).type == "Softmax" and g.inputs(new) == [fc1]
    assert g.node(new).pos[1] > g.node(fc1).pos[1]  # placed below
    assert window.scene.nodes[new].state.shape == "10"
    # Enter in the search field adds the best match after the new selection.
    window.palette_panel.search.setText("relu")
    window.palette_panel.search.returnPressed.emit()
    newer = window.document.selection[0]
    assert g.node(newer).type == "ReLU" and g.inputs(newer) == [new]
    window.document.undo_stack.undo()
    window.document.undo_stack.undo()
    assert len(g) == 9


def test_code_preview_is_debounced_and_highlights_the_selection(window, qtbot):
    code = window.code_panel
    assert "nn.Linear(1568, 10)" in code.editor.toPlainText()
    fc1 = node_by_name(window.document.graph, "fc1")
    window.document.push(SetParam(fc1, "out_features", 5))
    assert code.timer.isActive() and "nn.Linear(1568, 10)" in code.editor.toPlainText()
    qtbot.waitUntil(lambda: "nn.Linear(1568, 5)" in code.editor.toPlainText(), timeout=10 * DEBOUNCE_MS)
    window.document.set_selection([fc1])
    lines = code.generated.lines_of[fc1]
    assert code.highlighted_lines() == lines
    assert "nn.Linear(1568, 5)" in code.editor.document().findBlockByNumber(lines[0] - 1).text()
    assert code.editor.isReadOnly()
    code.copy()
    assert QGuiApplication.clipboard().text() == code.editor.toPlainText()


def test_code_preview_shows_problems_instead_of_code(window):
    code = window.code_panel
    g = window.document.graph
    conv2 = node_by_name(g, "conv2")
    good = code.editor.toPlainText()
    window.document.push(SetParam(conv2, "kernel_size", 30))
    code.refresh()
    assert not code.banner.isHidden()
    assert "conv2" in code.banner.text() and "kernel" in code.banner.text()
    assert code.code() is None and not code.export_button.isEnabled()
    assert code.editor.toPlainText() == good  # the last good code stays, greyed
    code._jump(f"node:{conv2}")
    assert window.document.selection == [conv2]
    window.document.undo_stack.undo()
    code.refresh()
    assert code.banner.isHidden() and code.code() == good


def test_summary_table_rows_totals_and_selection(window):
    panel = window.summary_panel
    model = panel.model
    g = window.document.graph
    assert model.rowCount() == len(g) + 1
    assert [model.data(model.index(1, c)) for c in range(6)] == ["conv1", "Conv2d", "16×28×28", "416", "314 k",
                                                                 "49 KiB"]
    total = model.rowCount() - 1
    assert model.data(model.index(total, 0)) == "Total"
    assert model.data(model.index(total, 3)) == "28,938"
    conv2 = node_by_name(g, "conv2")
    row = model.row_of(conv2)
    panel.table.selectRow(row)
    assert window.document.selection == [conv2]
    assert window.scene.nodes[conv2].isSelected()
    assert window.inspector.node_id == conv2
    # Selecting on the canvas selects the row.
    fc1 = node_by_name(g, "fc1")
    window.document.set_selection([fc1])
    assert [i.row() for i in panel.table.selectionModel().selectedRows()] == [model.row_of(fc1)]


def test_summary_problems_list_jumps_to_the_block(window):
    panel = window.summary_panel
    g = window.document.graph
    conv2 = node_by_name(g, "conv2")
    assert panel.problems.isHidden() and "No problems" in panel.problems_label.text()
    window.document.push(SetParam(conv2, "kernel_size", 30))
    assert not panel.problems.isHidden() and panel.problems.count() == 1  # waiting blocks are not listed
    item = panel.problems.item(0)
    assert item.text().startswith("conv2 (Conv2d):")
    panel.problems.itemClicked.emit(item)
    assert window.document.selection == [conv2]
    row = panel.model.row_of(conv2)
    assert panel.model.data(panel.model.index(row, 2)) == "—"
    assert "kernel" in panel.model.data(panel.model.index(row, 2), Qt.ToolTipRole).lower()
    assert panel.model.data(panel.model.index(row, 0), ID_ROLE) == conv2
    assert "✗ 1 error" in window.totals_label.text() and "valid" not in window.totals_label.text()


def assert_no_overlaps(g):
    from cnnbuilder.qt.canvas.items import NODE_H, NODE_W

    pos = [n.pos for n in g]
    for i, (x, y) in enumerate(pos):
        for px, py in pos[i + 1:]:
            assert abs(px - x) >= NODE_W or abs(py - y) >= NODE_H, f"blocks at {(x, y)} and {(px, py)} overlap"


def test_copy_paste_and_duplicate_through_the_clipboard(window):
    g = window.document.graph
    conv1, relu1 = node_by_name(g, "conv1"), node_by_name(g, "relu1")
    window.document.set_selection([conv1, relu1])
    assert window.edit_actions.copy()
    md = QGuiApplication.clipboard().mimeData()
    clip = json.loads(bytes(md.data(CLIP_MIME)).decode())
    assert [n["type"] for n in clip["nodes"]] == ["Conv2d", "ReLU"] and clip["edges"] == [[conv1, relu1]]
    new = window.edit_actions.paste()
    assert len(new) == 2 and len(g) == 11
    assert g.inputs(new[1]) == [new[0]]  # the edge between the copies came along
    assert g.node(new[0]).params == g.node(conv1).params
    # The copies keep their layout relative to each other, near the view's centre, on free canvas.
    a, b = g.node(new[0]).pos, g.node(new[1]).pos
    assert (b[0] - a[0], b[1] - a[1]) == (g.node(relu1).pos[0] - g.node(conv1).pos[0],
                                          g.node(relu1).pos[1] - g.node(conv1).pos[1])
    assert_no_overlaps(g)
    assert window.document.selection == new
    again = window.edit_actions.paste()  # a second paste goes beside the first, never on it
    assert g.node(again[0]).pos != a
    assert_no_overlaps(g)
    window.document.set_selection([relu1])
    dup = window.edit_actions.duplicate()
    assert len(dup) == 1 and g.node(dup[0]).type == "ReLU"
    assert_no_overlaps(g)
    assert window.document.undo_stack.undoText() == "Duplicate"
    # Cut removes the originals; pasting plain JSON text works too.
    window.document.set_selection([dup[0]])
    assert window.edit_actions.cut() and dup[0] not in g
    text_clip = QMimeData()
    text_clip.setText(json.dumps({"nodes": [{"id": "a", "type": "Tanh", "params": {}, "pos": [0, 0]}],
                                  "edges": []}))
    QGuiApplication.clipboard().setMimeData(text_clip)
    pasted = window.edit_actions.paste()
    assert g.node(pasted[0]).type == "Tanh"
    QGuiApplication.clipboard().setText("not blocks")
    assert window.edit_actions.paste() == [] and "no cnnbuilder blocks" in window.statusBar().currentMessage()


def test_keyboard_shortcuts_are_standard(window):
    assert QKeySequence(QKeySequence.Undo) in window.act_undo.shortcuts()
    assert QKeySequence("Ctrl+Y") in window.act_redo.shortcuts()
    assert QKeySequence("Ctrl+Shift+Z") in window.act_redo.shortcuts()
    assert window.act_fit.shortcut() == QKeySequence("Ctrl+0")
    assert window.act_zoom_reset.shortcut() == QKeySequence("Ctrl+1")
    assert window.act_duplicate.shortcut() == QKeySequence("Ctrl+D")
    assert QKeySequence(QKeySequence.Delete) in window.act_delete.shortcuts()
    window.show_shortcuts()
    table = window.shortcuts_dialog.findChild(QTableWidget)
    rows = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
    assert rows["Fit to View"] == "Ctrl+0" and rows["Auto-Layout"] == "Ctrl+L" and "Pan" in rows
    window.shortcuts_dialog.close()


def test_dark_theme_restyles_canvas_and_code(window, qtbot):
    # One theme test per session: a second one in the same process does not see the palette come back.
    app = QApplication.instance()
    before = window.scene.colors.background.name()
    icon_before = window.act_undo.icon().cacheKey()
    conv = node_by_name(window.document.graph, "conv1")
    window.document.set_selection([conv])
    window.document.set_selection([])  # the form and its labels are deleted
    qtbot.wait(10)
    window.set_theme("dark")  # raised "Internal C++ object (QLabel) already deleted" (issue 9)
    try:
        assert window.act_undo.icon().cacheKey() != icon_before  # icons follow the new theme
        window.document.set_selection([conv])  # a form built in the dark theme
        assert window.scene.colors.background.lightness() < 80
        assert window.scene.colors.background.name() != before
        assert window.code_panel.highlighter.formats["kw"].foreground().color().name() == "#ff7b72"
        # The training plots, feature maps and confusion-matrix image follow (issue 9): a dark
        # background, light axes, titles and legend text.
        assert plot_looks(window) == ("dark", "light", "light", "light")
        # The fit banner, hidden during the switch, shows its warnings in the dark theme's ink.
        banner = window.training_panel.fit_frame
        window.document.set_training({"dataset": "cifar10"})
        window.docks["training_dock"].show()
        window.docks["training_dock"].raise_()
        qtbot.waitUntil(lambda: banner.isVisible())
        assert banner.label.palette().color(banner.label.foregroundRole()).lightness() > 180
    finally:
        # A palette change from outside (the system switching back) restyles the canvas too.
        app.setPalette(light_palette())
        window.settings.setValue("theme", "system")
    qtbot.waitUntil(lambda: window.scene.colors.background.name() == before)
    assert plot_looks(window) == ("light", "dark", "dark", "dark")


def plot_looks(window) -> tuple[str, str, str, str]:
    """(background, axis text, title, legend text) of the training views, each "dark" or "light"."""
    from PySide6.QtGui import QColor

    panel = window.training_panel
    plots = panel.plots
    grounds = {plots.view.backgroundBrush().color().lightness(),
               panel.features.view.backgroundBrush().color().lightness(),
               panel.evaluation.image_view.backgroundBrush().color().lightness()}
    axes = {p.getAxis(name).textPen().color().lightness() for p in plots.plots for name in ("left", "bottom")}
    titles = {QColor(p.titleLabel.opts["color"]).lightness() for p in plots.plots}
    legends = {label.opts["color"].lightness() if isinstance(label.opts["color"], QColor)
               else QColor(label.opts["color"]).lightness() for lg in plots.legends for _s, label in lg.items}

    def kind(values: set) -> str:
        return "dark" if max(values) < 100 else "light" if min(values) > 150 else f"mixed {sorted(values)}"

    return kind(grounds), kind(axes), kind(titles), kind(legends)


def test_python_highlighter_tokens(qtbot):
    editor = QPlainTextEdit()  # as in the Code panel: the editor's layout holds the formats
    qtbot.addWidget(editor)
    doc = editor.document()
    hl = PythonHighlighter(doc)
    editor.setPlainText('"""Title\nstill the docstring"""\nx = "a # b"  # comment\n'
                     "def forward(self):\n    return nn.Conv2d(3, 16)  # 16×28×28\n")
    colour = {k: f.foreground().color().name() for k, f in hl.formats.items()}

    def spans(line: int) -> dict[str, str]:
        block = doc.findBlockByNumber(line)
        text = block.text()
        return {text[r.start:r.start + r.length]: r.format.foreground().color().name()
                for r in block.layout().formats()}

    assert spans(0) == {'"""Title': colour["doc"]}
    assert spans(1) == {'still the docstring"""': colour["doc"]}
    assert spans(2) == {'"a # b"': colour["str"], "# comment": colour["com"]}  # no comment inside strings
    assert spans(3) == {"def": colour["kw"], "forward": colour["def"], "self": colour["self"]}
    assert spans(4) == {"return": colour["kw"], "nn.Conv2d": colour["nn"], "3": colour["num"], "16": colour["num"],
                        "# 16×28×28": colour["com"]}


def test_first_start_gives_the_palette_room(qtbot, make_window):
    # No saved layout: the default dock sizes apply once the window is shown (before that Qt
    # squeezes the palette to its minimum width, cutting the block names).
    # The offscreen test screen is 800×800, so the window is 760 px wide; before the fix the palette
    # got its 82 px minimum there (the Training panel's width squeezed it).
    w = make_window("mnist_cnn")
    qtbot.waitUntil(lambda: w.docks["palette_dock"].width() >= 140, timeout=3000)
    assert w.docks["inspector_dock"].width() >= 300
    assert w.docks["training_dock"].minimumSizeHint().width() < 200  # it scrolls instead of squeezing

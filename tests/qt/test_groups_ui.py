"""Collapsible groups on the canvas (issue 12 §4): Ctrl+G and its refusals, the collapsed block
(ports, shape, parameters, error badge), opening a group and the breadcrumb back, adding and
connecting inside and across groups, moving and deleting groups, undo of all of it, save/load,
selection from the summary table, and a random sequence that keeps the canvas equal to the model."""

from __future__ import annotations

import json
import random

import shiboken6
from hypothesis import given
from hypothesis import strategies as st
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QGuiApplication, QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMenu

from cnnbuilder.core.codegen import generate
from cnnbuilder.core.commands import AddNode, Connect, Disconnect, GroupBlocks, Macro, Move, SetParam
from cnnbuilder.core.graph import clean_name
from cnnbuilder.core.groups import group_entry, group_info
from cnnbuilder.core.project import load_project
from cnnbuilder.qt import main_window
from cnnbuilder.qt.canvas.items import NODE_H, NODE_W, EdgeItem, GroupItem, StubItem
from cnnbuilder.qt.canvas.scene import CLIP_MIME
from tests.fuzz import fuzz_settings

from .helpers import EXAMPLES, drop_block, mouse_drag, node_by_name, send_mouse

BLOCK1 = ["block1_conv1", "block1_bn1", "block1_relu1", "block1_conv2", "block1_bn2", "block1_add", "block1_out"]
BLOCK2 = ["block2_conv1", "block2_bn1", "block2_relu1", "block2_conv2", "block2_bn2", "block2_down", "block2_add",
          "block2_out"]


def ids(graph, names):
    return [node_by_name(graph, n) for n in names]


def shortcut(window, key, modifiers=Qt.NoModifier) -> None:
    """A key press as a user makes it: the window's actions' shortcuts need it to be active."""
    window.activateWindow()
    assert QTest.qWaitForWindowActive(window)
    window.view.setFocus()
    QTest.keyClick(window.view.viewport(), key, modifiers)


def group_by_keys(window, names) -> str:
    """Select the blocks on the canvas and press Ctrl+G; returns the new group's id."""
    doc = window.document
    doc.set_selection(ids(doc.graph, names))
    before = {g.id for g in doc.graph.groups}
    shortcut(window, Qt.Key_G, Qt.ControlModifier)
    made = {g.id for g in doc.graph.groups} - before
    assert len(made) == 1, window.statusBar().currentMessage()
    return made.pop()


def assert_canvas_matches(window) -> None:
    """What the canvas shows is exactly the scope's members, and every edge of the graph whose
    ends are in view (or come from or go to outside the open group) is drawn, between the right items."""
    scene, g = window.scene, window.document.graph
    nodes, groups = g.members(scene.scope)
    assert sorted(scene.nodes) == sorted(nodes)
    assert sorted(scene.groups) == sorted(groups)
    assert {it.node_id for it in scene.items() if type(it).__name__ == "NodeItem"} == set(nodes)
    assert {it.group_id for it in scene.items() if isinstance(it, GroupItem)} == set(groups)
    expected = set()
    for src, dst in g.edges:
        a, b = g.scope_of(src, scene.scope), g.scope_of(dst, scene.scope)
        if a != b:
            expected.add((src, dst))
            edge = scene.edges[(src, dst)]
            for end, seen in ((a, edge.src), (b, edge.dst)):
                if end is None:
                    assert isinstance(seen, StubItem)
                elif end in scene.groups:
                    assert seen is scene.groups[end]
                else:
                    assert seen is scene.nodes[end]
    assert set(scene.edges) == expected
    for gid, item in scene.groups.items():  # the canvas shows the core's figures, current ones
        ins, outs = g.group_interface(gid)
        info = window.document.group_info[gid]
        assert (info.inputs, info.outputs, info.blocks) == (ins, outs, len(g.group_nodes(gid)))
        assert item.state.label == g.group(gid).name and item.state.error == info.error(g)
        assert len(item.in_ports) == max(1, len(ins)) and len(item.out_ports) == max(1, len(outs))
    crumbs = [name for _, name in scene.scope_path()]
    assert window.breadcrumb.texts() == crumbs


# -- grouping ---------------------------------------------------------------------------
def test_ctrl_g_groups_the_selection_and_undo_redo_repaint_the_canvas(make_window):
    window = make_window("resnet_small")
    doc, scene = window.document, window.scene
    g = doc.graph
    inside = ids(g, BLOCK1)
    gid = group_by_keys(window, BLOCK1)
    assert all(g.node(n).group == gid for n in inside)
    assert not set(inside) & set(scene.nodes) and gid in scene.groups
    assert scene.groups[gid].isSelected()
    assert doc.undo_stack.undoText() == "Group"
    assert window.breadcrumb.isVisible() and window.breadcrumb.texts() == ["Model"]
    assert_canvas_matches(window)
    doc.undo_stack.undo()
    assert not g.groups and set(inside) <= set(scene.nodes) and not scene.groups
    assert_canvas_matches(window)
    doc.undo_stack.redo()
    assert [grp.id for grp in g.groups] == [gid] and gid in scene.groups
    assert_canvas_matches(window)


def test_grouping_refusals_show_the_cores_reason_in_the_status_bar(make_window):
    window = make_window("resnet_small")
    doc = window.document
    g = doc.graph
    count = doc.undo_stack.count()
    # conv1 and block1_conv1 without the blocks between them: a path leaves the selection and comes back.
    doc.set_selection(ids(g, ["conv1", "block1_conv1"]))
    shortcut(window, Qt.Key_G, Qt.ControlModifier)
    message = window.statusBar().currentMessage()
    assert message.startswith("Cannot group:") and "select those blocks too" in message
    assert "Traceback" not in message
    # The Input block stays at the top level.
    doc.set_selection(ids(g, ["input", "conv1"]))
    assert window.scene.group_selection() is None
    assert "Input block stays at the top level" in window.statusBar().currentMessage()
    # Nothing selected: the action is disabled, and the scene says what to do.
    doc.set_selection([])
    assert not window.edit_actions.group_action.isEnabled()
    assert window.scene.group_selection() is None
    assert "select the blocks to group" in window.statusBar().currentMessage()
    assert not g.groups and doc.undo_stack.count() == count


def test_collapsed_group_shows_ports_shape_params_and_an_error_badge(make_window):
    window = make_window("resnet_small")
    doc, scene = window.document, window.scene
    g = doc.graph
    gid = group_by_keys(window, BLOCK2)
    item = scene.groups[gid]
    a = doc.analysis
    params = sum(a.nodes[n].stats.params for n in g.group_nodes(gid))
    assert params > 0
    assert item.state.summary == "8 blocks"
    assert item.state.shape == "32×16×16"  # block2_out's output
    assert item.state.params == f"{params / 1e3:.3g}k params"
    # One input (block1_out, read by block2_conv1 and block2_down), one output (block2_out).
    assert len(item.in_ports) == 1 and len(item.out_ports) == 1
    assert item.state.in_tips == ("from block1_out",)
    out1, gap = node_by_name(g, "block1_out"), node_by_name(g, "gap1")
    for key in ((out1, node_by_name(g, "block2_conv1")), (out1, node_by_name(g, "block2_down")),
                (node_by_name(g, "block2_out"), gap)):
        assert key in scene.edges
    assert scene.edges[(out1, node_by_name(g, "block2_conv1"))].dst is item
    # block1_out feeds two blocks inside: one line into the group's input stands for both, and
    # deleting it removes both.
    line = scene.edges[(out1, node_by_name(g, "block2_conv1"))]
    assert scene.edges[(out1, node_by_name(g, "block2_down"))] is line and len(line.keys) == 2
    assert sum(isinstance(it, EdgeItem) for it in scene.items()) == len({id(e) for e in scene.edges.values()})
    scene.clearSelection()
    line.setSelected(True)
    assert scene.delete_selection() and g.outputs(out1) == []
    assert_canvas_matches(window)
    doc.undo_stack.undo()
    item = scene.groups[gid]
    assert len(g.outputs(out1)) == 2
    assert not item.badge.isVisible()
    # A mistake inside: the collapsed block turns red and says which block fails.
    doc.push(SetParam(node_by_name(g, "block2_conv2"), "out_channels", 24))
    assert item.badge.isVisible()
    assert item.state.error and item.state.error.startswith("block2_add")
    assert "block2_add" in item.badge.toolTip() or "Error inside" in item.badge.toolTip()
    doc.undo_stack.undo()
    assert not item.badge.isVisible() and item.state.shape == "32×16×16"


def test_double_click_opens_a_group_and_the_breadcrumb_goes_back(make_window):
    window = make_window("resnet_small")
    scene, view, g = window.scene, window.view, window.document.graph
    outer = group_by_keys(window, BLOCK2)
    window.scene.set_scope(outer)
    inner = group_by_keys(window, ["block2_conv1", "block2_bn1", "block2_relu1"])
    scene.set_scope(None)
    view.fit()
    item = scene.groups[outer]
    at = view.mapFromScene(item.pos() + QPointF(NODE_W / 2, NODE_H / 2))
    send_mouse(view.viewport(), QMouseEvent.MouseButtonPress, at, Qt.LeftButton, Qt.LeftButton)
    send_mouse(view.viewport(), QMouseEvent.MouseButtonRelease, at, Qt.LeftButton, Qt.NoButton)
    send_mouse(view.viewport(), QMouseEvent.MouseButtonDblClick, at, Qt.LeftButton, Qt.LeftButton)
    send_mouse(view.viewport(), QMouseEvent.MouseButtonRelease, at, Qt.LeftButton, Qt.NoButton)
    assert scene.scope == outer
    assert window.breadcrumb.texts() == ["Model", g.group(outer).name]
    # Opening fits the view to the group's contents: all of them are in view.
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    assert visible.contains(scene.blocks_rect())
    # Values from and to outside are read-only stubs.
    assert {s.text for s in scene.stubs.values()} == {"from block1_out", "to gap1"}
    assert not any(s.flags() & s.GraphicsItemFlag.ItemIsMovable for s in scene.stubs.values())
    assert_canvas_matches(window)
    scene.set_scope(inner)
    assert window.breadcrumb.texts() == ["Model", g.group(outer).name, g.group(inner).name]
    assert_canvas_matches(window)
    window.breadcrumb.buttons[1].click()
    assert scene.scope == outer
    shortcut(window, Qt.Key_Up, Qt.AltModifier)
    assert scene.scope is None and scene.groups[outer].isSelected()  # where we came from
    scene.set_scope(inner)
    window.document.set_selection([])
    scene.clearSelection()
    shortcut(window, Qt.Key_Backspace)  # nothing selected: Backspace goes up, deletes nothing
    assert scene.scope == outer and window.document.undo_stack.count() == 2
    assert_canvas_matches(window)


def test_blocks_added_while_a_group_is_open_land_in_it(make_window):
    window = make_window("resnet_small")
    doc, scene = window.document, window.scene
    g = doc.graph
    gid = group_by_keys(window, BLOCK1)
    scene.set_scope(gid)
    r = scene.blocks_rect()
    at = QPointF(r.right() + 300, r.top() + 100)
    window.view.centerOn(at)
    drop_block(window.view, "Dropout", at)  # palette drag and drop
    dropped = doc.selection[0]
    assert g.node(dropped).group == gid and dropped in scene.nodes
    appended = window.edit_actions.append_block("ReLU")  # palette double-click: below the selection
    assert g.node(appended).group == gid and g.inputs(appended) == [dropped]
    doc.set_selection([dropped, appended])
    copies = window.edit_actions.duplicate()
    assert copies and all(g.node(n).group == gid for n in copies)
    assert window.edit_actions.copy()
    pasted = window.edit_actions.paste()
    assert pasted and all(g.node(n).group == gid and n in scene.nodes for n in pasted)
    # An edge inside the group: a block dropped on it lands in the group too.
    bn1, relu1 = ids(g, ["block1_bn1", "block1_relu1"])
    mid = scene.edges[(bn1, relu1)]._path.pointAtPercent(0.5)
    window.view.centerOn(mid)
    drop_block(window.view, "Dropout2d", mid)
    inserted = doc.selection[0]
    assert g.node(inserted).group == gid and g.inputs(inserted) == [bn1]
    # The Input block cannot go inside: the core's reason, no block added.
    n = len(g)
    window.view.centerOn(at + QPointF(0, 400))
    drop_block(window.view, "Input", at + QPointF(0, 400))
    assert len(g) == n and "top level" in window.statusBar().currentMessage()
    assert_canvas_matches(window)
    scene.set_scope(None)
    assert scene.groups[gid].state.summary == f"{len(g.group_nodes(gid))} blocks"
    assert_canvas_matches(window)


def test_connect_from_and_to_a_collapsed_group(make_window):
    window = make_window("resnet_small")
    doc, scene, view = window.document, window.scene, window.view
    g = doc.graph
    gid = group_by_keys(window, BLOCK1)
    # A new block at the top level, fed from the collapsed group's output: the block inside
    # that produces it (block1_out) connects.
    r = scene.blocks_rect()
    doc.push(AddNode("BatchNorm2d", pos=(r.right() + 200, scene.groups[gid].y() + 160), node_id="extra"))
    view.fit()
    mouse_drag(view, scene.groups[gid].out_ports[0].scenePos(), scene.nodes["extra"].in_port.scenePos())
    assert g.inputs("extra") == [node_by_name(g, "block1_out")]
    assert scene.edges[(node_by_name(g, "block1_out"), "extra")].src is scene.groups[gid]
    assert g.node("extra").group is None
    # Dropped on the group's input: the first block inside that still takes an input is
    # block1_add (Add takes many), so relu1 -> block1_add would be a second path; the core decides.
    assert group_entry(g, gid) == node_by_name(g, "block1_add")
    # A group whose blocks all have their inputs: refused with a clear message.
    doc.push(GroupBlocks(ids(g, ["block2_conv1", "block2_bn1"]), name="pair"))
    pair = next(grp.id for grp in g.groups if grp.name == "pair")
    count = len(g.edges)
    view.fit()
    mouse_drag(view, scene.nodes["extra"].out_port.scenePos(), scene.groups[pair].in_ports[0].scenePos())
    assert len(g.edges) == count
    assert "open the group to choose the block inside" in window.statusBar().currentMessage()
    # A connection that would leave a group and come back: the core's message, nothing changes.
    doc.push(AddNode("ReLU", pos=(r.right() + 400, 0.0), node_id="side"))
    assert scene.request_connect(node_by_name(g, "block1_conv1"), "side") is None  # leaves block1
    count = len(g.edges)
    problem = scene.request_connect("side", node_by_name(g, "block1_add"))
    assert problem is not None and "back into it" in problem and "Traceback" not in problem
    assert window.statusBar().currentMessage() == problem and len(g.edges) == count
    assert_canvas_matches(window)


def test_moving_and_deleting_a_group_are_undoable(make_window):
    window = make_window("resnet_small")
    doc, scene, view = window.document, window.scene, window.view
    g = doc.graph
    gid = group_by_keys(window, BLOCK1)
    inside = g.group_nodes(gid)
    view.zoom_reset()
    item = scene.groups[gid]
    view.centerOn(item)
    before = g.group(gid).pos
    start = item.pos() + QPointF(NODE_W / 2, NODE_H / 2)
    mouse_drag(view, start, start + QPointF(150, 30), steps=6)
    after = g.group(gid).pos
    assert abs(after[0] - before[0] - 150) < 2 and abs(after[1] - before[1] - 30) < 2
    assert doc.undo_stack.undoText() == "Move"
    doc.undo_stack.undo()
    assert g.group(gid).pos == before and item.pos() == QPointF(*before)
    # Arrow keys nudge a selected group too.
    scene.select_group(gid)
    QTest.keyClick(view.viewport(), Qt.Key_Right)
    assert g.group(gid).pos == (before[0] + 10, before[1]) and item.pos() == QPointF(before[0] + 10, before[1])
    doc.undo_stack.undo()
    # Delete the selected group: its blocks go, in one undo step, and come back with undo.
    scene.select_group(gid)
    n_nodes, n_edges = len(g), len(g.edges)
    shortcut(window, Qt.Key_Delete)
    assert not g.groups and not set(inside) & {n.id for n in g}
    assert len(g) == n_nodes - len(inside)
    assert_canvas_matches(window)
    doc.undo_stack.undo()
    assert [grp.id for grp in g.groups] == [gid] and sorted(g.group_nodes(gid)) == sorted(inside)
    assert len(g) == n_nodes and len(g.edges) == n_edges
    assert_canvas_matches(window)


def test_ungroup_and_rename(make_window):
    window = make_window("resnet_small")
    doc, scene = window.document, window.scene
    g = doc.graph
    gid = group_by_keys(window, BLOCK1)
    # The inspector shows the selected group; renaming there is one undo step.
    assert window.inspector.group_id == gid
    assert "7</b> blocks" in window.inspector.group_info.text()
    window.inspector.group_name.setText("BasicBlock 0")
    window.inspector.group_name.editingFinished.emit()
    assert g.group(gid).name == "BasicBlock 0" and scene.groups[gid].state.label == "BasicBlock 0"
    doc.undo_stack.undo()
    assert g.group(gid).name != "BasicBlock 0"
    scene.select_group(gid)
    shortcut(window, Qt.Key_G, Qt.ControlModifier | Qt.ShiftModifier)
    assert not g.groups and not scene.groups
    assert set(ids(g, BLOCK1)) <= set(scene.nodes)
    assert set(doc.selection) == set(ids(g, BLOCK1))  # the blocks that were inside are selected
    doc.undo_stack.undo()
    assert [grp.id for grp in g.groups] == [gid]
    assert_canvas_matches(window)


def test_undoing_the_group_while_inside_it_goes_back_to_the_top(make_window):
    window = make_window("resnet_small")
    doc, scene = window.document, window.scene
    outer = group_by_keys(window, BLOCK2)
    scene.set_scope(outer)
    inner = group_by_keys(window, ["block2_conv1", "block2_bn1"])
    scene.set_scope(inner)
    doc.undo_stack.undo()  # the inner group goes: its parent is the nearest scope left
    assert scene.scope == outer
    assert window.breadcrumb.texts() == ["Model", doc.graph.group(outer).name]
    assert_canvas_matches(window)
    doc.undo_stack.undo()
    assert scene.scope is None and window.breadcrumb.texts() == ["Model"]
    assert_canvas_matches(window)


def test_selecting_a_block_inside_a_closed_group_opens_it(make_window):
    from PySide6.QtCore import QItemSelectionModel

    window = make_window("resnet_small")
    doc, scene = window.document, window.scene
    g = doc.graph
    gid = group_by_keys(window, BLOCK2)
    panel = window.summary_panel

    def click_row(nid):  # a plain click on the block's row in the summary table
        index = panel.model.index(panel.model.row_of(nid), 0)
        panel.table.selectionModel().select(index, QItemSelectionModel.ClearAndSelect | QItemSelectionModel.Rows)

    target = node_by_name(g, "block2_down")
    click_row(target)
    assert scene.scope == gid and scene.nodes[target].isSelected()
    assert window.breadcrumb.texts() == ["Model", g.group(gid).name]
    # A block at the top level goes back out.
    fc1 = node_by_name(g, "fc1")
    click_row(fc1)
    assert scene.scope is None and scene.nodes[fc1].isSelected()


def test_groups_survive_save_and_open(make_window, tmp_path):
    window = make_window("resnet_small")
    doc = window.document
    gid = group_by_keys(window, BLOCK1)
    window.scene.set_scope(gid)
    path = tmp_path / "grouped.json"
    window.answers["save_path"] = str(path)
    assert window.save_as()
    other = make_window(None)
    assert other.open_path(path)
    g2 = other.document.graph
    assert [(grp.id, grp.name) for grp in g2.groups] == [(gid, doc.graph.group(gid).name)]
    assert sorted(g2.group_nodes(gid)) == sorted(doc.graph.group_nodes(gid))
    assert other.scene.scope is None and gid in other.scene.groups
    assert_canvas_matches(other)


def test_group_figures_sum_params_and_read_shapes_from_the_analysis(make_window):
    window = make_window("resnet_small", show=False)
    doc = window.document
    g = doc.graph
    doc.push(GroupBlocks(ids(g, BLOCK1), name="b1"))
    gid = g.groups[0].id
    info = group_info(g, doc.analysis, gid)
    assert info == doc.group_info[gid]  # what the canvas and the inspector show
    assert info.blocks == 7
    assert info.params == sum(doc.analysis.nodes[n].stats.params for n in g.group_nodes(gid))
    assert info.outputs == [(node_by_name(g, "block1_out"), 0)] and info.shape_texts == ("16×32×32",)
    assert info.inputs == [(node_by_name(g, "relu1"), 0)]
    assert info.error(g) is None
    assert window.scene.groups[gid].state.shape == "16×32×32"


# -- copy, paste, duplicate of groups ----------------------------------------------------
def test_copy_a_group_and_paste_gives_a_second_group_of_the_same_class(make_window):
    window = make_window("resnet_small")
    doc, scene = window.document, window.scene
    g = doc.graph
    gid = group_by_keys(window, BLOCK1)
    assert not doc.selection and scene.selected_group_ids() == [gid]  # only the group is selected
    assert window.edit_actions.copy_action.isEnabled()
    shortcut(window, Qt.Key_C, Qt.ControlModifier)
    assert window.statusBar().currentMessage() == "Copied 1 group"
    clip = json.loads(bytes(QGuiApplication.clipboard().mimeData().data(CLIP_MIME)).decode())
    assert [e["id"] for e in clip["groups"]] == [gid] and len(clip["nodes"]) == 7
    count = doc.undo_stack.count()
    shortcut(window, Qt.Key_V, Qt.ControlModifier)
    assert doc.undo_stack.count() == count + 1 and doc.undo_stack.undoText() == "Paste"
    (copy,) = [grp.id for grp in g.groups if grp.id != gid]
    assert g.group(copy).parent is None and copy in scene.groups and scene.selected_group_ids() == [copy]
    assert scene.groups[copy].state.summary == "7 blocks"
    assert_canvas_matches(window)
    # Wired in after block1 (what block1 reads, the copy reads from block1_out; what read
    # block1_out reads the copy), the model has two of the same group: one class, used twice.
    twin = dict(zip(g.group_nodes(gid), g.group_nodes(copy), strict=True))
    out = node_by_name(g, "block1_out")
    (src, _), = g.group_interface(gid)[0]
    steps = [Connect(out, twin[d], g.inputs(d).index(src)) for d in g.outputs(src) if d in twin]
    for reader in list(g.outputs(out)):
        steps += [Disconnect(out, reader), Connect(twin[out], reader, g.inputs(reader).index(out))]
    assert doc.push(Macro("wire", steps)) is None
    assert doc.analysis.ok
    gen = generate(g)
    assert gen.class_of[copy] == gen.class_of[gid]
    assert gen.code.count(f"{gen.class_of[gid]}()") == 2
    # Pasted while a group is open: the copy lands inside it. Undo is one step.
    scene.set_scope(gid)
    shortcut(window, Qt.Key_V, Qt.ControlModifier)
    (inner,) = scene.groups
    assert g.group(inner).parent == gid and len(g.group_nodes(inner)) == 7
    assert_canvas_matches(window)
    doc.undo_stack.undo()
    assert not scene.groups and [grp.id for grp in g.groups] == [gid, copy]
    # Ctrl+D of a selected group duplicates it beside itself; cut takes it away.
    scene.set_scope(None)
    scene.select_group(copy)
    made = window.edit_actions.duplicate()
    assert len(made) == 7 and doc.undo_stack.undoText() == "Duplicate"
    (dup,) = scene.selected_group_ids()
    assert dup not in (gid, copy) and g.group(dup).pos != g.group(copy).pos
    assert window.edit_actions.cut() and dup not in {grp.id for grp in g.groups}
    assert_canvas_matches(window)


def test_a_groups_context_menu_offers_copy_cut_and_duplicate(make_window, monkeypatch):
    window = make_window("resnet_small")
    gid = group_by_keys(window, BLOCK1)
    shown = []

    class Menu(QMenu):  # records what the menu offers instead of opening it
        def exec(self, *args):
            shown.extend(self.actions())

    monkeypatch.setattr(main_window, "QMenu", Menu)
    window._context_menu(window.view.mapToGlobal(window.view.rect().center()), window.scene.groups[gid])
    e = window.edit_actions
    for action in (e.copy_action, e.cut_action, e.duplicate_action, e.open_group_action, e.ungroup_action):
        assert action in shown and action.isEnabled()


def test_a_palette_block_dropped_on_a_line_that_stands_for_several_edges_goes_on_the_value(make_window):
    window = make_window("resnet_small")
    doc, scene, view = window.document, window.scene, window.view
    g = doc.graph
    gid = group_by_keys(window, BLOCK2)
    out, conv, down = ids(g, ["block1_out", "block2_conv1", "block2_down"])
    edge = scene.edges[(out, conv)]
    assert edge is scene.edges[(out, down)] and len(edge.keys) == 2  # one line for both edges
    view.fit()
    mid = edge._path.pointAtPercent(0.5)
    count = doc.undo_stack.count()
    drop_block(view, "ReLU", mid)
    (new,) = doc.selection
    assert g.node(new).type == "ReLU" and g.node(new).group is None
    assert g.inputs(new) == [out] and g.inputs(conv) == [new] and g.inputs(down) == [new]
    assert "feeds the 2 blocks inside" in window.statusBar().currentMessage()
    assert doc.undo_stack.count() == count + 1 and doc.analysis.ok
    assert_canvas_matches(window)
    doc.undo_stack.undo()
    assert g.inputs(conv) == [out] and g.inputs(down) == [out] and new not in g
    assert_canvas_matches(window)
    # A block dragged onto that line goes on the value too.
    doc.push(AddNode("Identity", pos=(g.group(gid).pos[0] + 600, g.group(gid).pos[1]), node_id="free"))
    view.fit()
    edge = scene.edges[(out, conv)]
    mid = edge._path.pointAtPercent(0.5)
    item = scene.nodes["free"]
    mouse_drag(view, item.pos() + QPointF(NODE_W / 2, NODE_H / 2), mid, steps=6)
    assert g.inputs("free") == [out] and g.inputs(conv) == ["free"] and g.inputs(down) == ["free"]
    assert_canvas_matches(window)


def test_stubs_follow_the_blocks_moved_inside_an_open_group(make_window, qtbot):
    window = make_window("resnet_small")
    doc, scene, view = window.document, window.scene, window.view
    g = doc.graph
    gid = group_by_keys(window, BLOCK2)
    scene.set_scope(gid)
    stub_in = scene.stubs[("in", node_by_name(g, "block1_out"), 0)]
    stub_out = next(s for key, s in scene.stubs.items() if key[0] == "out")

    def placed_as_when_opened() -> bool:
        now = {k: s.pos() for k, s in scene.stubs.items()}
        scene._place_stubs()  # where a fresh placement puts them
        return now == {k: s.pos() for k, s in scene.stubs.items()}

    def edges_meet_the_stubs() -> bool:
        return all(e._path.pointAtPercent(0) == e.src.out_anchor(e.port) for e in stub_in.edges) and \
            all(e._path.pointAtPercent(1) == e.dst.in_anchor_at(0) for e in stub_out.edges)

    # Every block dragged 300 px down and right with the mouse: the stubs come along at once.
    was_in, was_out = stub_in.pos(), stub_out.pos()
    view.zoom_reset()
    for item in scene.nodes.values():
        item.setSelected(True)
    first = scene.nodes[node_by_name(g, "block2_conv1")]
    view.centerOn(first)
    start = first.pos() + QPointF(NODE_W / 2, NODE_H / 2)
    mouse_drag(view, start, start + QPointF(300, 300), steps=5)
    assert doc.undo_stack.undoText() == "Move"
    qtbot.waitUntil(lambda: stub_in.pos() != was_in)
    assert abs(stub_in.x() - was_in.x() - 300) < 2 and abs(stub_in.y() - was_in.y() - 300) < 2
    assert abs(stub_out.y() - was_out.y() - 300) < 2
    assert placed_as_when_opened() and edges_meet_the_stubs()
    # One block moved far below the rest (a command, as undo and arrow keys do): the row of values
    # going outside stays below every block.
    add = node_by_name(g, "block2_add")
    doc.push(Move({add: (g.node(add).pos[0], g.node(add).pos[1] + 900)}))
    qtbot.waitUntil(lambda: stub_out.y() > scene.nodes[add].y() + NODE_H)
    assert placed_as_when_opened() and edges_meet_the_stubs()
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    QApplication.processEvents()
    assert stub_in.pos() == was_in and stub_out.pos() == was_out and edges_meet_the_stubs()


def test_f2_on_a_group_edits_its_name_and_a_rename_is_one_undo_step(make_window):
    window = make_window("resnet_small")
    doc, scene = window.document, window.scene
    g = doc.graph
    gid = group_by_keys(window, BLOCK1)
    old = g.group(gid).name
    count = doc.undo_stack.count()
    shortcut(window, Qt.Key_F2)
    field = window.inspector.group_name
    assert window.inspector.group_id == gid and field.hasFocus() and field.selectedText() == old
    QTest.keyClicks(field, "stem")
    QTest.keyClick(field, Qt.Key_Return)
    assert g.group(gid).name == "stem" and scene.groups[gid].state.label == "stem"
    assert window.breadcrumb.texts() == ["Model"]
    QTest.keyClicks(field, "_2")
    QTest.keyClick(field, Qt.Key_Return)
    assert g.group(gid).name == "stem_2"
    # Two renames of one group in a row are one undo step, as a block's are; through RenameGroup.
    assert doc.undo_stack.count() == count + 1 and doc.undo_stack.undoText() == "Rename group"
    doc.undo_stack.undo()
    assert g.group(gid).name == old and field.text() == old
    QTest.keyClicks(field, "  spaced  ")  # the graph trims it; the field shows what it keeps
    QTest.keyClick(field, Qt.Key_Return)
    assert g.group(gid).name == field.text() == clean_name(old + "  spaced  ") != old + "  spaced  "
    # A block's F2 still goes to the block's name.
    doc.set_selection(ids(g, ["conv1"]))
    shortcut(window, Qt.Key_F2)
    assert window.inspector.name_edit is not None and window.inspector.name_edit.hasFocus()


# -- a random sequence --------------------------------------------------------------------
WINDOW: dict = {}


@given(seed=st.integers(0, 2**32), steps=st.integers(1, 30))
@fuzz_settings(default=15, long=400)
def test_random_group_actions_keep_the_canvas_equal_to_the_model(make_window, seed, steps):
    window = WINDOW.get("w")
    if window is None or not shiboken6.isValid(window):  # one window for all examples: a new one costs ~0.5 s
        window = WINDOW["w"] = make_window(None, show=False)
    project = load_project(EXAMPLES / "resnet_small.json")
    project.path = None
    window.document.set_project(project)
    doc, scene = window.document, window.scene
    g = doc.graph
    r = random.Random(seed)
    for _ in range(steps):
        action = r.choice(["group", "group", "ungroup", "open", "up", "undo", "undo", "redo", "delete", "rename"])
        if action == "group":
            pool = list(scene.nodes) + list(scene.groups)
            if not pool:
                continue
            picked = r.sample(pool, r.randint(1, min(4, len(pool))))
            doc.set_selection([p for p in picked if p in scene.nodes])
            scene.select_groups([p for p in picked if p in scene.groups], keep=True)
            scene.group_selection()  # refused with a message, or done
        elif action == "ungroup" and scene.groups:
            scene.select_group(r.choice(list(scene.groups)))
            assert scene.ungroup_selection()
        elif action == "open" and scene.groups:
            scene.set_scope(r.choice(list(scene.groups)))
        elif action == "up":
            scene.go_up()
        elif action == "undo" and doc.undo_stack.canUndo():
            doc.undo_stack.undo()
        elif action == "redo" and doc.undo_stack.canRedo():
            doc.undo_stack.redo()
        elif action == "delete" and scene.groups:
            scene.select_group(r.choice(list(scene.groups)))
            assert scene.delete_selection()
        elif action == "rename" and scene.groups:
            gid = r.choice(list(scene.groups))
            scene.select_group(gid)
            window.rename_selected()  # F2: the inspector's name field
            window.inspector.group_name.setText(r.choice(["", "layer1", "BasicBlock 0", "💥" * 50]))
            window.inspector.group_name.editingFinished.emit()
        assert_canvas_matches(window)
        assert scene.scope is None or scene.scope in {grp.id for grp in g.groups}
    while doc.undo_stack.canUndo():
        doc.undo_stack.undo()
        assert_canvas_matches(window)
    assert not g.groups and scene.scope is None


def test_auto_layout_arranges_the_scope_shown(make_window):
    window = make_window("resnet_small")
    doc, scene = window.document, window.scene
    g = doc.graph
    gid = group_by_keys(window, BLOCK1)
    outside = {n: g.node(n).pos for n in g.group_nodes(gid)}
    assert window.edit_actions.auto_layout()
    # The top level is one chain: blocks and the collapsed group in one column, top to bottom,
    # in the order data flows; the blocks inside the group are not moved.
    spots = [(g.node(n).pos if n in scene.nodes else g.group(n).pos) for n in
             ids(g, ["input", "conv1", "bn1", "relu1"]) + [gid] + ids(g, BLOCK2[:1])]
    assert len({x for x, _ in spots[:5]}) == 1 and [y for _, y in spots[:5]] == sorted(y for _, y in spots[:5])
    assert {n: g.node(n).pos for n in g.group_nodes(gid)} == outside
    assert scene.groups[gid].pos() == QPointF(*g.group(gid).pos)
    assert doc.undo_stack.undoText() == "Auto-layout"
    doc.undo_stack.undo()
    assert doc.undo_stack.undoText() == "Group"
    # Inside the group: only its blocks move.
    scene.set_scope(gid)
    top = {n: g.node(n).pos for n in ids(g, ["input", "conv1"])}
    window.edit_actions.auto_layout()
    assert {n: g.node(n).pos for n in ids(g, ["input", "conv1"])} == top
    assert_canvas_matches(window)


def test_values_from_another_group_are_named_by_that_group(make_window):
    """Inside block2, the value from block1_out (itself inside the collapsed group block1) reads
    "from <block1's group>", one marker, as the level around shows it: the user sees where it comes from."""
    window = make_window("resnet_small")
    doc, scene = window.document, window.scene
    first = group_by_keys(window, BLOCK1)
    second = group_by_keys(window, BLOCK2)
    scene.set_scope(second)
    texts = sorted(s.text for s in scene.stubs.values())
    assert texts == [f"from {doc.graph.group(first).name}", "to gap1"]
    stub = next(s for s in scene.stubs.values() if s.kind == "in")
    assert {it.node_id for it in stub.ends} == set(ids(doc.graph, ["block2_conv1", "block2_down"]))
    # Nested one level deeper the markers still name what the level around the open group shows.
    inner = group_by_keys(window, ["block2_conv1", "block2_bn1", "block2_relu1"])
    scene.set_scope(inner)
    assert sorted(s.text for s in scene.stubs.values()) == [
        f"from {doc.graph.group(first).name}", "to block2_conv2"]


def test_selecting_a_collapsed_group_highlights_its_code(make_window, qtbot):
    window = make_window("resnet_small")
    scene, panel = window.scene, window.code_panel
    gid = group_by_keys(window, BLOCK1)
    panel.refresh()
    scene.clearSelection()
    scene.groups[gid].setSelected(True)
    lines = panel.highlighted_lines()
    assert lines and lines == sorted(panel.generated.group_lines[gid])
    code = panel.generated.code.splitlines()
    attr = panel.generated.attr_of_group[gid]
    assert any(f"self.{attr} = {panel.generated.class_of[gid]}(" in code[ln - 1] for ln in lines)

"""The canvas: dropping blocks, connecting by dragging ports, inserting on edges, moving,
deleting, auto-layout, and incremental repaint."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest

from cnnbuilder.core.commands import AddNode, Connect, Move, SetParam
from cnnbuilder.qt.canvas.items import NODE_H, NODE_W, NodeItem
from cnnbuilder.qt.canvas.layout import DY, layered_layout

from .helpers import drop_block, example, mouse_drag, node_by_name, send_mouse


def _free_point(window) -> QPointF:
    r = window.scene.blocks_rect()
    return QPointF(r.right() + 300, r.top() + 100)


def test_drop_from_palette_creates_block(window, qtbot):
    g = window.document.graph
    before = len(g)
    at = _free_point(window)
    window.view.centerOn(at)
    drop_block(window.view, "BatchNorm2d", at)
    assert len(g) == before + 1
    new = g.nodes[-1]
    assert new.type == "BatchNorm2d"
    # Centred where it was dropped, selected, on the canvas and in the inspector.
    assert abs(new.pos[0] + NODE_W / 2 - at.x()) < 2 and abs(new.pos[1] + NODE_H / 2 - at.y()) < 2
    assert window.document.selection == [new.id]
    assert isinstance(window.scene.nodes[new.id], NodeItem)
    assert window.inspector.node_id == new.id
    # One undo step removes it again, item included.
    window.document.undo_stack.undo()
    assert len(g) == before and new.id not in window.scene.nodes


def test_drop_on_edge_inserts_block(window):
    g = window.document.graph
    relu1, pool1 = node_by_name(g, "relu1"), node_by_name(g, "pool1")
    edge = window.scene.edges[(relu1, pool1)]
    mid = edge._path.pointAtPercent(0.5)
    window.view.centerOn(mid)
    drop_block(window.view, "Dropout2d", mid)
    new = window.document.selection[0]
    assert g.node(new).type == "Dropout2d"
    assert g.inputs(new) == [relu1] and g.outputs(new) == [pool1]
    assert (relu1, pool1) not in window.scene.edges
    assert (relu1, new) in window.scene.edges and (new, pool1) in window.scene.edges
    assert window.scene.nodes[pool1].state.shape == "16×14×14"  # shapes still flow through
    window.document.undo_stack.undo()
    assert g.outputs(relu1) == [pool1] and (relu1, pool1) in window.scene.edges


def test_drop_input_on_edge_is_refused_with_reason(window):
    g = window.document.graph
    relu1, pool1 = node_by_name(g, "relu1"), node_by_name(g, "pool1")
    mid = window.scene.edges[(relu1, pool1)]._path.pointAtPercent(0.5)
    window.view.centerOn(mid)
    n = len(g)
    drop_block(window.view, "Input", mid)
    assert len(g) == n
    assert "takes no inputs" in window.statusBar().currentMessage()


def test_connect_by_dragging_ports_updates_shapes_downstream(window):
    g = window.document.graph
    doc = window.document
    # A new Conv2d and Flatten -> Linear chain, not connected yet: both wait for an input.
    at = _free_point(window)
    conv = AddNode("Conv2d", {"out_channels": 8, "kernel_size": 3}, pos=(at.x(), at.y()))
    flat = AddNode("Flatten", pos=(at.x(), at.y() + DY))
    assert doc.push(conv) is None and doc.push(flat) is None
    assert doc.push(Connect(conv.node_id, flat.node_id)) is None
    assert window.scene.nodes[flat.node_id].state.shape == ""
    pool1 = node_by_name(g, "pool1")
    src = window.scene.nodes[pool1].out_port.scenePos()
    dst = window.scene.nodes[conv.node_id].in_port.scenePos()
    window.view.fit()
    mouse_drag(window.view, src, dst)
    assert pool1 in g.inputs(conv.node_id)
    # pool1 gives 16×14×14; a 3×3 conv without padding -> 8×12×12 -> flattened 1152.
    assert window.scene.nodes[conv.node_id].state.shape == "8×12×12"
    assert window.scene.nodes[flat.node_id].state.shape == "1152"
    assert (pool1, conv.node_id) in window.scene.edges


def test_refused_connections_say_why(window):
    g = window.document.graph
    doc = window.document
    scene = window.scene
    at = _free_point(window)
    add1, add2 = AddNode("Add", pos=(at.x(), at.y())), AddNode("Add", pos=(at.x(), at.y() + 2 * DY))
    doc.push(add1)
    doc.push(add2)
    doc.push(Connect(add1.node_id, add2.node_id))
    window.view.fit()
    conv1, fc1 = node_by_name(g, "conv1"), node_by_name(g, "fc1")
    n_edges = len(g.edges)
    # Backwards: add2 -> add1 would close a cycle.
    mouse_drag(window.view, scene.nodes[add2.node_id].out_port.scenePos(),
               scene.nodes[add1.node_id].in_port.scenePos())
    assert len(g.edges) == n_edges
    assert "cycle" in window.statusBar().currentMessage()
    # Output to output.
    mouse_drag(window.view, scene.nodes[conv1].out_port.scenePos(), scene.nodes[fc1].out_port.scenePos())
    assert len(g.edges) == n_edges
    assert "output to another output" in window.statusBar().currentMessage()
    # A second input into a one-input block.
    assert scene.request_connect(conv1, fc1) is not None
    assert "takes one input" in window.statusBar().currentMessage()
    assert len(g.edges) == n_edges


def test_drag_moves_blocks_as_one_undo_step(window):
    g = window.document.graph
    scene = window.scene
    window.view.zoom_reset()
    fc1 = node_by_name(g, "fc1")
    item = scene.nodes[fc1]
    window.view.centerOn(item)
    before = g.node(fc1).pos
    start = item.pos() + QPointF(NODE_W / 2, NODE_H / 2)
    mouse_drag(window.view, start, start + QPointF(120, 40), steps=6)
    after = g.node(fc1).pos
    assert abs(after[0] - before[0] - 120) < 2 and abs(after[1] - before[1] - 40) < 2
    stack = window.document.undo_stack
    assert stack.text(stack.count() - 1) == "Move"
    # The edge followed the block.
    edge = next(iter(item.edges))
    assert abs(edge._path.pointAtPercent(1.0).x() - (after[0] + NODE_W / 2)) < 1
    stack.undo()
    assert g.node(fc1).pos == before and item.pos() == QPointF(*before)


def test_delete_selection_removes_blocks_and_edges(window):
    g = window.document.graph
    relu2, pool2 = node_by_name(g, "relu2"), node_by_name(g, "pool2")
    window.document.set_selection([relu2])
    assert window.scene.nodes[relu2].isSelected()
    window.act_delete.trigger()
    assert relu2 not in g and relu2 not in window.scene.nodes
    assert all(relu2 not in e for e in window.scene.edges)
    # The block after it now lacks an input: flagged, and everything downstream waits.
    assert "needs an input" in window.scene.nodes[pool2].state.error
    window.document.undo_stack.undo()
    assert relu2 in g and g.outputs(relu2) == [pool2]
    assert window.scene.nodes[pool2].state.error is None


def test_delete_selected_edge(window):
    g = window.document.graph
    a, b = node_by_name(g, "flatten1"), node_by_name(g, "fc1")
    window.scene.edges[(a, b)].setSelected(True)
    window.act_delete.trigger()
    assert b not in g.outputs(a) and (a, b) not in window.scene.edges
    assert window.document.undo_stack.undoText() == "Delete connection"


def test_auto_layout_is_layered_and_one_undo_step(make_window):
    window = make_window("resnet_small")
    g = window.document.graph
    # Scramble the positions first.
    window.document.push(Move({n.id: (37.0 * i, -13.0 * i) for i, n in enumerate(g)}))
    scrambled = {n.id: n.pos for n in g}
    assert window.edit_actions.auto_layout()
    pos = {n.id: n.pos for n in g}
    for src, dst in g.edges:
        assert pos[dst][1] > pos[src][1]  # every edge points down
    boxes = list(pos.values())
    for i, (x1, y1) in enumerate(boxes):  # no two blocks overlap
        for x2, y2 in boxes[i + 1:]:
            assert abs(x1 - x2) >= NODE_W or abs(y1 - y2) >= NODE_H
    for nid, item in window.scene.nodes.items():
        assert item.pos() == QPointF(*pos[nid])
    assert window.document.undo_stack.undoText() == "Auto-layout"
    window.document.undo_stack.undo()
    assert {n.id: n.pos for n in g} == scrambled


def test_layered_layout_keeps_chains_straight_and_skips_in_their_own_lane():
    g = example("resnet_small").graph
    pos = layered_layout(g)
    main = [node_by_name(g, n) for n in ("input", "conv1", "bn1", "relu1")]
    assert len({pos[n][0] for n in main}) == 1  # a plain chain is one straight column
    depth = {n: pos[n][1] / DY for n in pos}
    add = node_by_name(g, "block1_add")
    assert depth[add] == max(depth[s] for s in g.inputs(add)) + 1
    # The skip connection relu1 -> add runs beside the residual branch, not through it.
    branch = [node_by_name(g, n) for n in ("block1_conv1", "block1_bn1", "block1_relu1", "block1_conv2")]
    relu1 = node_by_name(g, "relu1")
    assert all(pos[b][0] != pos[relu1][0] for b in branch)


def test_analysis_repaints_only_changed_blocks(window):
    g = window.document.graph
    states = {nid: item.state for nid, item in window.scene.nodes.items()}
    fc1 = node_by_name(g, "fc1")
    assert window.document.push(SetParam(fc1, "out_features", 7)) is None
    changed = {nid for nid, item in window.scene.nodes.items() if item.state is not states[nid]}
    assert changed == {fc1}
    assert window.scene.nodes[fc1].state.shape == "7"
    assert window.scene.nodes[fc1].state.summary == "Linear 7"


def test_waiting_blocks_are_dimmed_not_flagged(window):
    g = window.document.graph
    conv2 = node_by_name(g, "conv2")
    window.document.push(SetParam(conv2, "kernel_size", 20))  # 14×14 input: a 20×20 kernel cannot fit
    item = window.scene.nodes[conv2]
    assert item.state.error and not item.state.waiting
    assert item.badge.isVisible() and "kernel" in item.badge.toolTip().lower()
    after = window.scene.nodes[node_by_name(g, "fc1")]
    assert after.state.waiting and not after.badge.isVisible()


def test_zoom_and_fit(window):
    view = window.view
    view.zoom_reset()
    assert view.zoom() == 1.0
    window.act_zoom_in.trigger()
    assert view.zoom() > 1.0
    window.act_zoom_reset.trigger()
    assert view.zoom() == 1.0
    window.act_fit.trigger()
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    assert visible.contains(window.scene.blocks_rect())
    assert window.zoom_label.text() == f"{view.zoom() * 100:.0f} %"


def test_reverse_drag_from_input_port_connects(window):
    g = window.document.graph
    doc = window.document
    at = _free_point(window)
    relu = AddNode("ReLU", pos=(at.x(), at.y()))
    doc.push(relu)
    window.view.fit()
    pool2 = node_by_name(g, "pool2")
    mouse_drag(window.view, window.scene.nodes[relu.node_id].in_port.scenePos(),
               window.scene.nodes[pool2].out_port.scenePos())
    assert g.inputs(relu.node_id) == [pool2]
    assert window.scene.nodes[relu.node_id].state.shape == "32×7×7"


def test_space_and_middle_drag_pan_the_view(window):
    view = window.view
    view.zoom_reset()
    view.centerOn(window.scene.blocks_rect().center())
    vp = view.viewport()
    before = view.mapToScene(vp.rect().center())
    g = window.document.graph
    positions = {n.id: n.pos for n in g}
    view.setFocus()
    QTest.keyPress(view, Qt.Key_Space)
    assert view.dragMode() == view.DragMode.ScrollHandDrag and not view.isInteractive()
    QTest.keyRelease(view, Qt.Key_Space)
    assert view.dragMode() == view.DragMode.RubberBandDrag and view.isInteractive()
    # Middle-drag: the content follows the mouse; no block moves.
    c = vp.rect().center()
    send_mouse(vp, QMouseEvent.MouseButtonPress, c, Qt.MiddleButton, Qt.MiddleButton)
    send_mouse(vp, QMouseEvent.MouseMove, c + QPoint(0, -120), Qt.NoButton, Qt.MiddleButton)
    send_mouse(vp, QMouseEvent.MouseButtonRelease, c + QPoint(0, -120), Qt.MiddleButton, Qt.NoButton)
    after = view.mapToScene(vp.rect().center())
    assert abs((after.y() - before.y()) - 120) < 2
    assert {n.id: n.pos for n in g} == positions


def test_undo_and_redo_everything_restores_scene_inspector_and_code(window):
    doc = window.document
    g = window.document.graph

    def snapshot():
        window.code_panel.refresh()
        scene = {nid: (item.pos().x(), item.pos().y(), item.state) for nid, item in window.scene.nodes.items()}
        return scene, set(window.scene.edges), window.code_panel.code(), window.inspector.node_id

    start = snapshot()
    relu1, pool1 = node_by_name(g, "relu1"), node_by_name(g, "pool1")
    mid = window.scene.edges[(relu1, pool1)]._path.pointAtPercent(0.5)
    window.view.centerOn(mid)
    drop_block(window.view, "BatchNorm2d", mid)  # insert on an edge
    conv2 = node_by_name(g, "conv2")
    doc.set_selection([conv2])
    window.inspector.editors["out_channels"].spin.setValue(48)  # edit through the inspector
    doc.set_selection([node_by_name(g, "relu2")])
    window.act_delete.trigger()  # delete a block
    window.edit_actions.auto_layout()  # move everything
    end = snapshot()
    assert end[0] != start[0] and end[2] is None  # relu2 deleted: pool2 has no input -> no code
    stack = doc.undo_stack
    while stack.canUndo():
        stack.undo()
    doc.set_selection([])
    assert snapshot() == start
    while stack.canRedo():
        stack.redo()
    doc.set_selection([])
    again = snapshot()
    assert again[:3] == (end[0], end[1], end[2])


def test_zoomed_out_blocks_are_plain_boxes(window):
    view = window.view
    fc1 = window.scene.nodes[node_by_name(window.document.graph, "fc1")]

    def inner_colours(zoom: float) -> int:
        view.set_zoom(zoom)
        view.centerOn(fc1)
        img = view.viewport().grab().toImage()
        r = view.mapFromScene(fc1.sceneBoundingRect()).boundingRect().adjusted(4, 4, -4, -4)
        return len({img.pixel(x, y) for x in range(r.left(), r.right()) for y in range(r.top(), r.bottom())})

    assert inner_colours(1.0) > 10  # header, text, shape line
    assert inner_colours(0.3) <= 2  # one fill (plus an edge pixel at most): no text


def test_arrow_keys_nudge_the_selection_as_one_undo_step(window):
    g = window.document.graph
    fc1, fc2 = node_by_name(g, "fc1"), node_by_name(g, "pool1")
    window.document.set_selection([fc1, fc2])
    before = {n: g.node(n).pos for n in (fc1, fc2)}
    stack = window.document.undo_stack
    count = stack.count()
    window.view.setFocus()
    for key in (Qt.Key_Right, Qt.Key_Right, Qt.Key_Down):
        QTest.keyClick(window.view.viewport(), key)
    QTest.keyClick(window.view.viewport(), Qt.Key_Left, Qt.ShiftModifier)  # fine step: 1 px
    for n in (fc1, fc2):
        assert g.node(n).pos == (before[n][0] + 19, before[n][1] + 10)
        assert window.scene.nodes[n].pos() == QPointF(*g.node(n).pos)
    assert stack.count() == count + 1 and stack.text(stack.count() - 1) == "Move"  # merged into one step
    stack.undo()
    assert {n: g.node(n).pos for n in (fc1, fc2)} == before
    # without a selection the arrows scroll the view as usual and change nothing
    window.document.set_selection([])
    QTest.keyClick(window.view.viewport(), Qt.Key_Right)
    assert stack.count() == count + 1 and {n: g.node(n).pos for n in (fc1, fc2)} == before


def test_snap_to_grid_applies_to_drags_drops_and_nudges_and_is_remembered(window, qtbot):
    from cnnbuilder.qt.canvas.view import GRID

    g = window.document.graph
    scene = window.scene
    window.act_snap.setChecked(True)
    assert scene.snap == GRID and window.settings.value("canvas/snap") == "true"
    window.view.zoom_reset()
    # a drop lands on the grid
    at = _free_point(window) + QPointF(7, 3)
    window.view.centerOn(at)
    drop_block(window.view, "ReLU", at)
    new = window.document.selection[0]
    assert all(v % GRID == 0 for v in g.node(new).pos)
    # a drag lands on the grid
    item = scene.nodes[new]
    start = item.pos() + QPointF(NODE_W / 2, NODE_H / 2)
    mouse_drag(window.view, start, start + QPointF(47, 13), steps=5)
    assert all(v % GRID == 0 for v in g.node(new).pos) and g.node(new).pos != tuple(start.toTuple())
    assert item.pos() == QPointF(*g.node(new).pos)
    # an arrow key moves one grid cell
    x, y = g.node(new).pos
    window.view.setFocus()
    QTest.keyClick(window.view.viewport(), Qt.Key_Up)
    assert g.node(new).pos == (x, y - GRID)
    # undo restores an off-grid position exactly: the model decides, not the snapping
    fc1 = node_by_name(g, "fc1")
    window.document.push(Move({fc1: (13.3, 17.7)}))
    window.document.undo_stack.undo()
    window.document.undo_stack.redo()
    assert scene.nodes[fc1].pos() == QPointF(13.3, 17.7)
    window.act_snap.setChecked(False)
    assert scene.snap == 0 and window.settings.value("canvas/snap") == "false"


def test_dragging_a_free_block_onto_a_connection_inserts_it(window):
    g = window.document.graph
    scene = window.scene
    window.view.zoom_reset()
    relu1, pool1 = node_by_name(g, "relu1"), node_by_name(g, "pool1")
    at = _free_point(window)
    window.view.centerOn(at)
    drop_block(window.view, "Dropout2d", at)
    new = window.document.selection[0]
    stack = window.document.undo_stack
    count = stack.count()
    mid = scene.edges[(relu1, pool1)]._path.pointAtPercent(0.5)
    window.view.centerOn((at + mid) / 2)
    item = scene.nodes[new]
    start = item.pos() + QPointF(NODE_W / 2, NODE_H / 2)
    mouse_drag(window.view, start, mid, steps=8)
    assert g.inputs(new) == [relu1] and g.outputs(new) == [pool1] and (relu1, pool1) not in g.edges
    assert scene.nodes[pool1].state.shape == "16×14×14" and not scene.nodes[new].state.error
    assert stack.count() == count + 1 and stack.text(stack.count() - 1) == f"Insert {g.node(new).label}"
    assert not any(e.highlight for e in scene.edges.values())
    stack.undo()  # the move and the rewiring go back together
    assert g.outputs(relu1) == [pool1] and not g.inputs(new) and abs(g.node(new).pos[0] - item.pos().x()) < 1e-6
    # a connected block dragged over a connection just moves
    fc1 = node_by_name(g, "fc1")
    start = scene.nodes[fc1].pos() + QPointF(NODE_W / 2, NODE_H / 2)
    window.view.centerOn((start + mid) / 2)
    mouse_drag(window.view, start, mid, steps=8)
    assert g.outputs(relu1) == [pool1] and stack.text(stack.count() - 1) == "Move"


def test_dragging_off_a_full_input_port_reroutes_or_removes_the_connection(window):
    g = window.document.graph
    doc = window.document
    scene = window.scene
    stack = doc.undo_stack
    at = _free_point(window)
    relu = AddNode("ReLU", pos=(at.x(), at.y()))
    doc.push(relu)
    pool2, flatten = node_by_name(g, "pool2"), node_by_name(g, "flatten1")
    window.view.fit()
    count = stack.count()
    # pool2 -> flatten1 picked up at flatten1's (full) input and dropped on the new ReLU
    mouse_drag(window.view, scene.nodes[flatten].in_port.scenePos(), scene.nodes[relu.node_id].in_port.scenePos())
    assert g.inputs(relu.node_id) == [pool2] and g.inputs(flatten) == []
    assert stack.count() == count + 1 and stack.text(stack.count() - 1) == "Re-route connection"
    assert scene.edges[(pool2, relu.node_id)].isVisible() and (pool2, flatten) not in scene.edges
    assert "needs an input" in scene.nodes[flatten].state.error  # flagged on the block left without input
    stack.undo()
    assert g.inputs(flatten) == [pool2] and not g.inputs(relu.node_id)
    assert scene.edges[(pool2, flatten)].isVisible()
    # dropped back on its own port: nothing changes
    mouse_drag(window.view, scene.nodes[flatten].in_port.scenePos(), scene.nodes[flatten].in_port.scenePos() +
               QPointF(0, 1))
    assert g.inputs(flatten) == [pool2] and stack.count() == count + 1 and scene.edges[(pool2, flatten)].isVisible()
    # dropped on a block that takes no more inputs: refused with the reason, the edge stays
    conv1 = node_by_name(g, "conv1")
    mouse_drag(window.view, scene.nodes[flatten].in_port.scenePos(), scene.nodes[conv1].in_port.scenePos())
    assert g.inputs(flatten) == [pool2] and "already has one" in window.statusBar().currentMessage()
    assert scene.edges[(pool2, flatten)].isVisible()
    # dropped on empty canvas: removed, one undo step
    mouse_drag(window.view, scene.nodes[flatten].in_port.scenePos(), at + QPointF(400, 300))
    assert g.inputs(flatten) == [] and stack.text(stack.count() - 1) == "Remove connection"
    stack.undo()
    assert g.inputs(flatten) == [pool2]


def _split_setup(window):
    """pool1 (16×14×14) -> a Chunk of 2, and three BatchNorm2d blocks below it, not connected."""
    doc = window.document
    at = _free_point(window)
    chunk = AddNode("Chunk", {"chunks": 2}, name="halves", pos=(at.x(), at.y()))
    bns = [AddNode("BatchNorm2d", pos=(at.x() + dx, at.y() + 2 * DY)) for dx in (-250.0, 0.0, 250.0)]
    for cmd in (chunk, *bns):
        assert doc.push(cmd) is None
    assert doc.push(Connect(node_by_name(doc.graph, "pool1"), chunk.node_id)) is None
    window.view.fit()
    return chunk.node_id, [b.node_id for b in bns]


def _starts_at(edge, point: QPointF) -> bool:
    start = edge._path.pointAtPercent(0.0)
    return abs(start.x() - point.x()) < 0.5 and abs(start.y() - point.y()) < 0.5


def test_split_blocks_have_an_output_port_per_part_and_connect_from_the_chosen_one(window):
    g, doc, scene = window.document.graph, window.document, window.scene
    stack = doc.undo_stack
    chunk, (bn1, bn2, bn3) = _split_setup(window)
    item = scene.nodes[chunk]
    assert [p.index for p in item.out_ports] == [0, 1] and item.out_port is item.out_ports[0]
    assert item.state.shape == "8×14×14 | 8×14×14"
    from cnnbuilder.qt.summary_view import summary_rows

    row = next(r for r in summary_rows(g, doc.analysis) if r.node_id == chunk)
    assert row.shape == "8×14×14 | 8×14×14"
    assert item.out_ports[1].toolTip().startswith("Output 1: 8×14×14")
    assert item.out_ports[0].scenePos().x() < item.out_ports[1].scenePos().x()  # output 0 on the left
    # Drag from output 1 to bn2: the edge leaves from output 1 and bn2 learns its 8 channels.
    mouse_drag(window.view, item.out_ports[1].scenePos(), scene.nodes[bn2].in_port.scenePos())
    assert g.port(chunk, bn2) == 1
    assert _starts_at(scene.edges[(chunk, bn2)], item.out_anchor(1))
    assert scene.nodes[bn2].state.shape == "8×14×14"
    assert "(output 1)" in scene.edges[(chunk, bn2)].toolTip()
    # From bn1's input to the chunk's body: the first output still free, output 0.
    mouse_drag(window.view, scene.nodes[bn1].in_port.scenePos(), item.center())
    assert g.port(chunk, bn1) == 0
    # Output 1 already feeds bn2; bn2 cannot take a second connection from the same block.
    assert "already feeds" in scene.request_connect(chunk, bn2, 0)
    # More chunks: more ports, and the edges move with theirs.
    assert doc.push(SetParam(chunk, "chunks", 4)) is None
    assert len(item.out_ports) == 4 and item.state.shape.count("|") == 3
    assert _starts_at(scene.edges[(chunk, bn2)], item.out_anchor(1))
    # Fewer than a connected output: an error on the split, the ports the params give.
    assert doc.push(SetParam(chunk, "chunks", 1)) is None
    assert len(item.out_ports) == 1 and "output 1 feeds" in item.state.error
    for _ in range(4):
        stack.undo()
    assert not g.outputs(chunk) and len(item.out_ports) == 2 and not scene.nodes[bn2].state.shape
    for _ in range(4):
        stack.redo()
    assert g.port(chunk, bn2) == 1 and len(item.out_ports) == 1 and (chunk, bn2) in scene.edges


def test_a_picked_up_split_connection_keeps_its_output(window):
    g, doc, scene = window.document.graph, window.document, window.scene
    chunk, (bn1, bn2, bn3) = _split_setup(window)
    assert doc.push(Connect(chunk, bn2, port=1)) is None
    mouse_drag(window.view, scene.nodes[bn2].in_port.scenePos(), scene.nodes[bn3].in_port.scenePos())
    assert g.inputs(bn3) == [chunk] and g.port(chunk, bn3) == 1 and not g.inputs(bn2)
    assert _starts_at(scene.edges[(chunk, bn3)], scene.nodes[chunk].out_anchor(1))


def test_split_ports_survive_copy_paste_save_and_open(window, tmp_path):
    g, doc, scene = window.document.graph, window.document, window.scene
    chunk, (bn1, bn2, bn3) = _split_setup(window)
    assert doc.push(Connect(chunk, bn2, port=1)) is None
    assert doc.push(Connect(chunk, bn1, port=0)) is None
    doc.set_selection([chunk, bn1, bn2])
    assert window.edit_actions.copy()
    new = window.edit_actions.paste()
    copy_chunk, copy_bn1, copy_bn2 = new
    assert g.port(copy_chunk, copy_bn2) == 1 and g.port(copy_chunk, copy_bn1) == 0
    assert _starts_at(scene.edges[(copy_chunk, copy_bn2)], scene.nodes[copy_chunk].out_anchor(1))
    doc.undo_stack.undo()
    assert copy_chunk not in g
    path = tmp_path / "split.json"
    doc.save(path)
    assert window.open_path(path)
    g, scene = window.document.graph, window.scene
    assert g.port(chunk, bn2) == 1 and scene.edges[(chunk, bn2)].port == 1
    assert _starts_at(scene.edges[(chunk, bn2)], scene.nodes[chunk].out_anchor(1))


def test_auto_layout_puts_a_splits_branches_in_port_order():
    from cnnbuilder.core.graph import Graph

    g = Graph()
    x = g.add_node("Input", {"shape": [8, 4, 4]}).id
    s = g.add_node("Chunk", {}).id
    g.connect(x, s)
    right = g.add_node("ReLU", {}).id  # listed first, fed by output 1
    left = g.add_node("ReLU", {}).id
    g.connect(s, right, port=1)
    g.connect(s, left, port=0)
    cat = g.add_node("Concat", {}).id
    g.connect(left, cat)
    g.connect(right, cat)
    pos = layered_layout(g)
    assert pos[left][0] < pos[s][0] < pos[right][0]

"""The inspector: schema-generated editors, bounds, inferred and nullable values, refusals,
and refreshing on undo/redo."""

from __future__ import annotations

from cnnbuilder.core.commands import AddNode, Connect
from cnnbuilder.core.graph import UNSET
from cnnbuilder.qt.param_editors import AutoEditor, IntEditor, PaddingEditor, PairEditor, ShapeEditor

from .helpers import node_by_name


def _select(window, name: str) -> str:
    nid = node_by_name(window.document.graph, name)
    window.document.set_selection([nid])
    assert window.inspector.node_id == nid
    return nid


def test_bad_parameter_shows_badge_and_clears_when_fixed(window):
    g = window.document.graph
    conv2 = _select(window, "conv2")
    kernel = window.inspector.editors["kernel_size"]
    assert isinstance(kernel, PairEditor) and kernel.link.isChecked()
    kernel.a.setValue(30)  # the link keeps it square: 30×30 on a 14×14 (+2+2 padding) input
    assert g.node(conv2).params["kernel_size"] == (30, 30)
    item = window.scene.nodes[conv2]
    assert item.badge.isVisible()
    assert "kernel" in item.badge.toolTip().lower()
    assert window.inspector.problem.isVisible() and "kernel" in window.inspector.problem.text().lower()
    assert window.scene.nodes[node_by_name(g, "fc1")].state.waiting
    kernel.a.setValue(5)
    assert g.node(conv2).params["kernel_size"] == (5, 5)
    assert not item.badge.isVisible() and item.state.shape == "32×14×14"
    assert not window.inspector.problem.isVisible()


def test_editors_follow_the_schema_bounds(window):
    _select(window, "conv1")
    ed = window.inspector.editors
    out = ed["out_channels"]
    assert isinstance(out, IntEditor) and out.spin.minimum() == 1 and out.spin.maximum() == 1 << 20
    out.spin.setValue(0)  # clamped by the bounds: a zero-channel conv cannot be entered
    assert out.spin.value() == 1
    assert isinstance(ed["padding"], PaddingEditor)
    assert ed["padding_mode"].combo.count() == 4
    assert ed["kernel_size"].a.toolTip() == "Height"
    assert out.spin.toolTip().startswith("Number of filters")  # Param.help as the tooltip
    assert window.inspector.doc.text().startswith("Applies a 2D convolution")


def test_inferred_value_shown_read_only_and_can_be_overridden(window):
    g = window.document.graph
    conv2 = _select(window, "conv2")
    inch = window.inspector.editors["in_channels"]
    assert isinstance(inch, AutoEditor)
    assert inch.auto.isChecked() and not inch.inner.widget.isEnabled()
    assert inch.inner.spin.value() == 16  # what conv1 gives it
    inch.auto.setChecked(False)  # pin the inferred value explicitly
    assert g.node(conv2).params["in_channels"] == 16 and inch.inner.widget.isEnabled()
    inch.auto.setChecked(True)
    assert "in_channels" not in g.node(conv2).params


def test_refused_value_shows_the_reason(window):
    g = window.document.graph
    conv1 = _select(window, "conv1")
    problem = window.inspector.commit("kernel_size", 0)
    assert problem == "kernel_size: must be at least 1 (got 0)"
    assert window.inspector.refusal.isVisible()
    assert "must be at least 1" in window.inspector.refusal.text()
    assert g.node(conv1).params["kernel_size"] == (5, 5)
    assert window.inspector.editors["kernel_size"].a.value() == 5
    # The next good edit clears the message.
    window.inspector.editors["out_channels"].spin.setValue(8)
    assert not window.inspector.refusal.isVisible()


def test_square_link_and_padding_modes(window):
    g = window.document.graph
    conv1 = _select(window, "conv1")
    k = window.inspector.editors["kernel_size"]
    k.link.setChecked(False)
    k.b.setValue(3)
    assert g.node(conv1).params["kernel_size"] == (5, 3)
    k.link.setChecked(True)  # linking squares it again
    assert g.node(conv1).params["kernel_size"] == (5, 5)
    pad = window.inspector.editors["padding"]
    pad.mode.setCurrentText("same")
    assert g.node(conv1).params["padding"] == "same"
    assert not pad.pair.widget.isVisibleTo(pad.widget)
    assert window.scene.nodes[conv1].state.shape == "16×28×28"
    pad.mode.setCurrentText("valid")
    assert window.scene.nodes[conv1].state.shape == "16×24×24"


def test_input_presets_and_shape_editor(window):
    g = window.document.graph
    inp = _select(window, "input")
    shape = window.inspector.editors["shape"]
    assert isinstance(shape, ShapeEditor) and set(shape.presets) == {"MNIST", "CIFAR", "ImageNet"}
    shape.presets["CIFAR"].click()
    assert g.node(inp).params["shape"] == (3, 32, 32)
    assert [s.value() for s in shape.spins] == [3, 32, 32]
    assert window.inspector.editors  # rebuilt form still there
    conv1 = node_by_name(g, "conv1")
    assert window.scene.nodes[conv1].state.shape == "16×32×32"
    shape.spins[1].setValue(64)
    assert g.node(inp).params["shape"] == (3, 64, 32)


def test_nullable_value_has_an_auto_switch(window):
    g = window.document.graph
    pool1 = _select(window, "pool1")
    stride = window.inspector.editors["stride"]
    assert isinstance(stride, AutoEditor) and stride.auto.isChecked()
    stride.auto.setChecked(False)
    stride.inner.a.setValue(1)
    assert g.node(pool1).params["stride"] == (1, 1)
    assert window.scene.nodes[pool1].state.shape == "16×27×27"
    stride.auto.setChecked(True)
    assert g.node(pool1).params.get("stride", UNSET) is UNSET
    assert window.scene.nodes[pool1].state.shape == "16×14×14"


def test_rename_and_undo_redo_refresh_the_form(window):
    g = window.document.graph
    doc = window.document
    fc1 = _select(window, "fc1")
    out = window.inspector.editors["out_features"]
    out.spin.setValue(12)
    out.spin.setValue(42)  # consecutive edits of one field merge into one undo step
    assert g.node(fc1).params["out_features"] == 42
    window.inspector.name_edit.setText("classifier")
    window.inspector.name_edit.editingFinished.emit()
    assert g.node(fc1).name == "classifier"
    assert window.scene.nodes[fc1].state.label == "classifier"
    doc.undo_stack.undo()
    assert window.inspector.name_edit.text() == "fc1"
    doc.undo_stack.undo()
    assert out.spin.value() == 10 and g.node(fc1).params["out_features"] == 10
    window.code_panel.refresh()
    assert "nn.Linear(1568, 10)" in window.code_panel.code()
    doc.undo_stack.redo()
    assert out.spin.value() == 42
    window.code_panel.refresh()
    assert "nn.Linear(1568, 42)" in window.code_panel.code()


def test_form_follows_selection_and_deletion(window):
    doc = window.document
    relu1 = _select(window, "relu1")
    assert set(window.inspector.editors) == {"inplace"}
    doc.set_selection([relu1, node_by_name(doc.graph, "conv1")])
    assert window.inspector.node_id is None and "2 blocks selected" in window.inspector.empty.text()
    # A block added and connected by commands gets a form too, with its inferred value.
    add = AddNode("Linear", {"out_features": 5}, pos=(600.0, 0.0))
    doc.push(add)
    doc.push(Connect(node_by_name(doc.graph, "flatten1"), add.node_id))
    doc.set_selection([add.node_id])
    assert window.inspector.editors["in_features"].inner.spin.value() == 1568
    doc.undo_stack.undo()
    doc.undo_stack.undo()  # the block is gone: the inspector shows its placeholder
    assert window.inspector.node_id is None


def test_absurd_values_are_bounded_or_flagged_never_a_crash(window):
    g = window.document.graph
    inp = _select(window, "input")
    shape = window.inspector.editors["shape"]
    for spin in shape.spins:
        spin.setValue(10**9)  # clamped to the schema's maximum
    assert g.node(inp).params["shape"] == (1 << 20, 1 << 20, 1 << 20)
    conv1 = _select(window, "conv1")
    window.inspector.editors["kernel_size"].a.setValue(10**6)
    assert g.node(conv1).params["kernel_size"] == (10**6, 10**6)
    window.inspector.editors["stride"].a.setValue(-5)  # below the minimum: clamped to 1
    assert g.node(conv1).params.get("stride", (1, 1)) == (1, 1)
    # Huge but consistent numbers flow through shapes, summary, status bar and code.
    window.code_panel.refresh()
    assert window.scene.nodes[conv1].state.error is None
    total = window.summary_panel.model.rowCount() - 1
    assert window.summary_panel.model.data(window.summary_panel.model.index(total, 0)) == "Total"
    window.inspector.editors["kernel_size"].a.setValue((1 << 20) - 1)
    window.inspector.editors["padding"].mode.setCurrentText("valid")
    window.document.set_selection([inp])
    shape.presets["MNIST"].click()  # now the kernel is far larger than the image: flagged on the block
    assert window.scene.nodes[conv1].badge.isVisible()
    assert "kernel" in window.scene.nodes[conv1].state.error.lower()


def test_every_block_type_gets_a_complete_form(window):
    from cnnbuilder.core.blocks import REGISTRY

    doc = window.document
    for i, spec in enumerate(REGISTRY.values()):
        add = AddNode(spec.type, pos=(1000.0, 110.0 * i))
        assert doc.push(add) is None
        if spec.max_inputs != 0:
            doc.push(Connect(node_by_name(doc.graph, "pool1"), add.node_id))
        doc.set_selection([add.node_id])
        assert window.inspector.node_id == add.node_id
        assert set(window.inspector.editors) == {p.name for p in spec.params}, spec.type
        for name, ed in window.inspector.editors.items():
            value = ed.value()  # every editor reads back a value the schema accepts
            if value is not UNSET and value is not None:
                spec.check_param(name, value)


def test_sizes_and_four_sided_padding_are_typed_as_lists(window):
    from cnnbuilder.qt.param_editors import NumbersEditor

    doc, g = window.document, window.document.graph
    pool1 = node_by_name(g, "pool1")  # 16×14×14
    split, pad = AddNode("Split", pos=(900.0, 0.0)), AddNode("ZeroPad2d", pos=(900.0, 200.0))
    for cmd in (split, pad):
        assert doc.push(cmd) is None
        assert doc.push(Connect(pool1, cmd.node_id)) is None
    doc.set_selection([split.node_id])
    sizes = window.inspector.editors["split_size_or_sections"]
    assert isinstance(sizes, NumbersEditor) and sizes.edit.text() == "16, 16"
    assert "do not add up" in window.scene.nodes[split.node_id].state.error  # 16 + 16 is not 16
    sizes.edit.setText("4, 12")
    sizes.edit.editingFinished.emit()
    assert g.node(split.node_id).params["split_size_or_sections"] == (4, 12)
    assert window.scene.nodes[split.node_id].state.shape == "4×14×14 | 12×14×14"
    assert len(window.scene.nodes[split.node_id].out_ports) == 2
    sizes.edit.setText("4, twelve")
    sizes.edit.editingFinished.emit()
    assert window.inspector.refusal.isVisible() and "expected a list of sizes" in window.inspector.refusal.text()
    assert sizes.edit.text() == "4, 12"  # back to the block's value
    doc.set_selection([pad.node_id])
    padding = window.inspector.editors["padding"]
    assert padding.edit.text() == "1"
    padding.edit.setText("1, 2, 0, 3")
    padding.edit.editingFinished.emit()
    assert window.scene.nodes[pad.node_id].state.shape == "16×17×17"
    padding.edit.setText("2")
    padding.edit.editingFinished.emit()
    assert g.node(pad.node_id).params["padding"] == (2, 2, 2, 2) and padding.edit.text() == "2"


def test_a_templates_note_is_shown_after_opening_it_while_nothing_is_selected(window):
    from cnnbuilder.qt.templates import templates

    resnet = next(t for t in templates() if t.key == "resnet18")
    window.answers["template"] = resnet.project(1)
    assert window.new_project()
    ins = window.inspector
    text = ins.empty.text()
    assert ins.scroll.widget() is ins.empty
    assert text.startswith("<p><b>Model notes</b> — ResNet-18 (CIFAR-10 size)</p><p>ResNet (2015")
    assert "Select a block on the canvas" in text
    first = next(iter(window.document.graph)).id
    window.document.set_selection([first])
    assert ins.scroll.widget() is not ins.empty  # the block's form
    window.document.set_selection([])
    assert ins.scroll.widget() is ins.empty and ins.empty.text() == text
    # A project without a description shows the hint alone.
    window.answers["template"] = next(t for t in templates() if t.key == "mnist_cnn").project()
    assert window.new_project()
    assert "Model notes" not in ins.empty.text() and "Select a block on the canvas" in ins.empty.text()

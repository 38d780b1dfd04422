"""The arithmetic, shown (issue 11 §1): the inspector, the block's canvas tooltip and the Summary
show how a block's output shape, parameter count and MACs come out with its numbers filled in,
and its receptive field and jump; a shape error's message carries the step that goes wrong in
every view (badge, inspector, Summary, status bar, exports)."""

from __future__ import annotations

import csv
import html
import random

from hypothesis import given
from hypothesis import strategies as st
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QGraphicsSceneHoverEvent

from cnnbuilder.core.blocks import ParamError
from cnnbuilder.core.commands import AddNode, Rename, SetParam
from cnnbuilder.core.graph import GraphError
from cnnbuilder.qt.arithmetic_view import UNKNOWN, arithmetic_lines
from cnnbuilder.qt.code_view import DEBOUNCE_MS
from cnnbuilder.qt.summary_view import FIELD_COL, HEADERS
from tests.fuzz import EXAMPLES, NASTY_TEXT, fuzz_settings, random_command

from .helpers import node_by_name

CONV1_H = "H, W: ⌊(28 − 5 + 2·2)/1⌋ + 1 = 28"
CONV2_BROKEN = "H: ⌊(14 − 30 + 2·2)/1⌋ + 1 = −11: the kernel is larger than the padded input"
WAIT = 20 * DEBOUNCE_MS


def select(window, name: str) -> str:
    nid = node_by_name(window.document.graph, name)
    window.document.set_selection([nid])
    assert window.inspector.node_id == nid
    return nid


def hover(scene, item) -> None:
    """What pointing at a block does: the scene sends it a hover-enter."""
    ev = QGraphicsSceneHoverEvent(QEvent.GraphicsSceneHoverEnter)
    ev.setScenePos(item.sceneBoundingRect().center())
    scene.sendEvent(item, ev)


def field_cell(panel, nid: str) -> str:
    m = panel.model
    return m.data(m.index(m.row_of(nid), FIELD_COL))


# -- the inspector ----------------------------------------------------------------------------------

def test_inspector_shows_how_the_numbers_come_out_and_follows_edits(window, qtbot):
    insp = window.inspector
    conv1 = select(window, "conv1")
    text = insp.arith.text()
    assert CONV1_H in text and "⌊(H − F + 2P)/S⌋ + 1" in text  # the user's numbers, and the general form
    assert "params: 16·(1·5·5) + 16 = 416" in text and "MACs: 16·28·28·(1·5·5) = 313600" in text
    assert "Receptive field</b> 5×5, jump 1" in text
    # readable: it wraps, and can be selected and copied
    assert insp.arith.wordWrap()
    assert insp.arith.textInteractionFlags() & Qt.TextSelectableByMouse
    insp.copy_arith.click()
    copied = QGuiApplication.clipboard().text().splitlines()
    assert copied == ["C = 16 (out_channels)", CONV1_H, "params: 16·(1·5·5) + 16 = 416",
                      "MACs: 16·28·28·(1·5·5) = 313600", "receptive field 5×5, jump 1"]

    # an edit shows after the debounce, per dimension where height and width differ
    insp.editors["kernel_size"].link.setChecked(False)
    insp.editors["kernel_size"].b.setValue(3)
    assert window.document.graph.node(conv1).params["kernel_size"] == (5, 3)
    assert insp.arith_timer.isActive() and CONV1_H in insp.arith.text()
    qtbot.waitUntil(lambda: "W: ⌊(28 − 3 + 2·2)/1⌋ + 1 = 30" in insp.arith.text(), timeout=WAIT)
    text = insp.arith.text()
    assert "H: ⌊(28 − 5 + 2·2)/1⌋ + 1 = 28" in text and "16·(1·5·3) + 16 = 256" in text
    assert "5×3, jump 1" in text
    window.document.undo_stack.undo()  # undo refreshes it like any view
    qtbot.waitUntil(lambda: CONV1_H in insp.arith.text(), timeout=WAIT)


def test_the_inspector_section_is_not_clipped(window, qtbot):
    insp = window.inspector
    window.resize(1100, 700)
    select(window, "conv1")
    qtbot.waitUntil(lambda: insp.arith.height() > 0)
    label = insp.arith
    qtbot.waitUntil(lambda: label.height() >= label.heightForWidth(label.width()), timeout=WAIT)
    assert label.width() <= insp.scroll.viewport().width()


def test_blocks_without_a_known_input_say_so(window, qtbot):
    doc = window.document
    assert doc.push(AddNode("Conv2d", {"out_channels": 4}, name="lone", pos=(600.0, 0.0))) is None
    select(window, "lone")
    assert "not known yet" in window.inspector.arith.text()
    assert not window.inspector.copy_arith.isEnabled()
    # a block waiting on a broken one has no input shape either
    doc.push(SetParam(node_by_name(doc.graph, "conv2"), "kernel_size", 30))
    select(window, "fc1")
    assert "not known yet" in window.inspector.arith.text()


def test_other_block_types_read_as_a_textbook_writes_them(window):
    select(window, "flatten1")
    assert "features: 32·7·7 = 1568" in window.inspector.arith.text()
    select(window, "relu1")
    assert "the output has the input's shape: 16×28×28" in window.inspector.arith.text()
    select(window, "pool2")
    assert "16×16, jump 4" in window.inspector.arith.text()


# -- the canvas tooltip -----------------------------------------------------------------------------

def test_pointing_at_a_block_shows_its_arithmetic_in_short(window):
    g = window.document.graph
    scene = window.scene
    item = scene.nodes[node_by_name(g, "conv1")]
    assert "⌊" not in item.toolTip()  # not worked out for every block on every edit
    hover(scene, item)
    tip = item.toolTip()
    assert "<b>conv1</b> (Conv2d)" in tip and CONV1_H in tip and "params: 16·(1·5·5) + 16 = 416" in tip
    assert "receptive field 5×5, jump 1" in tip
    relu = scene.nodes[node_by_name(g, "relu1")]
    hover(scene, relu)
    assert "shape: 16×28×28" in relu.toolTip()
    assert "params = 0" not in relu.toolTip() and "MACs = 0" not in relu.toolTip()  # the short form
    # a name that is markup shows as text
    window.document.push(Rename(node_by_name(g, "conv1"), "<i>x</i>"))
    hover(scene, item)
    assert "&lt;i&gt;x&lt;/i&gt;" in item.toolTip() and "<i>x</i>" not in item.toolTip()


# -- the Summary ------------------------------------------------------------------------------------

def test_summary_has_a_receptive_field_column_that_follows_edits(window, qtbot):
    panel = window.summary_panel
    g = window.document.graph
    assert HEADERS[FIELD_COL] == "Receptive field"
    assert "jump" in panel.model.headerData(FIELD_COL, Qt.Horizontal, Qt.ToolTipRole).lower()
    conv1, pool2, flatten = (node_by_name(g, n) for n in ("conv1", "pool2", "flatten1"))
    qtbot.waitUntil(lambda: field_cell(panel, conv1) == "5×5, jump 1", timeout=WAIT)
    assert field_cell(panel, pool2) == "16×16, jump 4" and field_cell(panel, flatten) == "—"
    window.document.push(SetParam(conv1, "kernel_size", [3, 3]))
    assert panel.field_timer.isActive()  # the whole-graph pass waits for the debounce
    qtbot.waitUntil(lambda: field_cell(panel, conv1) == "3×3, jump 1", timeout=WAIT)
    assert field_cell(panel, pool2) == "14×14, jump 4"


def test_summary_row_tooltip_shows_the_formulas(window, qtbot):
    panel = window.summary_panel
    m = panel.model
    conv1 = node_by_name(window.document.graph, "conv1")
    qtbot.waitUntil(lambda: field_cell(panel, conv1) != "", timeout=WAIT)
    tip = m.data(m.index(m.row_of(conv1), 0), Qt.ToolTipRole)
    assert CONV1_H in tip and "MACs: 16·28·28·(1·5·5) = 313600" in tip and "receptive field 5×5" in tip
    field_tip = m.data(m.index(m.row_of(conv1), FIELD_COL), Qt.ToolTipRole)
    assert "5×5, jump 1" in field_tip and "neighbouring output values" in field_tip


def test_summary_exports_carry_the_fields_and_the_failing_step(window, tmp_path):
    g = window.document.graph
    assert window.export_summary(tmp_path / "ok.csv")
    rows = list(csv.DictReader((tmp_path / "ok.csv").open(encoding="utf-8")))
    pool2 = next(r for r in rows if r["block"] == "pool2")
    assert (pool2["receptive_field"], pool2["jump"]) == ("16×16", "4")
    assert next(r for r in rows if r["block"] == "fc1")["receptive_field"] == ""
    window.document.push(SetParam(node_by_name(g, "conv2"), "kernel_size", 30))
    assert window.export_summary(tmp_path / "bad.csv")
    rows = list(csv.DictReader((tmp_path / "bad.csv").open(encoding="utf-8")))
    assert next(r for r in rows if r["block"] == "conv2")["error_arithmetic"] == CONV2_BROKEN
    assert window.export_summary(tmp_path / "bad.md")
    md = (tmp_path / "bad.md").read_text(encoding="utf-8")
    assert "| Receptive field |" in md and "| conv1 | Conv2d | 16×28×28 | 416 | 314 k | 49 KiB | 5×5, jump 1 |" in md
    assert f"- conv2: kernel 30×30 is larger than the padded input 18×18 (`{CONV2_BROKEN}`)" in md
    assert window.errors == []


# -- shape errors -----------------------------------------------------------------------------------

def test_an_arithmetic_error_shows_the_step_that_goes_wrong_in_every_view(window, qtbot):
    doc = window.document
    conv2 = select(window, "conv2")
    doc.push(SetParam(conv2, "kernel_size", 30))
    assert doc.verdict.errors[0].detail == CONV2_BROKEN
    assert doc.analysis.nodes[conv2].error == "kernel 30×30 is larger than the padded input 18×18"  # unchanged
    item = window.scene.nodes[conv2]
    assert CONV2_BROKEN in item.badge.toolTip()
    hover(window.scene, item)
    assert CONV2_BROKEN in item.toolTip()
    assert CONV2_BROKEN in window.inspector.problem.text()
    panel = window.summary_panel
    assert CONV2_BROKEN in panel.problems.item(0).text()
    m = panel.model
    assert CONV2_BROKEN in m.data(m.index(m.row_of(conv2), 2), Qt.ToolTipRole)
    assert CONV2_BROKEN in window.totals_label.toolTip()
    # the section shows the broken shape, not a parameter count built on it
    qtbot.waitUntil(lambda: "= −11" in window.inspector.arith.text(), timeout=WAIT)
    assert "MACs" not in window.inspector.arith.text()
    # fixed: gone everywhere
    doc.undo_stack.undo()
    assert not window.inspector.problem.isVisible()
    assert not item.badge.isVisible() and panel.problems.isHidden()


def test_an_error_that_is_not_arithmetic_gets_no_formula(window):
    doc = window.document
    conv2 = node_by_name(doc.graph, "conv2")
    doc.push(SetParam(conv2, "in_channels", 3))  # conv1 gives 16
    assert doc.verdict.errors and doc.verdict.errors[0].detail == ""
    assert "⌊" not in window.scene.nodes[conv2].badge.toolTip()
    assert "⌊" not in window.summary_panel.problems.item(0).text()


# -- hostile edits ----------------------------------------------------------------------------------

@given(seed=st.integers(0, 2**32), steps=st.integers(1, 12), example=st.sampled_from(EXAMPLES))
@fuzz_settings(default=8, long=300)
def test_random_edits_never_break_the_views(make_window, seed, steps, example):
    """Whatever the edits (nasty names, broken shapes, removed blocks): the inspector, the Summary and
    the tooltips show text, never a traceback, and agree with the core's arithmetic."""
    window = make_window(None, show=False)
    from cnnbuilder.core.project import load_project

    window.document.set_project(load_project(example))
    doc = window.document
    r = random.Random(seed)
    for _ in range(steps):
        try:
            doc.push(random_command(doc.graph, r))
        except (GraphError, ParamError):
            continue
        if r.random() < 0.3 and len(doc.graph):
            doc.push(Rename(r.choice([n.id for n in doc.graph]), r.choice(NASTY_TEXT)))
    ids = [n.id for n in doc.graph]
    if ids:
        nid = r.choice(ids)
        doc.set_selection([nid])
        window.inspector.show_arithmetic()
        b = doc.arithmetic(nid)
        text = window.inspector.arithmetic_text()
        assert text == (UNKNOWN if b is None else text) and text.splitlines()[0] == (
            UNKNOWN if b is None else arithmetic_lines(b)[0])
    window.summary_panel.update_fields()
    m = window.summary_panel.model
    for nid, item in window.scene.nodes.items():
        hover(window.scene, item)
        b = doc.arithmetic(nid)
        info = doc.analysis.nodes.get(nid)
        if b is not None and info is not None and info.error is None:
            first = html.escape(arithmetic_lines(b, short=True)[0], quote=False)
            assert first in item.toolTip() and first in m.data(m.index(m.row_of(nid), 0), Qt.ToolTipRole)
    window.close()

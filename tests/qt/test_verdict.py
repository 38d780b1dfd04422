"""One verdict, four views (issue 9, section 3): the canvas, the Summary, the status bar and the
code panel agree on errors (the model cannot run: red, code greyed) and warnings (valid, but it
does not fit the chosen data yet: amber, the shape line and the code stay live), through edits,
a change of the dataset, and undo/redo of the one-click fix."""

from __future__ import annotations

import re

from PySide6.QtCore import Qt

from cnnbuilder.core.commands import SetParam
from cnnbuilder.qt.summary_view import LEVEL_ROLE

from .helpers import node_by_name


def plain(label) -> str:
    return re.sub(r"<[^>]+>", "", label.text())


def views(w) -> dict:
    """What each of the four views says, in comparable terms."""
    w.code_panel.refresh()  # the preview follows edits after a short debounce
    canvas = {}
    for nid, item in w.scene.nodes.items():
        if item.badge.isVisible():
            canvas[nid] = item.badge.level
    s = w.summary_panel
    summary = [s.problems.item(i).data(LEVEL_ROLE) for i in range(s.problems.count())] if s.problems.isVisible() \
        else []
    code = w.code_panel
    return {
        "canvas": canvas,
        "summary": sorted(summary),
        "status": plain(w.totals_label).split(" · ", 3)[-1],
        "code_greyed": code._fade.isEnabled() or code.code() is None,
        "code_banner": plain(code.banner) if code.banner.isVisible() else "",
    }


def set_dataset(w, key: str) -> None:
    """As the user does: pick the dataset in the Training panel's form."""
    combo = w.training_panel._fields["dataset"][0]
    combo.setCurrentIndex(combo.findData(key))


def test_a_model_that_does_not_fit_the_data_warns_in_amber_everywhere(window):
    w = window
    doc = w.document
    inp = doc.analysis.input_id
    assert views(w)["status"] == "✓ valid"
    assert doc.push(SetParam(inp, "shape", [3, 32, 32])) is None  # shapes are 1×28×28
    v = views(w)
    assert v["canvas"] == {inp: "warning"}  # amber, not the red error badge
    item = w.scene.nodes[inp]
    assert "1×28×28" in item.state.warning and item.state.error is None
    assert item.state.shape == "3×32×32" and item._text[2] == "→ 3×32×32"  # the live shape line stays
    assert "1×28×28" in item.badge.toolTip()
    assert v["status"] == "✓ valid · ⚠ 1 warning"
    assert v["summary"] == ["warning"]
    assert "1×28×28" in w.summary_panel.problems.item(0).text()
    assert "1 warning" in plain(w.summary_panel.problems_label)
    assert not v["code_greyed"] and "class Net" in w.code_panel.code()
    assert "1 warning" in v["code_banner"] and "the code is valid" in v["code_banner"]
    doc.set_selection([inp])
    assert w.inspector.problem.isVisibleTo(w.inspector) and "Warning" in w.inspector.problem.text()


def test_summary_exports_carry_the_warnings(window, tmp_path):
    w = window
    doc = w.document
    inp = doc.analysis.input_id
    doc.push(SetParam(inp, "shape", [3, 32, 32]))  # a warning: the built-in shapes are 1×28×28
    assert w.export_summary(tmp_path / "s.csv") and w.export_summary(tmp_path / "s.md")
    import csv

    rows = list(csv.DictReader((tmp_path / "s.csv").open(encoding="utf-8")))
    warned = [r for r in rows if r["warning"]]
    assert len(warned) == 1 and warned[0]["block"] == doc.graph.node(inp).label and "1×28×28" in warned[0]["warning"]
    md = (tmp_path / "s.md").read_text(encoding="utf-8")
    assert "Warnings" in md and "1×28×28" in md.split("Warnings", 1)[1]


def test_a_real_error_is_red_greys_the_code_and_counts_as_an_error(window):
    w = window
    conv2 = node_by_name(w.document.graph, "conv2")
    w.document.push(SetParam(conv2, "kernel_size", 30))
    v = views(w)
    assert v["canvas"] == {conv2: "error"}
    assert w.scene.nodes[conv2].state.shape == "" and "kernel" in w.scene.nodes[conv2]._text[2]
    assert v["status"] == "✗ 1 error" and v["summary"] == ["error"]
    assert v["code_greyed"] and "problems" in v["code_banner"]


def test_newest_block_of_a_growing_chain_keeps_its_shape_line(window):
    # Building a chain: the last block does not end in 10 classes yet. That is a warning (amber,
    # shape shown), never a red "!" that replaces the shape.
    w = window
    pool2 = node_by_name(w.document.graph, "pool2")
    for n in [n for n in w.document.graph if n.type in ("Flatten", "Linear")]:
        w.document.set_selection([n.id])
        w.edit_actions.delete()
    w.document.set_selection([pool2])
    new = w.edit_actions.append_block("Flatten")
    item = w.scene.nodes[new]
    assert item.badge.isVisible() and item.badge.level == "warning"
    assert item.state.error is None and item._text[2] == f"→ {item.state.shape}" and item.state.shape
    assert "10 values" in item.state.warning
    assert views(w)["status"] == "✓ valid · ⚠ 1 warning"


def test_changing_the_dataset_updates_all_four(window):
    w = window
    set_dataset(w, "cifar100")  # 3×32×32 images, 100 classes: Input and fc1 do not fit
    assert w.document.project.training["dataset"] == "cifar100"
    g = w.document.graph
    inp, fc1 = w.document.analysis.input_id, node_by_name(g, "fc1")
    v = views(w)
    assert v["canvas"] == {inp: "warning", fc1: "warning"}
    assert v["status"] == "✓ valid · ⚠ 2 warnings" and v["summary"] == ["warning", "warning"]
    assert not v["code_greyed"] and "2 warnings" in v["code_banner"] and "CIFAR-100" in v["code_banner"]
    set_dataset(w, "mnist")
    v = views(w)
    assert v == {"canvas": {}, "summary": [], "status": "✓ valid", "code_greyed": False, "code_banner": ""}


def test_undo_and_redo_of_the_fix_update_all_four(window):
    w = window
    doc = w.document
    set_dataset(w, "cifar10")
    inp = doc.analysis.input_id
    warned = views(w)
    assert warned["canvas"] == {inp: "warning"} and warned["status"] == "✓ valid · ⚠ 1 warning"
    banner = w.training_panel.fit_frame
    assert banner.isVisibleTo(w.training_panel)
    fix = next(b for b in banner.buttons() if b.text() == "Set Input to 3×32×32")
    fix.click()
    clean = {"canvas": {}, "summary": [], "status": "✓ valid", "code_greyed": False, "code_banner": ""}
    assert doc.graph.node(inp).params["shape"] == (3, 32, 32) and views(w) == clean
    assert not banner.isVisibleTo(w.training_panel)
    w.act_undo.trigger()
    assert views(w) == warned and banner.isVisibleTo(w.training_panel)
    w.act_redo.trigger()
    assert views(w) == clean and not banner.isVisibleTo(w.training_panel)


def test_a_missing_image_folder_is_a_warning_without_a_block(window, tmp_path):
    w = window
    w.training_panel.settings_form.set_values(data_root=str(tmp_path / "gone"))
    set_dataset(w, "folder")
    v = views(w)
    assert v["canvas"] == {} and v["status"] == "✓ valid · ⚠ 1 warning" and v["summary"] == ["warning"]
    assert "does not exist" in w.summary_panel.problems.item(0).text()
    assert w.summary_panel.problems.item(0).data(Qt.UserRole + 1) is None  # nothing to select
    assert not w.training_panel.start() and "does not exist" in w.training_panel.error_label.text()

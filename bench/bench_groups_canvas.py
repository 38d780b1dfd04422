"""The canvas with collapsible groups on the DenseNet-121 template (428 blocks) as it comes, grouped
as torchvision's modules: `features` holding the dense blocks and transitions, each dense block
holding its dense layers (66 groups). Prints medians.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_groups_canvas.py

What is timed (goals from issue 12: open ≤ 1 s, edit → all views ≤ 50 ms):
  open        File ▸ Open of the grouped project until the top level is painted
  scope       opening features (7 collapsed groups) / denseblock3 (24 collapsed layers) / one
              dense layer inside it / the top level again, painted
  pan         one repaint after scrolling 40 px at 100 %, at the top level and inside denseblock3
  edit        a parameter edit inside an open dense layer until canvas, summary and code preview
              are updated (the code preview's debounce timer fired by hand)
  group       Ctrl+G of 6 blocks in the open dense layer, its undo and redo (canvas rebuilt)
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
_tmp = tempfile.TemporaryDirectory(prefix="cnnbuilder-bench-")
os.environ["CNNBUILDER_DATA_DIR"] = str(Path(_tmp.name) / "data")

from PySide6.QtCore import QSettings  # noqa: E402

QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(Path(_tmp.name) / "settings"))

from PySide6.QtWidgets import QApplication  # noqa: E402

from cnnbuilder.core.architectures import ARCHITECTURES  # noqa: E402
from cnnbuilder.core.commands import SetParam  # noqa: E402
from cnnbuilder.core.project import save_project  # noqa: E402
from cnnbuilder.qt.main_window import MainWindow  # noqa: E402
from cnnbuilder.qt.theme import apply_theme  # noqa: E402


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_theme(app, "light")
    project = ARCHITECTURES["densenet121"].project()
    path = Path(_tmp.name) / "densenet.json"
    save_project(project, path)
    g0 = project.graph
    window = MainWindow()
    window.resize(1600, 1000)
    window.show()
    app.processEvents()
    view, doc, scene = window.view, window.document, window.scene

    flat = Path(_tmp.name) / "densenet-flat.json"
    ungrouped = ARCHITECTURES["densenet121"].project()
    while ungrouped.graph.groups:
        ungrouped.graph.remove_group(ungrouped.graph.groups[0].id)
    save_project(ungrouped, flat)

    def timed_opens(file: Path) -> list[float]:
        out = []
        for _ in range(5):
            t = time.perf_counter()
            assert window.open_path(file)
            app.processEvents()
            view.viewport().grab()
            out.append(time.perf_counter() - t)
        return out

    flat_opens = timed_opens(flat)
    opens = timed_opens(path)
    top_items = len(scene.nodes) + len(scene.groups)
    g = doc.graph
    features = next(grp.id for grp in g.groups if grp.name == "features")
    block3 = next(grp.id for grp in g.groups if grp.name == "denseblock3")
    layer = next(grp.id for grp in g.groups if grp.parent == block3)

    def timed_scope(gid) -> float:
        t = time.perf_counter()
        scene.set_scope(gid)
        app.processEvents()
        view.viewport().grab()
        return time.perf_counter() - t

    feature_opens, block_opens, layer_opens, tops = [], [], [], []
    for _ in range(5):
        feature_opens.append(timed_scope(features))
        block_opens.append(timed_scope(block3))
        layer_opens.append(timed_scope(layer))
        tops.append(timed_scope(None))
    def pan_repaints(n: int = 30) -> list[float]:
        view.set_zoom(1.0)
        view.centerOn(scene.blocks_rect().center())
        view.viewport().grab()
        out = []
        for i in range(n):
            view.pan_by(0, 40 if i % 10 < 5 else -40)
            t = time.perf_counter()
            view.viewport().grab()
            out.append(time.perf_counter() - t)
        return out

    scene.set_scope(None)
    pans_top = pan_repaints()
    scene.set_scope(block3)
    pans_block = pan_repaints()
    scene.set_scope(layer)
    conv = next(n for n in g.group_nodes(layer) if g.node(n).type == "Conv2d" and g.node(n).name.endswith("conv2"))

    def timed_edits() -> tuple[list[float], list[float]]:
        sync, total = [], []
        for k in range(15):
            t = time.perf_counter()
            assert doc.push(SetParam(conv, "out_channels", 32 if k % 2 else 48)) is None
            sync.append(time.perf_counter() - t)  # canvas (groups included), summary, inspector
            window.code_panel.refresh()  # what the code preview's debounce timer does 100 ms later
            total.append(time.perf_counter() - t)
        return sync, total

    edits_sync, edits = timed_edits()
    doc.push(SetParam(conv, "out_channels", 32))
    scene.set_scope(None)
    top_sync, top_edits = timed_edits()
    scene.set_scope(layer)
    groups, undos, redos = [], [], []
    members = [n for n in g.group_nodes(layer) if g.node(n).type != "Concat"]
    for _ in range(5):
        doc.set_selection(members)
        t = time.perf_counter()
        assert scene.group_selection() is not None
        groups.append(time.perf_counter() - t)
        t = time.perf_counter()
        doc.undo_stack.undo()
        undos.append(time.perf_counter() - t)
        t = time.perf_counter()
        doc.undo_stack.redo()
        redos.append(time.perf_counter() - t)
        doc.undo_stack.undo()

    print(f"cnnbuilder groups benchmark: DenseNet-121, {len(g0)} blocks, {len(g0.edges)} edges, "
          f"{len(g0.groups)} groups; the top level shows {top_items} items")
    print(f"  open file -> top level painted            {median_ms(opens):7.1f} ms   (goal ≤ 1000)")
    print(f"  the same model without groups, for scale  {median_ms(flat_opens):7.1f} ms   (all 428 blocks drawn)")
    print(f"  open features (7 groups) -> painted       {median_ms(feature_opens):7.1f} ms")
    print(f"  open denseblock3 (24 layers) -> painted   {median_ms(block_opens):7.1f} ms")
    print(f"  open one dense layer -> painted           {median_ms(layer_opens):7.1f} ms")
    print(f"  back to the top level -> painted          {median_ms(tops):7.1f} ms")
    print(f"  pan 40 px at 100 % -> repainted, top      {median_ms(pans_top):7.1f} ms   (editor goal ≤ 16)")
    print(f"  ... inside denseblock3 (24 layers)        {median_ms(pans_block):7.1f} ms")
    print(f"  edit inside a layer -> canvas+summary     {median_ms(edits_sync):7.1f} ms")
    print(f"  ... -> +code preview (all views)          {median_ms(edits):7.1f} ms   (goal ≤ 50)")
    print(f"  the same edit, top level shown            {median_ms(top_sync):7.1f} ms")
    print(f"  ... -> +code preview (all views)          {median_ms(top_edits):7.1f} ms   (goal ≤ 50)")
    print(f"  Ctrl+G of 6 blocks                        {median_ms(groups):7.1f} ms")
    print(f"  undo / redo of it                         {median_ms(undos):7.1f} / {median_ms(redos):.1f} ms")
    doc.undo_stack.setClean()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

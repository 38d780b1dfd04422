"""Architecture templates benchmark: how long File ▸ New takes to put DenseNet-121 (428 blocks, the
largest template) in the editor, and what the gallery costs. Prints medians.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_templates.py

What is timed:
  build        core only: build DenseNet-121's graph, lay it out, analyse it (Architecture.project)
  open         File ▸ New with DenseNet-121 picked: the template's project (built, analysed, training
               settings fitted) set as the document until the canvas is painted           (≤ 1 s)
  open file    the same project saved, then File ▸ Open until the canvas is painted        (≤ 1 s)
  edit         one Input-size edit until canvas, summary and code preview are updated (the
               preview's debounce fired by hand)                                          (≤ 50 ms)
  reference    File ▸ Open of bench_gui.py's 500-block residual chain in the same run, whose figure
               is in docs/benchmarks.md, so a loaded machine shows as a ratio
  gallery      the New-project dialog shown (figures of every template), then all thumbnails (the
               first time; they are kept for the next)
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
os.environ["CNNBUILDER_DATA_DIR"] = str(Path(_tmp.name) / "data")  # never touch the user's autosaves

from PySide6.QtCore import QSettings  # noqa: E402

QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(Path(_tmp.name) / "settings"))

from PySide6.QtWidgets import QApplication  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_gui import residual_chain  # noqa: E402

from cnnbuilder.core.architectures import ARCHITECTURES  # noqa: E402
from cnnbuilder.core.commands import SetParam  # noqa: E402
from cnnbuilder.core.project import Project, save_project  # noqa: E402
from cnnbuilder.qt.main_window import MainWindow  # noqa: E402
from cnnbuilder.qt.templates import TemplateDialog, templates  # noqa: E402
from cnnbuilder.qt.theme import apply_theme  # noqa: E402


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_theme(app, "light")
    window = MainWindow()
    window.resize(1600, 1000)
    window.show()
    app.processEvents()
    view, doc = window.view, window.document
    panel = window.training_panel  # let start-up's torch import in the worker finish first
    deadline = time.perf_counter() + 30
    while panel.device_label.text().endswith("detecting…") and time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.01)

    arch = ARCHITECTURES["densenet121"]
    template = next(t for t in templates() if t.key == "densenet121")
    builds, opens, file_opens = [], [], []
    for _ in range(5):
        t = time.perf_counter()
        arch.project()
        builds.append(time.perf_counter() - t)
    for _ in range(5):
        t = time.perf_counter()
        project = template.project()  # what TemplateDialog.selected_project hands to File ▸ New
        doc.set_project(project)
        app.processEvents()
        view.viewport().grab()  # the first paint of the canvas
        opens.append(time.perf_counter() - t)
    n_blocks, n_edges = len(doc.graph), len(doc.graph.edges)
    path = Path(_tmp.name) / "densenet121.json"
    save_project(template.project(), path)
    reference, ref_opens = Path(_tmp.name) / "residual500.json", []
    save_project(Project(graph=residual_chain(500), name="bench 500"), reference)
    for _ in range(5):
        for target, times in ((reference, ref_opens), (path, file_opens)):  # alternated: same load for both
            t = time.perf_counter()
            assert window.open_path(target)
            app.processEvents()
            view.viewport().grab()
            times.append(time.perf_counter() - t)

    def input_edits(shapes) -> list[float]:
        inp = doc.analysis.input_id
        doc.set_selection([inp])
        out = []
        for k in range(11):
            t = time.perf_counter()
            assert doc.push(SetParam(inp, "shape", shapes[k % 2])) is None
            window.code_panel.refresh()  # what the debounce timer does 100 ms later
            out.append(time.perf_counter() - t)
        return out

    edits = input_edits([(3, 224, 224), (3, 192, 192)])  # the last file opened: DenseNet-121
    assert window.open_path(reference)
    ref_edits = input_edits([(16, 34, 32), (16, 36, 32)])  # as bench_gui.py edits it

    dialogs, thumbs = [], []
    for _ in range(3):  # the first time draws the thumbnails; later dialogs reuse them
        t = time.perf_counter()
        dialog = TemplateDialog(window)
        dialog.show()
        app.processEvents()
        dialogs.append(time.perf_counter() - t)
        t = time.perf_counter()
        dialog.finish_thumbnails()
        thumbs.append(time.perf_counter() - t)
        dialog.close()
        dialog.deleteLater()
        app.processEvents()

    print(f"cnnbuilder templates benchmark: DenseNet-121, {n_blocks} blocks, {n_edges} edges; window "
          f"{window.width()}×{window.height()}, platform {app.platformName()}")
    print(f"  build + lay out + analyse (core)          {median_ms(builds):7.1f} ms")
    print(f"  File ▸ New (DenseNet-121) -> painted      {median_ms(opens):7.1f} ms   (goal ≤ 1000)")
    print(f"  File ▸ Open (saved copy) -> painted       {median_ms(file_opens):7.1f} ms   (goal ≤ 1000)")
    print(f"  ... bench_gui's 500-block chain, same run {median_ms(ref_opens):7.1f} ms   "
          f"(DenseNet / chain = {median_ms(file_opens) / median_ms(ref_opens):.2f})")
    print(f"  edit Input size -> canvas+summary+code    {median_ms(edits):7.1f} ms   (goal ≤ 50)")
    print(f"  ... bench_gui's 500-block chain, same run {median_ms(ref_edits):7.1f} ms   "
          f"(DenseNet / chain = {median_ms(edits) / median_ms(ref_edits):.2f})")
    print(f"  New-project dialog shown ({len(templates())} templates)   {median_ms(dialogs):7.1f} ms")
    print(f"  ... then all its thumbnails drawn         {thumbs[0] * 1000:7.1f} ms   (after it shows; "
          f"{median_ms(thumbs[1:]):.1f} ms the next times)")
    doc.undo_stack.setClean()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

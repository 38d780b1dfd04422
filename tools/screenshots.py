"""Screenshots for the user guide (docs/screenshots/), taken from the real app.

    xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python tools/screenshots.py

Opens the ResNet example, selects its strided convolution and saves:
  arithmetic.png         the inspector showing how block2_conv1's output size, parameter count and
                         MACs come out, and its receptive field, beside the block's canvas tooltip
Then makes one deliberate error (block2_conv2 gives 24 channels, so the Add after it gets 24 and
32), selects that block, lets the debounce timers fire, and saves:
  main-window.png        the whole window, light theme
  main-window-dark.png   the same in the dark theme
  error-badge.png        an error beside a warning: the Add block that cannot work (red) and, before
                         the mistake, the Input block that does not fit the built-in 1×28×28 data
                         (amber), each with its tooltip and the status bar's verdict
  new-project.png        the File ▸ New template gallery, scrolled to the famous architectures, with
                         ResNet-18 picked at its CIFAR-10 size: figures, size choice and note
  import-dialog.png      File ▸ Import ▸ PyTorch module…: a class picked from a Python file (found by
                         parsing it), constructor arguments, input shape, weights carried over, and a
                         refusal as the importer words one (set directly: the shot runs no import)
  model-notes.png        the inspector with nothing selected after opening the ResNet-18 template: its note
  start-from.png         the Training settings' "Start from (fine-tuning)" weights file
  split-block.png        a ShuffleNet unit with squeeze-excite: a Chunk's two numbered outputs feeding
                         a branch and a Concat, then ChannelShuffle and a Hardsigmoid gate into Mul
  groups.png             the ResNet example with each residual block grouped (Ctrl+G): two collapsed
                         blocks with their ports, output shape and parameters; one selected in the
                         inspector
  group-open.png         the second group opened (double-click): its blocks, the values from and to
                         outside as stubs, and the breadcrumb bar above the canvas
Then trains the MNIST tutorial CNN on the built-in shapes data (F5: the Train workspace) and saves:
  train-1600.png         the Train workspace at 1600×1000: curves, canvas and settings on the left
  train-dark.png         the same in the dark theme
  design-1600.png        the Design workspace at 1600×1000, after that run
  design-1280.png        the Design workspace at 1280×720
  train-1280.png         the Train workspace at 1280×720
  feature-maps.png       conv1's output channels after the run (Train workspace, 1280×720)
  evaluation.png         test accuracy, confusion matrix with precision and recall (Train, 1280×720)
  look-inside.png        the Filters tab (conv1's kernels and weight histogram) beside the Predict tab
                         (a test sample, its top-5 classes and Grad-CAM at the last convolution)
Then trains it again with rotation ±30° and crop padding 4 (2 epochs, 1600×1000) and saves:
  mistakes.png           Evaluation after "Most confident mistakes": the gallery under the matrix
  augment-preview.png    the data settings with the augmentation preview turned on
  activations.png        the Summary's Activations column (sparklines, dead share after ReLU)
Settings and autosaves go to a temporary directory, never to the user's.
Name shots on the command line (`tools/screenshots.py split-block arithmetic`) to take only those.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
_tmp = tempfile.TemporaryDirectory(prefix="cnnbuilder-shots-")
os.environ["CNNBUILDER_DATA_DIR"] = str(Path(_tmp.name) / "data")

from PySide6.QtCore import QEventLoop, QPoint, QPointF, QRect, QRectF, QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPixmap  # noqa: E402

QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(Path(_tmp.name) / "settings"))

from PySide6.QtWidgets import QApplication, QToolTip  # noqa: E402

from cnnbuilder.core.commands import SetParam  # noqa: E402
from cnnbuilder.core.project import load_project  # noqa: E402
from cnnbuilder.qt.app import create_app  # noqa: E402
from cnnbuilder.qt.document import Document  # noqa: E402
from cnnbuilder.qt.main_window import MainWindow  # noqa: E402
from cnnbuilder.qt.templates import TemplateDialog  # noqa: E402

W, H = 1600, 1000


def settle(ms: int = 400) -> None:
    """Run the event loop for a while: debounce timers fire, layouts and paints finish."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def badge_crop(app, window, node_id: str) -> QPixmap:
    """The block, the block under it and its badge's tooltip, as a user hovering the badge sees them."""
    view = window.view
    item = window.scene.nodes[node_id]
    view.centerOn(item.center() + QPointF(220, 0))  # room for the tooltip
    settle(200)
    vp = view.viewport()
    at = vp.mapToGlobal(view.mapFromScene(item.badge.scenePos()))
    QToolTip.showText(at + QPoint(6, 10), item.badge.toolTip(), vp)
    settle(600)
    node_rect = view.mapFromScene(item.sceneBoundingRect()).boundingRect()
    top_left = vp.mapToGlobal(node_rect.topLeft()) - QPoint(40, 40)
    crop = QRect(top_left, vp.mapToGlobal(node_rect.bottomRight()) + QPoint(40, 120))  # + the block below
    for tip in (w for w in QApplication.topLevelWidgets() if w.inherits("QTipLabel") and w.isVisible()):
        crop = crop.united(tip.frameGeometry().adjusted(-8, -8, 8, 8))
    crop = crop.intersected(QRect(vp.mapToGlobal(QPoint(0, 0)), vp.size()))  # the canvas only
    shot = app.primaryScreen().grabWindow(0, crop.x(), crop.y(), crop.width(), crop.height())
    QToolTip.hideText()
    settle(100)
    return shot


def side_by_side(panels: list[tuple[str, QPixmap, QPixmap]]) -> QImage:
    """Captioned columns: a title, the canvas crop, and the status bar's verdict under it."""
    font = QFont(QApplication.font())
    font.setBold(True)
    pad, cap = 12, 28
    width = sum(max(shot.width(), status.width()) for _, shot, status in panels) + pad * (len(panels) + 1)
    height = max(shot.height() + status.height() for _, shot, status in panels) + cap + pad * 3
    img = QImage(width, height, QImage.Format_ARGB32)
    img.fill(QColor("#ffffff"))
    p = QPainter(img)
    p.setFont(font)
    x = pad
    for title, shot, status in panels:
        p.setPen(QColor("#1d2127"))
        p.drawText(QRectF(x, pad, shot.width(), cap), Qt.AlignLeft | Qt.AlignVCenter, title)
        p.drawPixmap(x, pad + cap, shot)
        p.drawPixmap(x, pad * 2 + cap + shot.height(), status)
        x += max(shot.width(), status.width()) + pad
    p.end()
    return img


def train_mnist(window):
    """The tutorial CNN trained on the built-in shapes, conv1 selected for its feature maps and filters."""
    mnist = load_project(ROOT / "resources" / "examples" / "mnist_cnn.json")
    mnist.path = Path(_tmp.name) / "mnist_cnn.json"  # its run is kept beside it: in the temporary folder
    window.document.set_project(mnist)
    window.document.set_training({"dataset": "shapes", "epochs": 3, "batch_size": 64, "lr": 0.002,
                                  "shapes_train": 6000, "shapes_test": 1000})
    window.document.set_selection([mnist.graph.find("conv1").id])
    settle()
    assert window.train(), window.training_panel.error_label.text()  # F5: switches to the Train workspace
    panel = window.training_panel
    while panel.is_running():
        settle(200)
    settle(1200)  # the last plot refresh
    return panel


def until(condition, timeout_ms: int = 30_000) -> None:
    waited = 0
    while not condition() and waited < timeout_ms:
        settle(100)
        waited += 100


def look_inside(window) -> None:
    """The Filters and Predict tabs after the run, side by side (Train workspace, 1600×1000)."""
    panel = window.training_panel
    window.resize(W, H)
    window.set_workspace("train")
    settle(600)
    panel.tabs.setCurrentWidget(panel.filters)
    until(lambda: panel.filters.frames > 0)
    settle(300)
    filters = panel.tabs.grab()
    panel.tabs.setCurrentWidget(panel.predict)
    panel.predict.pick_sample(7)
    until(lambda: panel.predict.frames > 0 or panel.predict.message.text() not in ("", "Computing…"))
    settle(300)
    predict = panel.tabs.grab()
    pad = 12
    img = QImage(filters.width() + predict.width() + pad * 3, max(filters.height(), predict.height()) + pad * 2,
                 QImage.Format_ARGB32)
    img.fill(QColor("#ffffff"))
    p = QPainter(img)
    p.drawPixmap(pad, pad, filters)
    p.drawPixmap(filters.width() + pad * 2, pad, predict)
    p.end()
    img.save(str(OUT / "look-inside.png"))


def shuffle_se_project():
    """A ShuffleNetV2 unit with a squeeze-excite gate, laid out as Auto-layout would."""
    from cnnbuilder.core.graph import Graph
    from cnnbuilder.core.project import Project
    from cnnbuilder.qt.canvas.layout import layered_layout

    g = Graph()

    def chain(src, *blocks, port=0):
        for t, p in blocks:
            n = g.add_node(t, p).id
            g.connect(src, n, port=port)
            src, port = n, 0
        return src

    x = g.add_node("Input", {"shape": [3, 32, 32]}).id
    stem = chain(x, ("Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}))
    split = chain(stem, ("Chunk", {"chunks": 2}))
    branch = chain(split, ("Conv2d", {"out_channels": 8, "kernel_size": 1}), ("ReLU", {}),
                   ("Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": 1, "groups": 8}), ("BatchNorm2d", {}),
                   port=1)
    cat = g.add_node("Concat", {}).id
    g.connect(split, cat, port=0)
    g.connect(branch, cat)
    shuffle = chain(cat, ("ChannelShuffle", {"groups": 2}))
    gate = chain(shuffle, ("AdaptiveAvgPool2d", {"output_size": 1}), ("Flatten", {}), ("Linear", {"out_features": 4}),
                 ("ReLU", {}), ("Linear", {"out_features": 16}), ("Hardsigmoid", {}), ("Unflatten", {}))
    mul = g.add_node("Mul", {}).id
    g.connect(shuffle, mul)
    g.connect(gate, mul)
    chain(mul, ("AdaptiveAvgPool2d", {"output_size": 1}), ("Flatten", {}), ("Linear", {"out_features": 10}))
    for nid, pos in layered_layout(g).items():
        g.move(nid, pos)
    return Project(graph=g, name="ShuffleNet unit with squeeze-excite", path=Path(_tmp.name) / "shuffle.json")


def split_block(window) -> None:
    window.document.set_project(shuffle_se_project())
    g = window.document.graph
    split = next(n.id for n in g if n.type == "Chunk")
    window.document.set_selection([split])
    window.view.set_zoom(0.62)
    window.view.centerOn(window.scene.nodes[split].center() + QPointF(120, 430))
    settle()
    window.view.grab().save(str(OUT / "split-block.png"))


def groups_shots(window) -> None:
    """The ResNet example with its two residual blocks grouped, then the second one opened."""
    from cnnbuilder.core.commands import GroupBlocks

    project = load_project(ROOT / "resources" / "examples" / "resnet_small.json")
    project.path = Path(_tmp.name) / "resnet_small.json"
    window.document.set_project(project)
    doc, g = window.document, window.document.graph
    ids = {n.name: n.id for n in g}
    for name, first, last in (("block1", 5, 11), ("block2", 12, 19)):
        doc.push(GroupBlocks([f"n{k}" for k in range(first, last + 1)], name=name))
    # The top level reads as a short chain once the blocks are collapsed: Auto-layout (Ctrl+L).
    block1, block2 = (grp.id for grp in g.groups)
    window.edit_actions.auto_layout()
    window.scene.select_group(block2)
    window.view.fit(max_zoom=1.0)
    settle()
    window.grab().save(str(OUT / "groups.png"))
    window.scene.set_scope(block2)
    doc.set_selection([ids["block2_down"]])
    settle()
    window.grab().save(str(OUT / "group-open.png"))


def arithmetic_shot(app, window, node_id: str) -> QImage:
    """The inspector dock showing the block's arithmetic, and beside it the block on the canvas with
    the tooltip a user sees when pointing at it."""
    window.document.set_selection([node_id])
    settle()
    dock = window.docks["inspector_dock"]
    bar = window.inspector.scroll.verticalScrollBar()
    bar.setValue(bar.maximum())  # the section sits under the form, as a user scrolls to it
    settle(100)
    inspector = dock.grab()
    bar.setValue(0)
    view = window.view
    item = window.scene.nodes[node_id]
    view.centerOn(item.center() + QPointF(200, 60))
    settle(200)
    vp = view.viewport()
    item._set_tooltip(True)  # what hovering does
    at = vp.mapToGlobal(view.mapFromScene(item.sceneBoundingRect().bottomLeft()))
    QToolTip.showText(at + QPoint(10, 10), item.toolTip(), vp)
    settle(600)
    node_rect = view.mapFromScene(item.sceneBoundingRect()).boundingRect()
    crop = QRect(vp.mapToGlobal(node_rect.topLeft()) - QPoint(20, 20), vp.mapToGlobal(node_rect.bottomRight()))
    for tip in (w for w in QApplication.topLevelWidgets() if w.inherits("QTipLabel") and w.isVisible()):
        crop = crop.united(tip.frameGeometry().adjusted(-8, -8, 8, 8))
    crop = crop.intersected(QRect(vp.mapToGlobal(QPoint(0, 0)), vp.size()))
    canvas = app.primaryScreen().grabWindow(0, crop.x(), crop.y(), crop.width(), crop.height())
    QToolTip.hideText()
    settle(100)
    pad = 12
    img = QImage(inspector.width() + canvas.width() + 3 * pad, max(inspector.height(), canvas.height()) + 2 * pad,
                 QImage.Format_ARGB32)
    img.fill(QColor("#ffffff"))
    p = QPainter(img)
    p.drawPixmap(pad, pad, inspector)
    p.drawPixmap(inspector.width() + 2 * pad, pad, canvas)
    p.end()
    return img


def new_project_shot(window) -> None:
    dialog = TemplateDialog(window)
    dialog.resize(dialog.width(), dialog.height() + 194)  # one more row: every architecture in view
    dialog.show()
    dialog.select("resnet18", 1)
    dialog.finish_thumbnails()
    settle()
    dialog.list.scrollToItem(dialog.list.item(dialog.list.count() - 1))
    settle()
    dialog.grab().save(str(OUT / "new-project.png"))
    dialog.close()

IMPORT_SOURCE = """\
import torch.nn as nn


class BasicBlock(nn.Module):
    def __init__(self, channels, stride=1):
        super().__init__()
        ...


class SmallResNet(nn.Module):
    def __init__(self, num_classes=1000, width=64):
        super().__init__()
        ...
"""


def import_shots(window) -> None:
    """The import dialog, then the template note in the inspector and the Start from setting."""
    from cnnbuilder.qt.import_dialog import ImportDialog
    from cnnbuilder.qt.templates import templates

    folder = Path(_tmp.name) / "import"
    folder.mkdir(exist_ok=True)
    (folder / "small_resnet.py").write_text(IMPORT_SOURCE)
    dialog = ImportDialog(window, folder=folder)
    dialog.file_radio.setChecked(True)
    dialog.file_edit.setText(str(folder / "small_resnet.py"))
    dialog.scan_file()
    dialog.class_combo.setCurrentText("SmallResNet")
    dialog.args_edit.setText('{"num_classes": 10}')
    dialog.input_edit.setText("3x32x32")
    dialog.carry.setChecked(True)
    dialog._say("small_resnet.py, line 21: `if x.mean() > 0:` decides on the value of a tensor: torch.fx cannot "
                "trace Python control flow that depends on the input. Write it with torch.where, or import the "
                "blocks before it.", error=True)
    dialog.show()
    settle()
    dialog.grab().save(str(OUT / "import-dialog.png"))
    dialog.close()

    resnet = next(t for t in templates() if t.key == "resnet18")
    before = window.document.project
    window.document.set_project(resnet.project(1))
    window.resize(W, H)
    settle()
    window.docks["inspector_dock"].grab().save(str(OUT / "model-notes.png"))
    window.document.set_training({**window.document.project.training, "init_weights": "resnet18-weights.pt"})
    panel = window.training_panel
    settle()
    box = panel.settings_form.boxes["Start from (fine-tuning)"]
    panel.settings_scroll.ensureWidgetVisible(box)
    settle(200)
    box.grab().save(str(OUT / "start-from.png"))
    window.document.set_project(before)
    settle()


INSPECT_SHOTS = ("mistakes.png", "augment-preview.png", "activations.png")


def inspect_shots(window) -> None:
    """A short real run on the built-in shapes with augmentation, then the views that look inside it."""
    mnist = load_project(ROOT / "resources" / "examples" / "mnist_cnn.json")
    mnist.path = Path(_tmp.name) / "mnist_augmented.json"
    window.resize(W, H)
    window.document.set_project(mnist)
    window.document.set_training({"dataset": "shapes", "epochs": 2, "batch_size": 64, "lr": 0.002,
                                  "shapes_train": 3000, "shapes_test": 600, "rotation": 30.0, "crop_padding": 4})
    settle()
    assert window.train(), window.training_panel.error_label.text()
    panel = window.training_panel
    while panel.is_running():
        settle(200)
    settle(800)
    ev = panel.evaluation
    panel.tabs.setCurrentWidget(ev)
    settle(200)
    ev.mistakes_button.click()
    for _ in range(100):
        if ev.gallery.count():
            break
        settle(100)
    settle(400)
    window.grab().save(str(OUT / "mistakes.png"))

    preview = panel.augment_preview
    preview.setChecked(True)
    for _ in range(100):
        if preview.tiles[0].pixmap() is not None and not preview.tiles[0].pixmap().isNull():
            break
        settle(100)
    panel.settings_scroll.ensureWidgetVisible(preview)
    settle(300)
    panel.settings_scroll.grab().save(str(OUT / "augment-preview.png"))
    preview.setChecked(False)  # the temporary settings remember it; nothing else to undo

    window.set_workspace("design")
    settle(600)
    window.summary_panel.grab().save(str(OUT / "activations.png"))
    window.set_workspace("train")
    settle(200)


def main() -> int:
    only = set(sys.argv[1:])
    app = create_app(sys.argv[:1])
    OUT.mkdir(parents=True, exist_ok=True)
    project = load_project(ROOT / "resources" / "examples" / "resnet_small.json")
    project.path = Path(_tmp.name) / "resnet_small.json"  # a plausible title; runs go to the temporary folder
    window = MainWindow(Document(project))
    window.set_theme("light")
    window.move(0, 0)
    window.resize(W, H)
    window.show()
    settle()
    if only:
        if "arithmetic" in only:
            arithmetic_shot(app, window, window.document.graph.find("block2_conv1").id).save(
                str(OUT / "arithmetic.png"))
            print(OUT / "arithmetic.png")
        if "split-block" in only:
            split_block(window)
            print(OUT / "split-block.png")
        if "groups" in only:
            groups_shots(window)
            print(OUT / "groups.png", OUT / "group-open.png")
        if "new-project" in only:
            new_project_shot(window)
            print(OUT / "new-project.png")
        if only & {"import-dialog", "model-notes", "start-from"}:
            import_shots(window)
            for name in ("import-dialog", "model-notes", "start-from"):
                print(OUT / f"{name}.png")
        if "look-inside" in only:
            train_mnist(window)
            look_inside(window)
            print(OUT / "look-inside.png")
        if only & {"mistakes", "augment-preview", "activations"}:
            inspect_shots(window)
            for name in INSPECT_SHOTS:
                print(OUT / name)
            window.set_workspace("design")
            settle(200)
            window.document._extra_dirty = False
        window.document.undo_stack.setClean()
        window.close()
        return 0

    g = window.document.graph
    conv = g.find("block2_conv2").id
    add = g.find("block2_add").id
    arithmetic_shot(app, window, g.find("block2_conv1").id).save(str(OUT / "arithmetic.png"))
    # A warning first: this CIFAR-sized model (3×32×32) does not fit the default built-in data.
    window.view.set_zoom(0.9)
    warning = badge_crop(app, window, window.document.analysis.input_id)
    warning_status = window.totals_label.grab()
    window.document.push(SetParam(conv, "out_channels", 24))  # the deliberate mistake
    window.document.set_selection([conv])
    view = window.view
    view.set_zoom(0.9)
    view.centerOn(window.scene.nodes[conv].center())
    settle()
    window.grab().save(str(OUT / "main-window.png"))

    # The badges and the tooltips a user sees when hovering them: the error, then the warning.
    error = badge_crop(app, window, add)
    side_by_side([("Error: the model cannot run (red, no code)", error, window.totals_label.grab()),
                  ("Warning: valid, but it does not fit the chosen data (amber)", warning, warning_status)],
                 ).save(str(OUT / "error-badge.png"))

    window.set_theme("dark")
    settle()
    window.grab().save(str(OUT / "main-window-dark.png"))
    window.set_theme("light")
    settle(200)

    new_project_shot(window)
    import_shots(window)
    split_block(window)
    groups_shots(window)

    panel = train_mnist(window)
    window.grab().save(str(OUT / "train-1600.png"))
    window.set_theme("dark")
    settle()
    window.grab().save(str(OUT / "train-dark.png"))
    window.set_theme("light")
    settle(200)

    window.set_workspace("design")
    settle()
    window.grab().save(str(OUT / "design-1600.png"))
    window.resize(1280, 720)
    settle()
    window.grab().save(str(OUT / "design-1280.png"))
    window.set_workspace("train")
    settle(800)
    window.grab().save(str(OUT / "train-1280.png"))
    panel.tabs.setCurrentWidget(panel.features)  # computes conv1's maps with the run's weights
    settle(1500)
    window.grab().save(str(OUT / "feature-maps.png"))
    panel.tabs.setCurrentWidget(panel.evaluation)
    settle(400)
    window.grab().save(str(OUT / "evaluation.png"))
    look_inside(window)
    inspect_shots(window)
    window.set_workspace("design")  # the next start (with these temporary settings) opens in Design
    settle(200)

    window.document.undo_stack.setClean()  # nothing to save: close without asking
    window.document._extra_dirty = False
    window.close()
    for name in ("arithmetic.png", "main-window.png", "main-window-dark.png", "error-badge.png", "new-project.png",
                 "import-dialog.png", "model-notes.png", "start-from.png", "split-block.png", "groups.png",
                 "group-open.png", "train-1600.png", "train-dark.png", "design-1600.png", "design-1280.png",
                 "train-1280.png", "feature-maps.png", "evaluation.png", "look-inside.png", *INSPECT_SHOTS):
        print(OUT / name)
    QApplication.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""File ▸ New: the gallery lists the famous architectures with their notes and a size choice, and
one opens in the editor without an error (an ImageNet-sized model shows the amber warning that its
1000 outputs do not match the built-in data's 10 classes: valid, not an error)."""

from __future__ import annotations

from PySide6.QtGui import QImage

from cnnbuilder.core.architectures import ARCHITECTURES
from cnnbuilder.qt.templates import TemplateDialog, templates


def row_of(dialog: TemplateDialog, key: str) -> int:
    return next(i for i, t in enumerate(dialog.templates) if t.key == key)


def test_gallery_lists_the_architectures_with_their_notes_and_a_size_choice(qtbot):
    dialog = TemplateDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    keys = [t.key for t in dialog.templates]
    assert keys[:2] == ["empty", "mnist_cnn"]
    assert keys[-len(ARCHITECTURES):] == list(ARCHITECTURES)  # by year, after the examples
    assert keys.count("lenet5") == 1  # the example and the architecture are one entry
    labels = [dialog.list.item(i).text() for i in range(dialog.list.count())]
    assert "DenseNet-121 (2017)" in labels and "LeNet-5 (1998)" in labels and "MNIST tutorial CNN" in labels

    dialog.select("densenet121")
    assert dialog.title.text() == "DenseNet-121"
    assert dialog.size_widget.isVisibleTo(dialog) and dialog.size_choice.count() == 2
    assert dialog.note.text().startswith("DenseNet (2017; Huang, Liu, van der Maaten and Weinberger")
    assert dialog.figures.text().startswith("428 blocks · 7.98 M parameters · 2.83 G MACs · 3×224×224 → 1000")
    dialog.size_choice.setCurrentIndex(1)
    assert "This is the CIFAR-10-sized variant (3×32×32 images, 10 classes)" in dialog.note.text()
    assert "3×32×32 → 10" in dialog.figures.text()
    project = dialog.selected_project()
    assert project.name == "DenseNet-121 (CIFAR-10 size)" and project.path is None
    assert project.description == dialog.note.text()
    assert project.training == {"dataset": "shapes", "shapes_channels": 3, "shapes_size": 32}

    # Browsing keeps the size picked while the next template offers the same sizes.
    dialog.list.setCurrentRow(row_of(dialog, "resnet18"))
    assert dialog.choice() == 1 and dialog.note.text().startswith("ResNet (2015")
    assert dialog.selected_project().name == "ResNet-18 (CIFAR-10 size)"
    dialog.list.setCurrentRow(row_of(dialog, "lenet5"))  # one size only: no choice shown
    assert not dialog.size_widget.isVisibleTo(dialog) and dialog.note.text().startswith("LeNet-5 (1998")
    dialog.list.setCurrentRow(row_of(dialog, "mnist_cnn"))  # an example: figures, no note
    assert dialog.note.text() == "" and "9 blocks" in dialog.figures.text()
    dialog.list.setCurrentRow(row_of(dialog, "googlenet"))
    assert dialog.choice() == 0 and "aux_logits=False" in dialog.note.text()

    # Thumbnails come in after the dialog shows. A tall graph shows a window of it, where blocks are
    # blocks (DenseNet whole would be a thread: its 47,000 px scaled to 150 px make a block 0.6 px wide).
    qtbot.waitUntil(lambda: not dialog._unpainted, timeout=10_000)
    for i in range(dialog.list.count()):
        assert _ink_columns(dialog.list.item(i).icon().pixmap(200, 150).toImage()) > 15, dialog.templates[i].key


def _ink_columns(img: QImage) -> int:
    """How many columns of the picture differ from its background (the corner pixel)."""
    bg = img.pixel(0, 0)
    return sum(any(img.pixel(x, y) != bg for y in range(0, img.height(), 3)) for x in range(img.width()))


def test_an_architecture_opens_in_the_editor_without_an_error(window):
    t = next(t for t in templates() if t.key == "googlenet")
    window.answers["template"] = t.project(0)
    assert window.new_project()
    doc = window.document
    assert doc.project.name == "GoogLeNet" and doc.path is None and len(doc.graph) == 198
    # The Inception modules come in collapsed: the top level shows their groups, not 198 blocks.
    top_nodes, top_groups = doc.graph.members(None)
    assert len(window.scene.nodes) == len(top_nodes) < 40 and len(top_groups) >= 9
    assert doc.project.description == t.note(0) and "transform_input=False" in doc.project.description
    verdict = doc.verdict
    assert verdict.ok and not verdict.errors
    assert [w.message for w in verdict.warnings] == [
        "the model gives 1000 outputs per image but Shapes (built in) has 10 classes: make the last layer "
        "produce 10 values"]
    assert not any(item.state.error for item in window.scene.nodes.values())
    # The CIFAR-sized variant fits the built-in data as it is.
    window.answers["template"] = t.project(1)
    assert window.new_project()
    assert window.document.project.name == "GoogLeNet (CIFAR-10 size)"
    assert window.document.verdict.ok and window.document.verdict.warnings == ()
    assert window.errors == []


def test_a_gallery_closed_early_stops_drawing_thumbnails(qtbot):
    dialog = TemplateDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.reject()  # at once, before the event loop drew anything
    qtbot.wait(50)
    assert dialog._unpainted and not dialog._painter.isActive()
    assert dialog.result() == TemplateDialog.Rejected

"""Random hostile edit sequences through the GUI's Document and Qt's real QUndoStack (issue 8):
refused edits change nothing and never reach the stack, every state saves and reloads exactly,
and undo/redo of everything restores the start and the end. CNNB_FUZZ=long for more."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from cnnbuilder.core.blocks import ParamError
from cnnbuilder.core.graph import GraphError
from cnnbuilder.core.project import load_project
from cnnbuilder.qt.document import Document
from tests.core.test_fuzz_core import check_consistent, snapshot
from tests.fuzz import EXAMPLES, fuzz_settings, random_command


@given(seed=st.integers(0, 2**32), steps=st.integers(1, 25), example=st.sampled_from(EXAMPLES))
@fuzz_settings(default=40, long=1500)
def test_random_edits_through_the_document_and_qundostack(qapp, seed, steps, example):
    r = random.Random(seed)
    doc = Document(load_project(example))
    start = snapshot(doc.graph)
    for _ in range(steps):
        before = snapshot(doc.graph)
        count = doc.undo_stack.count()
        try:
            cmd = random_command(doc.graph, r)
        except (GraphError, ParamError):  # e.g. a clipboard refused before any command exists
            continue
        problem = doc.push(cmd)
        if problem is not None:
            assert problem and snapshot(doc.graph) == before, problem
            assert doc.undo_stack.count() == count
        check_consistent(doc.graph)
        assert doc.analysis is not None
    end = snapshot(doc.graph)
    while doc.undo_stack.canUndo():
        doc.undo_stack.undo()
    assert snapshot(doc.graph) == start
    assert not doc.is_modified()
    while doc.undo_stack.canRedo():
        doc.undo_stack.redo()
    assert snapshot(doc.graph) == end
    doc.deleteLater()


@given(seed=st.integers(0, 2**32))
@fuzz_settings(default=12, long=500)
def test_hostile_clipboards_paste_or_say_why(make_window, seed):
    """Whatever another program put on the clipboard: pasted as blocks, or a status message."""
    from PySide6.QtGui import QGuiApplication

    from tests.fuzz import dump_json, random_clip

    window = make_window("resnet_small", show=False)
    r = random.Random(seed)
    before = snapshot(window.document.graph)
    clip = random_clip(window.document.graph, r)
    text = dump_json(clip)
    if r.random() < 0.1:
        text = text[:r.randrange(len(text) + 1)]  # cut off mid-copy
    QGuiApplication.clipboard().setText(text)
    pasted = window.edit_actions.paste()
    if not pasted:
        assert snapshot(window.document.graph) == before
        assert window.statusBar().currentMessage()
    check_consistent(window.document.graph)
    window.close()

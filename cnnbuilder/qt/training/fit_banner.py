"""The Training panel's fit banner: the document's warnings about the chosen data (the model does
not fit it yet, or the data has a problem), each block a link, with the one-click fixes.

It only shows the Document's verdict (core/verdict.py): the same warnings the canvas, Summary,
status bar and code panel show. A fix is a model edit (an undoable SetParam) or a change of the
training settings, both made through the Document.
"""

from __future__ import annotations

import html
from functools import partial

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ...core.commands import SetParam
from ...core.training.config import TrainConfig
from ...core.verdict import Fix
from ..document import Document
from ..theme import WARNING


class FitBanner(QFrame):
    refused = Signal(str)  # a fix the document refused, with the reason
    applied = Signal()  # a fix went through

    def __init__(self, document: Document, parent: QWidget | None = None):
        super().__init__(parent)
        self.document = document
        self.setObjectName("fit")
        self._ink = ""
        self._restyle()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.RichText)
        self.label.linkActivated.connect(lambda nid: self.document.set_selection([nid]))
        lay.addWidget(self.label)
        self._row = QHBoxLayout()
        self._row.addStretch(1)
        lay.addLayout(self._row)
        self._buttons: list[QPushButton] = []
        self._shown: tuple = ()
        self.hide()
        document.verdict_changed.connect(self.refresh)
        self.refresh()

    def _restyle(self) -> None:
        # A translucent amber over the window colour, the text in the theme's colour. Style sheets
        # freeze the palette they were polished with, so a theme change sets it again.
        ink = QGuiApplication.palette().color(QPalette.WindowText).name()
        if ink == self._ink:
            return
        self._ink = ink
        amber = QColor(WARNING)
        self.setStyleSheet(f"QFrame#fit {{ background: rgba({amber.red()},{amber.green()},{amber.blue()},0.14); "
                           f"border: 1px solid {amber.name()}; border-radius: 4px; }} "
                           f"QFrame#fit QLabel {{ color: {ink}; }}")

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() in (QEvent.PaletteChange, QEvent.ApplicationPaletteChange):
            self._restyle()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self._restyle()  # a hidden widget is not told of a theme change
        super().showEvent(event)

    def buttons(self) -> list[QPushButton]:
        return list(self._buttons)

    def refresh(self) -> None:
        v = self.document.verdict
        g = self.document.graph
        lines, fixes = [], []
        for w in v.warnings:
            if w.node_id is not None and w.node_id in g:
                lines.append(f"<a href=\"{w.node_id}\">{_html(g.node(w.node_id).label)}</a>: {_html(w.message)}")
            else:
                lines.append(_html(w.message))
            fixes.extend(w.fixes)
        shown = (tuple(lines), tuple(fixes))
        if shown == self._shown:
            return  # buttons stay put (one may be under the mouse) while nothing changed
        self._shown = shown
        for b in self._buttons:
            self._row.removeWidget(b)
            b.deleteLater()
        self._buttons = []
        for fix in fixes:
            b = QPushButton(fix.label)
            b.clicked.connect(lambda _checked=False, f=fix: self.apply(f))  # clicked(bool) must not fill f
            self._row.addWidget(b)
            self._buttons.append(b)
        self.label.setText("<br>".join(lines))
        self.setVisible(bool(lines))

    def apply(self, fix: Fix) -> None:
        doc = self.document
        if fix.settings is not None:
            doc.set_training({**TrainConfig.from_dict(doc.project.training).to_dict(), **fix.settings})
        else:
            reason = doc.push(SetParam(fix.node_id, fix.param, fix.value))
            if reason:
                self.refused.emit(f"Could not change the model: {reason}")
                return
        self.applied.emit()


_html = partial(html.escape, quote=False)  # &, < and > only, as Qt rich text needs

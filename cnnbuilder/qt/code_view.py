"""Live PyTorch code preview: regenerated ~100 ms after the last edit, highlighted, with the
selected block's lines marked. While the graph has errors the last good code stays, greyed,
under a red banner that lists them (each a link to its block). Warnings (the model is valid but
does not fit the chosen training data yet) leave the code live, under an amber banner."""

from __future__ import annotations

import html
import keyword
import re
from functools import partial

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFontDatabase,
    QGuiApplication,
    QPalette,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextCursor,
    QTextFormat,
)
from PySide6.QtWidgets import (
    QGraphicsOpacityEffect,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.codegen import CodegenError, Generated, generate
from .document import Document
from .icons import icon
from .theme import ERROR, WARNING, is_dark

DEBOUNCE_MS = 100
CLASS_NAME = "Net"  # the same default as `cnnbuilder export`


def _fmt(color: str, bold: bool = False, italic: bool = False) -> QTextCharFormat:
    f = QTextCharFormat()
    f.setForeground(QColor(color))
    if bold:
        f.setFontWeight(700)
    if italic:
        f.setFontItalic(True)
    return f


_KEYWORDS = "|".join(k for k in keyword.kwlist if k not in ("True", "False", "None"))
# One pass per line, leftmost match wins: a "#" inside a string stays part of the string.
_TOKENS = re.compile(
    r"(?P<com>#.*)"
    r"|(?P<doc>\"\"\")"
    r"|(?P<str>\"[^\"\n]*\"|'[^'\n]*')"
    r"|(?<=\bdef )(?P<def>[A-Za-z_]\w*)|(?<=\bclass )(?P<cls>[A-Za-z_]\w*)"
    rf"|\b(?P<kw>{_KEYWORDS})\b"
    r"|\b(?P<const>True|False|None)\b"
    r"|\b(?P<self>self)\b"
    r"|\b(?P<builtin>print|super|int|float|len|range)\b"
    r"|\b(?P<nn>(?:nn|torch)\.[A-Za-z_]\w*)"
    r"|\b(?P<num>[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)\b"
)


class PythonHighlighter(QSyntaxHighlighter):
    """Enough Python for generated model code: keywords, names after def/class, `nn.` modules,
    numbers, strings (incl. triple-quoted docstrings across lines) and comments. One regular
    expression pass per line keeps a 1000-line model under a few milliseconds."""

    def __init__(self, document, dark: bool = False):
        super().__init__(document)
        self.set_dark(dark)

    def set_dark(self, dark: bool) -> None:
        if dark:
            c = {"kw": "#ff7b72", "def": "#d2a8ff", "nn": "#79c0ff", "num": "#79c0ff", "str": "#a5d6ff",
                 "com": "#8b949e", "self": "#ffa657", "builtin": "#ffa657"}
        else:
            c = {"kw": "#cf222e", "def": "#8250df", "nn": "#0550ae", "num": "#0550ae", "str": "#0a3069",
                 "com": "#6e7781", "self": "#953800", "builtin": "#953800"}
        self.formats = {
            "com": _fmt(c["com"], italic=True), "str": _fmt(c["str"]), "doc": _fmt(c["str"]),
            "def": _fmt(c["def"], bold=True), "cls": _fmt(c["def"], bold=True), "kw": _fmt(c["kw"], bold=True),
            "const": _fmt(c["num"]), "self": _fmt(c["self"], italic=True), "builtin": _fmt(c["builtin"]),
            "nn": _fmt(c["nn"]), "num": _fmt(c["num"]),
        }
        self.rehighlight()

    def highlightBlock(self, text: str) -> None:
        # Qt counts UTF-16 units; Python counts code points. They differ only beyond U+FFFF.
        wide = not text.isascii() and max(text) > "\uffff"

        def unit(i: int) -> int:
            return len(text[:i].encode("utf-16-le")) // 2 if wide else i

        doc = self.formats["doc"]
        pos = 0
        if self.previousBlockState() == 1:  # inside a docstring that began on an earlier line
            end = text.find('"""')
            if end < 0:
                self.setFormat(0, unit(len(text)), doc)
                self.setCurrentBlockState(1)
                return
            pos = end + 3
            self.setFormat(0, unit(pos), doc)
        self.setCurrentBlockState(0)
        while True:
            m = _TOKENS.search(text, pos)
            if m is None:
                return
            kind = m.lastgroup
            start, end = m.span(kind)
            if kind == "doc":
                close = text.find('"""', end)
                if close < 0:
                    self.setFormat(unit(start), unit(len(text)) - unit(start), doc)
                    self.setCurrentBlockState(1)
                    return
                end = close + 3
            self.setFormat(unit(start), unit(end) - unit(start), self.formats[kind])
            pos = max(end, m.end())


class CodePanel(QWidget):
    export_requested = Signal()

    def __init__(self, document: Document, parent: QWidget | None = None):
        super().__init__(parent)
        self.document = document
        self.generated: Generated | None = None  # the last good code
        self.problems: list = []
        self.warnings: list = []  # the verdict's warnings shown over live code
        self._banner_level = "error"
        self.editor = QPlainTextEdit(self)
        self.editor.setReadOnly(True)
        self.editor.setLineWrapMode(QPlainTextEdit.NoWrap)
        self.editor.setTextInteractionFlags(Qt.TextSelectableByMouse | Qt.TextSelectableByKeyboard)
        font = QFontDatabase.systemFont(QFontDatabase.FixedFont)
        self.editor.setFont(font)
        self.editor.setPlaceholderText("The PyTorch code appears here once the model is valid.")
        self.highlighter = PythonHighlighter(self.editor.document(), is_dark())
        self._fade = QGraphicsOpacityEffect(self.editor.viewport())
        self._fade.setOpacity(0.4)
        self._fade.setEnabled(False)
        self.editor.viewport().setGraphicsEffect(self._fade)

        self.banner = QLabel(self)
        self.banner.setWordWrap(True)
        self.banner.setTextFormat(Qt.RichText)
        self.banner.setObjectName("codeBanner")
        self._style_banner()
        self.banner.linkActivated.connect(self._jump)
        self.banner.hide()

        self.copy_button = QToolButton(self)
        self.copy_button.setText("Copy")
        self.copy_button.setIcon(icon("copy"))
        self.copy_button.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.copy_button.setToolTip("Copy the code to the clipboard")
        self.copy_button.clicked.connect(self.copy)
        self.export_button = QToolButton(self)
        self.export_button.setText("Export .py…")
        self.export_button.setIcon(icon("export"))
        self.export_button.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.export_button.setToolTip("Save the code as a Python file")
        self.export_button.clicked.connect(self.export_requested.emit)
        self.info = QLabel(self)
        self.info.setEnabled(False)

        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.info, 1)
        bar.addWidget(self.copy_button)
        bar.addWidget(self.export_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.setSpacing(6)
        lay.addLayout(bar)
        lay.addWidget(self.banner)
        lay.addWidget(self.editor, 1)

        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(DEBOUNCE_MS)
        self.timer.timeout.connect(self.refresh)
        document.verdict_changed.connect(self.schedule)  # every edit, and a change of the chosen data
        document.project_replaced.connect(self._replaced)
        document.path_changed.connect(self.schedule)  # a first save names the project: the docstring follows
        document.selection_changed.connect(self.highlight_selection)
        self.refresh()

    def schedule(self) -> None:
        self.timer.start()

    def _replaced(self) -> None:
        self.generated = None
        self.refresh()

    def refresh(self) -> None:
        """Regenerate now (the debounce timer calls this; tests and benchmarks may too)."""
        self.timer.stop()
        doc = self.document
        try:
            gen = generate(doc.graph, CLASS_NAME, doc.project.name, analysis=doc.analysis)
        except CodegenError as exc:
            self._show_problems(exc.problems)
            return
        self.problems = []
        self._show_warnings()
        self._fade.setEnabled(False)
        self.copy_button.setEnabled(True)
        self.export_button.setEnabled(True)
        changed = self.generated is None or gen.code != self.generated.code
        self.generated = gen
        if changed:
            self._set_text(gen.code)
        n = gen.code.count("\n")
        self.info.setText(f"class {gen.class_name} · {n} lines")
        self.highlight_selection(doc.selection)

    def _set_text(self, code: str) -> None:
        bar = self.editor.verticalScrollBar()
        keep = bar.value()
        self.editor.setPlainText(code)
        bar.setValue(keep)

    def _show_warnings(self) -> None:
        v = self.document.verdict
        self.warnings = list(v.warnings)
        if not self.warnings:
            self.banner.hide()
            return
        items = [f"<li>{self._where(w.node_id)}{_esc(w.message)}</li>" for w in self.warnings[:6]]
        more = f"<br>…and {len(self.warnings) - 6} more" if len(self.warnings) > 6 else ""
        n = len(self.warnings)
        self._set_banner_level("warning")
        self.banner.setText(f"<b>⚠ {n} warning{'s' if n != 1 else ''}</b> about the training data ({_esc(v.dataset)})"
                            f"; the code is valid:<ul style='margin:2px 0 0 -20px'>{''.join(items)}</ul>{more}")
        self.banner.show()

    def _where(self, node_id) -> str:
        g = self.document.graph
        if node_id is None or node_id not in g:
            return ""
        return f"<a href='node:{node_id}'>{_esc(g.node(node_id).label)}</a>: "

    def _show_problems(self, problems) -> None:
        self.problems = list(problems)
        a = self.document.analysis
        items = []
        shown = [p for p in problems if a.is_root(p)] or problems
        for p in shown[:6]:
            items.append(f"<li>{self._where(p.node_id)}{_esc(p.message)}</li>")
        more = f"<br>…and {len(shown) - 6} more" if len(shown) > 6 else ""
        what = "the last valid code is shown greyed" if self.generated else "no code yet"
        self.warnings = []
        self._set_banner_level("error")
        self.banner.setText(f"<b>The model has problems</b> ({what}):<ul style='margin:2px 0 0 -20px'>"
                            f"{''.join(items)}</ul>{more}")
        self.banner.show()
        self._fade.setEnabled(self.generated is not None)
        self.copy_button.setEnabled(False)
        self.export_button.setEnabled(False)
        self.info.setText("code is not up to date")
        if self.generated is None:
            self.editor.clear()
        self.editor.setExtraSelections([])

    def _jump(self, link: str) -> None:
        if link.startswith("node:"):
            self.document.set_selection([link[5:]])

    def code(self) -> str | None:
        """The current code, or None while the graph has problems."""
        return None if self.problems or self.generated is None else self.generated.code

    def copy(self) -> None:
        code = self.code()
        if code is not None:
            QGuiApplication.clipboard().setText(code)

    def highlight_group(self, group_id: str) -> None:
        """A collapsed group selected on the canvas: the lines that make and call its module."""
        if self.generated is not None and not self.problems:
            self._highlight_lines(sorted(self.generated.group_lines.get(group_id, [])))

    def highlight_selection(self, ids: list[str]) -> None:
        if self.generated is None or self.problems:
            return
        self._highlight_lines(sorted({ln for nid in ids for ln in self.generated.lines_of.get(nid, [])}))

    def _highlight_lines(self, lines: list[int]) -> None:
        color = QColor(self.palette().highlight().color())
        color.setAlpha(60)
        sels = []
        doc = self.editor.document()
        for ln in lines:
            sel = QTextEdit.ExtraSelection()
            sel.format.setBackground(color)
            sel.format.setProperty(QTextFormat.FullWidthSelection, True)
            sel.cursor = QTextCursor(doc.findBlockByNumber(ln - 1))
            sels.append(sel)
        self.editor.setExtraSelections(sels)
        if lines:
            cursor = QTextCursor(doc.findBlockByNumber(lines[0] - 1))
            self.editor.setTextCursor(cursor)
            self.editor.centerCursor()

    def highlighted_lines(self) -> list[int]:
        return [s.cursor.blockNumber() + 1 for s in self.editor.extraSelections()]

    def _set_banner_level(self, level: str) -> None:
        if level != self._banner_level:
            self._banner_level = level
            self._style_banner()

    def _style_banner(self) -> None:
        # Style sheets freeze the palette they were polished with: set it again on theme changes.
        text = QGuiApplication.palette().color(QPalette.WindowText).name()  # already the new one
        edge = QColor(WARNING if self._banner_level == "warning" else ERROR)
        fill = f"rgba({edge.red()},{edge.green()},{edge.blue()},0.14)"
        self.banner.setStyleSheet(f"#codeBanner {{ background: {fill}; color: {text}; "
                                  f"border: 1px solid {edge.name()}; border-radius: 4px; padding: 6px; }}")

    def set_dark(self, dark: bool) -> None:
        self._style_banner()
        self.highlighter.set_dark(dark)
        self.highlight_selection(self.document.selection)


_esc = partial(html.escape, quote=False)  # &, < and > only, as Qt rich text needs

"""The inspector: a form generated from the selected block's parameter schema.

One editor per Param.kind (spin boxes with the schema's bounds, pair editors with a "square" link,
combo boxes, check boxes, an "auto" switch for inferred and nullable values). Every change becomes
a SetParam/Rename pushed on the document; the form only reads the graph back, so undo and redo
refresh it like any other view.

Under the form, the block's arithmetic: how its output shape, parameter count and MACs come out
with its numbers filled in, and its receptive field. It follows edits after the same short
debounce as the code preview (the receptive fields take a pass over the whole graph).
"""

from __future__ import annotations

import html
from functools import partial
from typing import Any

from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QColor, QGuiApplication, QKeySequence, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ..core.blocks import ParamError
from ..core.commands import Rename, RenameGroup, SetParam
from ..core.graph import UNSET
from ..core.shapes import fmt_outputs
from ..core.stats import human, human_bytes
from .arithmetic_view import FIELD_HELP, LETTERS, arithmetic_html, detail_html, plain_text
from .code_view import DEBOUNCE_MS
from .document import Document
from .param_editors import AutoEditor, Editor, make_editor
from .theme import CATEGORY_COLORS, ERROR, WARNING


class InspectorPanel(QWidget):
    def __init__(self, document: Document, parent: QWidget | None = None):
        super().__init__(parent)
        self.document = document
        self.node_id: str | None = None
        self.group_id: str | None = None  # a collapsed group selected on the canvas
        self.group_name: QLineEdit | None = None
        self.group_info = QLabel()
        self._type: str | None = None
        self.editors: dict[str, Editor] = {}

        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.NoFrame)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)

        self.empty = QLabel()
        self.empty.setWordWrap(True)
        self.empty.setTextFormat(Qt.RichText)
        self.empty.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.empty.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.empty.setMargin(12)
        self.empty.setObjectName("inspectorEmpty")
        self.form_host: QWidget | None = None
        self.name_edit: QLineEdit | None = None
        self.title = QLabel()
        self.chip = QLabel()
        self.doc = QLabel()
        self.stats = QLabel()
        self.problem = QLabel()
        self.refusal = QLabel()
        self.arith = QLabel()
        self.arith_title = QLabel()
        self.copy_arith = QPushButton()
        self.arith_timer = QTimer(self)
        self.arith_timer.setSingleShot(True)
        self.arith_timer.setInterval(DEBOUNCE_MS)
        self.arith_timer.timeout.connect(self.show_arithmetic)
        self._show_empty(self._nothing_selected())

        document.selection_changed.connect(self._on_selection)
        document.graph_changed.connect(self._on_graph_changed)
        document.project_replaced.connect(self._on_selection)
        document.verdict_changed.connect(self._show_problem)  # e.g. the chosen data changed

    # -- building ---------------------------------------------------------------------
    def _nothing_selected(self) -> str:
        """The hint, after the project's description when it has one (a template's note about the
        model, an import's notes): what a user reads first after opening it."""
        hint = ("<p>Select a block on the canvas to edit its parameters.</p><p>Drag blocks from the palette, "
                "connect an output port (bottom) to an input port (top).</p>")
        project = self.document.project
        if not project.description.strip():
            return hint
        return (f"<p><b>Model notes</b> — {html.escape(project.name)}</p><p>{html.escape(project.description)}</p>"
                f"<hr>{hint}")

    def _show_empty(self, text: str | None = None) -> None:
        self.node_id = self._type = self.group_id = None
        self.group_name = None
        self.arith_timer.stop()
        self.editors = {}
        self.name_edit = None
        self.empty.setText(text or self.empty.text())
        self._show_form(None)

    def _new_form(self) -> tuple[QWidget, QVBoxLayout]:
        """An empty form (a block's or a group's) to fill, then show with _show_form."""
        if self.scroll.widget() is self.empty:
            self.scroll.takeWidget()  # keep the placeholder alive for later
        host = QWidget()
        host.setObjectName("inspectorForm")
        lay = QVBoxLayout(host)
        lay.setContentsMargins(10, 10, 10, 10)
        lay.setSpacing(8)
        return host, lay

    def _show_form(self, host: QWidget | None) -> None:
        """Show a filled form (None: the placeholder text) in place of the one shown."""
        old = self.scroll.takeWidget()
        if old is not None and old is not self.empty:
            old.deleteLater()
        self.scroll.setWidget(host or self.empty)
        self.form_host = host

    def _on_selection(self, *args) -> None:
        ids = self.document.selection
        if len(ids) == 1:
            node = self.document.graph.node(ids[0])
            if ids[0] == self.node_id and node.type == self._type:
                self.refresh()
            else:
                self._build(ids[0])
        elif len(ids) > 1:
            self._show_empty(f"<p>{len(ids)} blocks selected.</p><p>Select a single block to edit its parameters; "
                             "Delete, Copy and Duplicate act on all of them.</p>")
        else:
            self._show_empty(self._nothing_selected())

    def _on_graph_changed(self) -> None:
        if self.group_id is not None:
            if any(grp.id == self.group_id for grp in self.document.graph.groups):
                self._refresh_group()
            else:
                self._show_empty()
            return
        if self.node_id is None:
            return
        g = self.document.graph
        if self.node_id not in g:
            self._on_selection()
        elif g.node(self.node_id).type != self._type:
            self._build(self.node_id)
        else:
            self.refresh()

    # -- a selected group -------------------------------------------------------------
    def show_group(self, group_id: str) -> None:
        """A collapsed group: its name (editable), size, parameters, outputs and blocks."""
        host, lay = self._new_form()
        self.node_id = self._type = None
        self.editors = {}
        self.name_edit = None
        self.arith_timer.stop()
        self.group_id = group_id
        head = QHBoxLayout()
        head.addWidget(QLabel("<span style='font-size:13pt; font-weight:600'>Group</span>"))
        head.addStretch(1)
        chip = QLabel("Group")
        chip.setStyleSheet(f"background:{CATEGORY_COLORS['Group']}; color:white; border-radius:8px; padding:1px 8px;")
        head.addWidget(chip)
        lay.addLayout(head)
        hint = QLabel("Blocks shown as one. Double-click it on the canvas to open it; Ctrl+Shift+G ungroups.")
        hint.setWordWrap(True)
        hint.setEnabled(False)
        lay.addWidget(hint)
        form = QFormLayout()
        self.group_name = QLineEdit()
        self.group_name.setMaxLength(80)
        self.group_name.setToolTip("The group's name, shown on the canvas and in the breadcrumb")
        self.group_name.editingFinished.connect(self._rename_group)
        form.addRow("name", self.group_name)
        lay.addLayout(form)
        self.group_info = _text_label()
        self.group_info.setTextFormat(Qt.RichText)
        lay.addWidget(self.group_info)
        self._add_refusal(lay)
        lay.addStretch(1)
        self._show_form(host)
        self.group_name.installEventFilter(self)  # Ctrl+Z as in a block's name field
        self._refresh_group()

    def _refresh_group(self) -> None:
        g = self.document.graph
        group = g.group(self.group_id)
        info = self.document.group_info[self.group_id]
        field = self.group_name  # a name being typed (not committed yet) stays; undo and redo show
        if field is not None and not (field.hasFocus() and field.isModified()) and field.text() != group.name:
            field.setText(group.name)
        lines = [f"<b>{info.blocks}</b> block{'s' if info.blocks != 1 else ''} · {info.params:,} parameters"]
        error, shapes = info.error(g), info.shape_texts
        if error:
            lines.append(f"<span style='color:{ERROR}'>✗ {_esc(error)}</span>")
        elif any(shapes):
            lines.append("<b>Output</b> " + " | ".join(s or "?" for s in shapes))
        names = [_esc(f"{g.node(n).label} ({g.node(n).type})") for n in g.group_nodes(self.group_id)]
        shown = names[:40]
        more = f"<br>… and {len(names) - len(shown)} more" if len(names) > len(shown) else ""
        lines.append("<b>Blocks</b><br>" + "<br>".join(shown) + more)
        self.group_info.setText("<br>".join(lines))

    def _rename_group(self) -> None:
        if self.group_id is None or self.group_name is None:
            return
        text = self.group_name.text()
        if text.strip() == self.document.graph.group(self.group_id).name:
            return
        self.group_name.setModified(False)  # committed: the field shows the name as the graph keeps it,
        problem = self.document.push(RenameGroup(self.group_id, text))  # and Ctrl+Z undoes it there
        if problem:
            self.group_name.setModified(True)
            self.refusal.setText(f"Not applied: {problem}")
            self.refusal.show()
        else:
            self.refusal.hide()

    def _add_refusal(self, lay: QVBoxLayout) -> None:
        """The box that says why an edit was not applied (hidden until one is refused)."""
        self.refusal = QLabel()
        self.refusal.setWordWrap(True)
        self.refusal.setObjectName("inspectorRefusal")
        self.refusal.hide()
        self.restyle()
        lay.addWidget(self.refusal)

    def focus_group_name(self) -> None:
        if self.group_name is not None:
            self.group_name.setFocus(Qt.ShortcutFocusReason)
            self.group_name.selectAll()

    def _build(self, node_id: str) -> None:
        self.group_id = None
        self.group_name = None
        host, lay = self._new_form()
        node = self.document.graph.node(node_id)
        spec = node.spec
        self.node_id, self._type = node_id, node.type

        head = QHBoxLayout()
        self.title = QLabel(f"<span style='font-size:13pt; font-weight:600'>{spec.type}</span>")
        self.chip = QLabel(spec.category)
        color = CATEGORY_COLORS.get(spec.category, "#5b6676")
        self.chip.setStyleSheet(f"background:{color}; color:white; border-radius:8px; padding:1px 8px;")
        head.addWidget(self.title)
        head.addStretch(1)
        head.addWidget(self.chip)
        lay.addLayout(head)

        self.doc = QLabel(spec.doc)
        self.doc.setWordWrap(True)
        self.doc.setEnabled(False)  # greyed help text that still follows the palette
        lay.addWidget(self.doc)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignRight | Qt.AlignVCenter)
        form.setHorizontalSpacing(10)
        self.name_edit = QLineEdit()
        self.name_edit.setMaxLength(80)
        self.name_edit.setPlaceholderText(node.id)
        self.name_edit.setToolTip("The block's name; it becomes the attribute name in the generated code")
        self.name_edit.editingFinished.connect(self._rename)
        form.addRow("name", self.name_edit)
        self.editors = {}
        for p in spec.params:
            ed = make_editor(p, lambda v, name=p.name: self.commit(name, v), is_input=node.type == "Input")
            tip = p.help + (f" (PyTorch default: {p.default!r})" if not p.required and not p.inferred else "")
            label = QLabel(p.name)
            label.setToolTip(tip)
            ed.widget.setToolTip(tip)
            form.addRow(label, ed.widget)
            self.editors[p.name] = ed
        lay.addLayout(form)
        if not spec.params:
            none = QLabel("This block has no parameters.")
            none.setEnabled(False)
            lay.addWidget(none)

        self.stats = _text_label()
        lay.addWidget(self.stats)
        self.problem = _text_label()
        self.problem.setObjectName("inspectorProblem")
        lay.addWidget(self.problem)
        self._add_refusal(lay)

        head = QHBoxLayout()
        self.arith_title = QLabel("<b>How the numbers come out</b>")
        self.arith_title.setToolTip(LETTERS)
        self.copy_arith = QPushButton("Copy")
        self.copy_arith.setToolTip("Copy these lines as plain text")
        self.copy_arith.clicked.connect(self.copy_arithmetic)
        head.addWidget(self.arith_title, 1)
        head.addWidget(self.copy_arith)
        lay.addSpacing(4)
        lay.addLayout(head)
        self.arith = QLabel()
        self.arith.setObjectName("inspectorArithmetic")
        self.arith.setTextFormat(Qt.RichText)
        self.arith.setWordWrap(True)
        self.arith.setTextInteractionFlags(Qt.TextSelectableByMouse | Qt.TextSelectableByKeyboard)
        self.arith.setToolTip(f"{LETTERS}\n\n{FIELD_HELP}")
        lay.addWidget(self.arith)
        lay.addStretch(1)
        self._show_form(host)
        for w in host.findChildren(QWidget):
            w.installEventFilter(self)
        self.refresh()
        self.show_arithmetic()  # at once for a newly selected block; edits wait for the debounce

    def eventFilter(self, obj, event) -> bool:
        # Editors commit as the user types, so there is nothing of their own to undo: Ctrl+Z and
        # redo go to the document's undo stack, as from anywhere else. Only a name field (a block's
        # or a group's) holds text that is not committed yet (until Enter or leaving it), and
        # undoes that itself.
        if event.type() == QEvent.ShortcutOverride and (any(event.matches(k) for k in _UNDO_KEYS)
                                                        or QKeySequence(event.keyCombination()) == _CTRL_Y):
            if not (obj in (self.name_edit, self.group_name) and obj.isModified()):
                event.ignore()
                return True
        return super().eventFilter(obj, event)

    # -- reading the graph back -------------------------------------------------------
    def refresh(self) -> None:
        if self.node_id is None or self.node_id not in self.document.graph:
            return
        node = self.document.graph.node(self.node_id)
        info = self.document.analysis.nodes.get(self.node_id)
        resolved = info.resolved if info is not None else {}
        for name, ed in self.editors.items():
            stored = node.params.get(name, UNSET)
            if isinstance(ed, AutoEditor):
                ed.present(stored, resolved.get(name))
            else:
                ed.show(ed.param.default if stored is UNSET else stored)
        if self.name_edit is not None and self.name_edit.text() != node.name:
            self.name_edit.setText(node.name)
        if info is not None and info.shape is not None:
            s = info.stats
            parts = [f"<b>Output</b> {fmt_outputs(info)}", f"{s.params:,} parameters"]
            if s.macs:
                parts.append(f"{human(s.macs)} MACs")
            parts.append(f"{human_bytes(s.memory)} activations")
            self.stats.setText(" · ".join(parts))
        else:
            self.stats.setText("")
        self._show_problem()
        self.arith_timer.start()

    def show_arithmetic(self) -> None:
        """Fill the arithmetic section for the inspected block (the debounce timer calls this)."""
        self.arith_timer.stop()
        if self.node_id is None or self.node_id not in self.document.graph or self.form_host is None:
            return
        doc = self.document
        b = doc.arithmetic(self.node_id)
        field = doc.fields.get(self.node_id) if b is not None and not b.error else None
        pal = QApplication.palette()
        text, back = pal.color(QPalette.WindowText), pal.color(QPalette.Window)
        # the general forms: between the text and the background, readable in both themes
        muted = QColor(*(round(0.62 * a + 0.38 * b) for a, b in zip(text.getRgb()[:3], back.getRgb()[:3],
                                                                   strict=True))).name()
        self.arith.setText(arithmetic_html(b, field, muted, ERROR))
        self.copy_arith.setEnabled(b is not None)

    def arithmetic_text(self) -> str:
        """The section as plain text, what Copy puts on the clipboard."""
        if self.node_id is None or self.node_id not in self.document.graph:
            return ""
        b = self.document.arithmetic(self.node_id)
        field = self.document.fields.get(self.node_id) if b is not None and not b.error else None
        return plain_text(b, field)

    def copy_arithmetic(self) -> None:
        QGuiApplication.clipboard().setText(self.arithmetic_text())

    def _show_problem(self) -> None:
        """The block's error, or the verdict's warning about it (valid, but it does not fit the data)."""
        if self.node_id is None or self.node_id not in self.document.graph or self.form_host is None:
            return
        info = self.document.analysis.nodes.get(self.node_id)
        warning = self.document.verdict.node_warning(self.node_id)
        if info is not None and info.error:
            color = "#8a909a" if info.waiting else ERROR
            prefix = "Waiting:" if info.waiting else "✗ Error:"
            text = f"<span style='color:{color}'><b>{prefix}</b> {_esc(info.error)}</span>"
            detail = self.document.verdict.error_details().get(self.node_id)
            if detail:  # the arithmetic step that goes wrong
                text += f"<br>{detail_html(detail)}"
            self.problem.setText(text)
            self.problem.show()
        elif warning:
            self.problem.setText(f"<span style='color:{WARNING}'><b>⚠ Warning:</b> {_esc(warning)}</span>"
                                 "<br>The model is valid; it does not fit the chosen training data yet "
                                 "(see the Training panel).")
            self.problem.show()
        else:
            self.problem.hide()

    # -- writing through commands -----------------------------------------------------
    def commit(self, name: str, value: Any) -> str | None:
        """Set one parameter of the inspected block; returns the refusal message, if any."""
        if self.node_id is None:
            return None
        node = self.document.graph.node(self.node_id)
        current = node.params.get(name, UNSET)
        if value is not UNSET:
            try:
                checked = node.spec.check_param(name, value)
            except ParamError as exc:
                return self._refuse(str(exc))
            if checked == current or (current is UNSET and checked == node.spec.param_map[name].default
                                      and not node.spec.param_map[name].required):
                self.refresh()
                return None
        elif current is UNSET:
            return None
        problem = self.document.push(SetParam(self.node_id, name, value))
        if problem:
            return self._refuse(problem)
        self.refusal.hide()
        return None

    def _refuse(self, message: str) -> str:
        self.refusal.setText(f"Not applied: {message}")
        self.refusal.show()
        self.refresh()  # put the editor back on the block's real value
        return message

    def _rename(self) -> None:
        if self.node_id is None or self.name_edit is None:
            return
        text = self.name_edit.text()
        node = self.document.graph.node(self.node_id)
        if text.strip() == node.name:
            return
        problem = self.document.push(Rename(self.node_id, text))
        if problem:
            self._refuse(problem)
            self.name_edit.setText(node.name)
        else:
            self.refusal.hide()

    def theme_changed(self) -> None:
        """Rebuild the form so its icons and colours follow the new palette. Without a block there
        is no form (its labels went with the last one, and styling an orphan label leaks a
        top-level widget); the next form is built in the new palette."""
        if self.node_id is not None:
            self._build(self.node_id)
        elif self.group_id is not None:
            self.show_group(self.group_id)

    def restyle(self) -> None:
        """Style sheets freeze the palette they were polished with: set them again on theme changes."""
        text = QApplication.palette().color(QPalette.WindowText).name()  # already the new one
        self.refusal.setStyleSheet(f"background: rgba(229,72,77,0.14); color: {text}; border: 1px solid #e5484d; "
                                   "border-radius: 4px; padding: 6px;")

    def focus_name(self) -> None:
        if self.name_edit is not None:
            self.name_edit.setFocus(Qt.ShortcutFocusReason)
            self.name_edit.selectAll()

    def focus_first_editor(self) -> None:
        for ed in self.editors.values():
            ed.widget.setFocus(Qt.OtherFocusReason)
            return
        self.focus_name()


def _text_label() -> QLabel:
    """A wrapped label whose text can be selected and copied."""
    label = QLabel()
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextSelectableByMouse)
    return label


_UNDO_KEYS = (QKeySequence.Undo, QKeySequence.Redo)
_CTRL_Y = QKeySequence("Ctrl+Y")
_esc = partial(html.escape, quote=False)  # &, < and > only, as Qt rich text needs

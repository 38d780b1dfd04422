"""The inspector: a form generated from the selected block's parameter schema.

One editor per Param.kind (spin boxes with the schema's bounds, pair editors with a "square" link,
combo boxes, check boxes, an "auto" switch for inferred and nullable values). Every change becomes
a SetParam/Rename pushed on the document; the form only reads the graph back, so undo and redo
refresh it like any other view.
"""

from __future__ import annotations

import html
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import partial
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette, QValidator
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.blocks import ParamError, fmt_shape
from ..core.blocks.base import BOOL, CHOICE, DIM, FLOAT, INT, OUTPUT_SIZE, PADDING, PAIR, SHAPE, Param
from ..core.commands import Rename, SetParam
from ..core.graph import UNSET
from ..core.stats import human, human_bytes
from .document import Document
from .icons import icon
from .theme import CATEGORY_COLORS

INT_LIMIT = 2**31 - 1
DIM_LIMIT = 4  # a tensor has at most 4 dimensions here: batch + C×H×W
INPUT_PRESETS = (("MNIST", (1, 28, 28)), ("CIFAR", (3, 32, 32)), ("ImageNet", (3, 224, 224)))
_NUMBER_PART = re.compile(r"^[+-]?(\d+\.?\d*|\.\d*)?([eE][+-]?\d*)?$")

Emit = Callable[[Any], None]


class SciSpinBox(QDoubleSpinBox):
    """A float spin box that shows 1e-05 as `1e-05`, not `0.00`."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setDecimals(12)

    def textFromValue(self, value: float) -> str:
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        t = text.strip()
        if self.specialValueText() and t == self.specialValueText():
            return (QValidator.Acceptable, text, pos)
        try:
            v = float(t)
        except ValueError:
            return (QValidator.Intermediate if _NUMBER_PART.match(t) else QValidator.Invalid, text, pos)
        if self.minimum() <= v <= self.maximum():
            return (QValidator.Acceptable, text, pos)
        return (QValidator.Intermediate, text, pos)


def _bounds(p: Param, lo_default: float, hi_default: float) -> tuple[float, float]:
    lo = p.min if p.min is not None else lo_default
    hi = p.max if p.max is not None else hi_default
    return lo, hi


def _int_spin(p: Param, lo: int | None = None) -> QSpinBox:
    spin = QSpinBox()
    if p.kind == DIM:
        a, b = -DIM_LIMIT, DIM_LIMIT - 1
    else:
        a, b = _bounds(p, -INT_LIMIT, INT_LIMIT)
    spin.setRange(int(a if lo is None else lo), int(min(b, INT_LIMIT)))
    spin.setProperty("base_min", spin.minimum())
    spin.setKeyboardTracking(False)  # commit on Enter / focus out / arrows, not on every digit
    spin.setAccelerated(True)
    spin.setMinimumWidth(64)
    return spin


def _spin_show(spin, value) -> None:
    base = spin.property("base_min")
    if base is not None and spin.minimum() != base:
        spin.setMinimum(base)
        spin.setSpecialValueText(spin.property("special") or "")
    spin.setValue(value)


def _spin_blank(spin, text: str) -> None:
    """Show a placeholder instead of a number: "?" for an inferred value not known yet (the
    block has a problem), "–" for a value PyTorch chooses (None)."""
    base = spin.property("base_min")
    spin.setMinimum(base - 1)
    spin.setSpecialValueText(text)
    spin.setValue(base - 1)


class Editor(ABC):
    """One parameter's widget. Calls `emit(value)` when the user changes it (UNSET clears)."""

    def __init__(self, param: Param, emit: Emit):
        self.param = param
        self.emit = emit
        self.widget: QWidget

    @abstractmethod
    def show(self, value: Any) -> None:  # a stored, normalized value (never UNSET)
        ...

    def show_unknown(self, text: str = "?") -> None:  # noqa: B027 - most editors have no "unknown" look
        return None

    @abstractmethod
    def value(self) -> Any: ...

    def set_enabled(self, on: bool) -> None:
        self.widget.setEnabled(on)


class _SpinEditor(Editor):
    """A number in a spin box whose minimum doubles as the "unknown" placeholder."""

    cast: type = int
    spin: Any

    def show(self, value: Any) -> None:
        self.spin.blockSignals(True)
        _spin_show(self.spin, self.cast(value))
        self.spin.blockSignals(False)

    def show_unknown(self, text: str = "?") -> None:
        self.spin.blockSignals(True)
        _spin_blank(self.spin, text)
        self.spin.blockSignals(False)

    def value(self) -> Any:
        return max(self.spin.value(), self.spin.property("base_min"))


class IntEditor(_SpinEditor):
    cast = int

    def __init__(self, param: Param, emit: Emit):
        super().__init__(param, emit)
        self.spin = self.widget = _int_spin(param)
        self.spin.valueChanged.connect(lambda v: self.emit(v) if v >= self.spin.property("base_min") else None)


class FloatEditor(_SpinEditor):
    cast = float

    def __init__(self, param: Param, emit: Emit):
        super().__init__(param, emit)
        spin = self.spin = self.widget = SciSpinBox()
        lo, hi = _bounds(param, -1e9, 1e9)
        spin.setRange(lo, hi)
        spin.setProperty("base_min", lo)
        d = param.default
        spin.setSingleStep(abs(d) if isinstance(d, float) and 0 < abs(d) < 0.01 else 0.1)
        spin.setKeyboardTracking(False)
        spin.setMinimumWidth(64)
        spin.valueChanged.connect(lambda v: self.emit(float(v)) if v >= spin.property("base_min") else None)


class BoolEditor(Editor):
    def __init__(self, param: Param, emit: Emit):
        super().__init__(param, emit)
        self.box = self.widget = QCheckBox()
        self.box.toggled.connect(lambda on: self.emit(bool(on)))

    def show(self, value: Any) -> None:
        self.box.blockSignals(True)
        self.box.setChecked(bool(value))
        self.box.blockSignals(False)

    def value(self) -> bool:
        return self.box.isChecked()


class ChoiceEditor(Editor):
    def __init__(self, param: Param, emit: Emit):
        super().__init__(param, emit)
        self.combo = self.widget = QComboBox()
        self.combo.addItems(list(param.choices))
        self.combo.currentTextChanged.connect(lambda t: self.emit(t))

    def show(self, value: Any) -> None:
        self.combo.blockSignals(True)
        self.combo.setCurrentText(str(value))
        self.combo.blockSignals(False)

    def value(self) -> str:
        return self.combo.currentText()


class PairEditor(Editor):
    """Height and width spin boxes with a "square" link that keeps them equal."""

    def __init__(self, param: Param, emit: Emit, allow_none: bool = False):
        super().__init__(param, emit)
        self.allow_none = allow_none
        lo = 0 if allow_none else None  # output_size: 0 shows "keep" (None: keep the input's size)
        self.a, self.b = _int_spin(param, lo), _int_spin(param, lo)
        for spin in (self.a, self.b):
            if allow_none:
                spin.setSpecialValueText("keep")
                spin.setProperty("special", "keep")
            spin.setMinimumWidth(56)
        self.a.setToolTip("Height")
        self.b.setToolTip("Width")
        self.link = QToolButton()
        self.link.setCheckable(True)
        self.link.setChecked(True)
        self.link.setIcon(icon("link"))
        self.link.setToolTip("Square: keep height and width equal")
        self.link.setAutoRaise(True)
        self.widget = QWidget()
        lay = QHBoxLayout(self.widget)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        times = QLabel("×")
        lay.addWidget(self.a, 1)
        lay.addWidget(times)
        lay.addWidget(self.b, 1)
        lay.addWidget(self.link)
        self.a.valueChanged.connect(lambda v: self._changed(self.a, self.b))
        self.b.valueChanged.connect(lambda v: self._changed(self.b, self.a))
        self.link.toggled.connect(self._link_toggled)

    def _spin_value(self, spin: QSpinBox):
        v = spin.value()
        if self.allow_none and v == 0:
            return None
        return max(v, spin.property("base_min"))

    def value(self):
        return (self._spin_value(self.a), self._spin_value(self.b))

    def _changed(self, source: QSpinBox, other: QSpinBox) -> None:
        if source.value() < source.property("base_min"):
            return  # the "?" placeholder
        if self.link.isChecked() and other.value() != source.value():
            other.blockSignals(True)
            other.setValue(source.value())
            other.blockSignals(False)
        self.emit(self.value())

    def _link_toggled(self, on: bool) -> None:
        if on and self.a.value() != self.b.value():
            self.b.blockSignals(True)
            self.b.setValue(self.a.value())
            self.b.blockSignals(False)
            self.emit(self.value())

    def show(self, value: Any) -> None:
        a, b = value if isinstance(value, tuple) else (value, value)
        for spin in (self.a, self.b, self.link):
            spin.blockSignals(True)
        _spin_show(self.a, 0 if a is None else a)
        _spin_show(self.b, 0 if b is None else b)
        if a != b:
            self.link.setChecked(False)
        for spin in (self.a, self.b, self.link):
            spin.blockSignals(False)

    def show_unknown(self, text: str = "?") -> None:
        for spin in (self.a, self.b):
            spin.blockSignals(True)
            _spin_blank(spin, text)
            spin.blockSignals(False)


class PaddingEditor(Editor):
    """Padding in pixels (a pair), or torch's 'same' / 'valid'."""

    MODES = ("pixels", "same", "valid")

    def __init__(self, param: Param, emit: Emit):
        super().__init__(param, emit)
        self.mode = QComboBox()
        self.mode.addItems(list(self.MODES))
        self.mode.setToolTip("pixels: explicit padding; same: keep the size (stride 1 only); valid: no padding")
        self.pair = PairEditor(param, self._pair_changed)
        self.widget = QWidget()
        lay = QHBoxLayout(self.widget)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        lay.addWidget(self.mode)
        lay.addWidget(self.pair.widget, 1)
        self.mode.currentTextChanged.connect(self._mode_changed)

    def _pair_changed(self, value) -> None:
        if self.mode.currentText() == "pixels":
            self.emit(value)

    def _mode_changed(self, mode: str) -> None:
        self.pair.widget.setVisible(mode == "pixels")
        self.emit(self.value())

    def value(self):
        mode = self.mode.currentText()
        return self.pair.value() if mode == "pixels" else mode

    def show(self, value: Any) -> None:
        self.mode.blockSignals(True)
        if isinstance(value, str):
            self.mode.setCurrentText(value)
        else:
            self.mode.setCurrentText("pixels")
            self.pair.show(value)
        self.pair.widget.setVisible(self.mode.currentText() == "pixels")
        self.mode.blockSignals(False)


class ShapeEditor(Editor):
    """A list of sizes. For the Input block: channels, height and width with dataset presets."""

    LAYOUTS = (("C × H × W (image)", 3), ("C × L (sequence)", 2), ("features (vector)", 1))
    NAMES = {3: ("channels", "height", "width"), 2: ("channels", "length"), 1: ("features",)}

    def __init__(self, param: Param, emit: Emit, presets: bool = False):
        super().__init__(param, emit)
        self.widget = QWidget()
        form = QFormLayout(self.widget)
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.layout_box = QComboBox()
        for text, rank in self.LAYOUTS:
            self.layout_box.addItem(text, rank)
        self.layout_box.setToolTip("How many dimensions one sample has (without the batch)")
        form.addRow("layout", self.layout_box)
        self.spins: list[QSpinBox] = []
        self.labels: list[QLabel] = []
        for _ in range(3):
            spin = _int_spin(param)
            spin.valueChanged.connect(lambda v, s=spin: self._changed(s))
            label = QLabel()
            form.addRow(label, spin)
            self.spins.append(spin)
            self.labels.append(label)
        self.presets: dict[str, QPushButton] = {}
        if presets:
            row = QWidget()
            lay = QHBoxLayout(row)
            lay.setContentsMargins(0, 0, 0, 0)
            lay.setSpacing(4)
            for name, shape in INPUT_PRESETS:
                btn = QPushButton(name)
                btn.setToolTip(f"{name}: {fmt_shape(shape)}")
                btn.clicked.connect(lambda checked=False, s=shape: self.emit(s))
                btn.setSizePolicy(QSizePolicy.Minimum, QSizePolicy.Fixed)
                lay.addWidget(btn)
                self.presets[name] = btn
            form.addRow("preset", row)
        self._form = form
        self.layout_box.currentIndexChanged.connect(self._rank_changed)
        self._rank = 3
        self._apply_rank(3)

    def _apply_rank(self, rank: int) -> None:
        self._rank = rank
        names = self.NAMES[rank]
        for i, (spin, label) in enumerate(zip(self.spins, self.labels, strict=True)):
            on = i < rank
            self._form.setRowVisible(spin, on)
            if on:
                label.setText(names[i])

    def _rank_changed(self, index: int) -> None:
        rank = self.layout_box.itemData(index)
        self._apply_rank(rank)
        self.emit(self.value())

    def _changed(self, spin: QSpinBox) -> None:
        if spin.value() >= spin.property("base_min"):
            self.emit(self.value())

    def value(self) -> tuple[int, ...]:
        return tuple(max(s.value(), s.property("base_min")) for s in self.spins[:self._rank])

    def _block(self, on: bool) -> None:
        for w in (*self.spins, self.layout_box):
            w.blockSignals(on)

    def show(self, value: Any) -> None:
        value = tuple(value)
        self._block(True)
        self.layout_box.setCurrentIndex([r for _, r in self.LAYOUTS].index(len(value)))
        self._apply_rank(len(value))
        for spin, v in zip(self.spins, value, strict=False):
            _spin_show(spin, v)
        self._block(False)

    def show_unknown(self, text: str = "?") -> None:
        self._block(True)
        for spin in self.spins:
            _spin_blank(spin, text)
        self._block(False)


class AutoEditor(Editor):
    """An editor with an "auto" switch: inferred values (shown read-only with the inferred
    number) and nullable ones (None means torch's automatic behaviour)."""

    def __init__(self, param: Param, emit: Emit, inner: Editor):
        super().__init__(param, emit)
        self.inner = inner
        self.auto = QCheckBox("auto")
        self.auto.setToolTip("Inferred from the incoming tensor" if param.inferred
                             else "Leave it to PyTorch (None)")
        self.widget = QWidget()
        lay = QHBoxLayout(self.widget)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        lay.addWidget(inner.widget, 1)
        lay.addWidget(self.auto)
        self.auto.toggled.connect(self._toggled)
        # Clearing the stored value is what "auto" means when the default is None (or inferred).
        self._clear = UNSET if (param.inferred or param.default is None) else None

    def is_auto(self, stored: Any) -> bool:
        return stored is None or (stored is UNSET and (self.param.inferred or self.param.default is None))

    def _toggled(self, on: bool) -> None:
        self.inner.set_enabled(not on)
        self.emit(self._clear if on else self.inner.value())

    def present(self, stored: Any, shown: Any) -> None:
        auto = self.is_auto(stored)
        self.auto.blockSignals(True)
        self.auto.setChecked(auto)
        self.auto.blockSignals(False)
        self.inner.set_enabled(not auto)
        if not auto:
            self.inner.show(self.param.default if stored is UNSET else stored)
        elif shown is not None:
            self.inner.show(shown)
        else:
            self.inner.show_unknown("?" if self.param.inferred else "–")

    def show(self, value: Any) -> None:
        """A stored value with nothing inferred to show beside it (see present())."""
        self.present(value, None)

    def value(self):
        return self._clear if self.auto.isChecked() else self.inner.value()


def make_editor(param: Param, emit: Emit, is_input: bool = False) -> Editor:
    k = param.kind
    if k in (INT, DIM):
        inner: Editor = IntEditor(param, emit)
    elif k == FLOAT:
        inner = FloatEditor(param, emit)
    elif k == BOOL:
        inner = BoolEditor(param, emit)
    elif k == CHOICE:
        inner = ChoiceEditor(param, emit)
    elif k == PAIR:
        inner = PairEditor(param, emit)
    elif k == PADDING:
        inner = PaddingEditor(param, emit)
    elif k == OUTPUT_SIZE:
        inner = PairEditor(param, emit, allow_none=True)
    elif k == SHAPE:
        inner = ShapeEditor(param, emit, presets=is_input)
    else:  # pragma: no cover - every kind is handled above
        raise AssertionError(f"no editor for param kind {k}")
    if param.inferred or param.nullable:
        return AutoEditor(param, emit, inner)
    return inner


class InspectorPanel(QWidget):
    def __init__(self, document: Document, parent: QWidget | None = None):
        super().__init__(parent)
        self.document = document
        self.node_id: str | None = None
        self._type: str | None = None
        self.editors: dict[str, Editor] = {}

        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.NoFrame)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)

        self.empty = QLabel("Select a block on the canvas to edit its parameters.\n\n"
                            "Drag blocks from the palette, connect an output port (bottom) to an "
                            "input port (top).")
        self.empty.setWordWrap(True)
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
        self._show_empty()

        document.selection_changed.connect(self._on_selection)
        document.graph_changed.connect(self._on_graph_changed)
        document.project_replaced.connect(self._on_selection)

    # -- building ---------------------------------------------------------------------
    def _show_empty(self, text: str | None = None) -> None:
        self.node_id = self._type = None
        self.editors = {}
        self.name_edit = None
        self.empty.setText(text or self.empty.text())
        old = self.scroll.takeWidget()
        if old is not None and old is not self.empty:
            old.deleteLater()
        self.scroll.setWidget(self.empty)
        self.form_host = None

    def _on_selection(self, *args) -> None:
        ids = self.document.selection
        if len(ids) == 1:
            node = self.document.graph.node(ids[0])
            if ids[0] == self.node_id and node.type == self._type:
                self.refresh()
            else:
                self._build(ids[0])
        elif len(ids) > 1:
            self._show_empty(f"{len(ids)} blocks selected.\n\nSelect a single block to edit its parameters; "
                             "Delete, Copy and Duplicate act on all of them.")
        else:
            self._show_empty("Select a block on the canvas to edit its parameters.\n\n"
                             "Drag blocks from the palette, connect an output port (bottom) to an "
                             "input port (top).")

    def _on_graph_changed(self) -> None:
        if self.node_id is None:
            return
        g = self.document.graph
        if self.node_id not in g:
            self._on_selection()
        elif g.node(self.node_id).type != self._type:
            self._build(self.node_id)
        else:
            self.refresh()

    def _build(self, node_id: str) -> None:
        if self.scroll.widget() is self.empty:
            self.scroll.takeWidget()  # keep the placeholder alive for later
        node = self.document.graph.node(node_id)
        spec = node.spec
        self.node_id, self._type = node_id, node.type
        host = QWidget()
        host.setObjectName("inspectorForm")
        lay = QVBoxLayout(host)
        lay.setContentsMargins(10, 10, 10, 10)
        lay.setSpacing(8)

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

        self.stats = QLabel()
        self.stats.setWordWrap(True)
        self.stats.setTextInteractionFlags(Qt.TextSelectableByMouse)
        lay.addWidget(self.stats)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setObjectName("inspectorProblem")
        lay.addWidget(self.problem)
        self.refusal = QLabel()
        self.refusal.setWordWrap(True)
        self.refusal.setObjectName("inspectorRefusal")
        self.refusal.hide()
        self.restyle()
        lay.addWidget(self.refusal)
        lay.addStretch(1)

        old = self.scroll.takeWidget()
        if old is not None and old is not self.empty:
            old.deleteLater()
        self.scroll.setWidget(host)
        self.form_host = host
        self.refresh()

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
            parts = [f"<b>Output</b> {fmt_shape(info.shape)}", f"{s.params:,} parameters"]
            if s.macs:
                parts.append(f"{human(s.macs)} MACs")
            parts.append(f"{human_bytes(s.memory)} activations")
            self.stats.setText(" · ".join(parts))
        else:
            self.stats.setText("")
        if info is not None and info.error:
            color = "#8a909a" if info.waiting else "#e5484d"
            prefix = "Waiting:" if info.waiting else "⚠ Problem:"
            self.problem.setText(f"<span style='color:{color}'><b>{prefix}</b> {_esc(info.error)}</span>")
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
        """Rebuild the form so its icons and colours follow the new palette."""
        if self.node_id is not None:
            self._build(self.node_id)
        else:
            self.restyle()

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


_esc = partial(html.escape, quote=False)  # &, < and > only, as Qt rich text needs

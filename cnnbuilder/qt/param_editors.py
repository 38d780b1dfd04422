"""Parameter editors for the inspector: one editor per parameter *kind* (LayerSpec's Param.kind),
each a small widget group that shows a stored value and emits the user's new one."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QWidget,
)

from ..core.blocks import fmt_shape
from ..core.blocks.base import BOOL, CHOICE, DIM, FLOAT, INT, OUTPUT_SIZE, PAD4, PADDING, PAIR, SHAPE, SIZES, Param
from ..core.graph import UNSET
from .icons import icon

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


class NumbersEditor(Editor):
    """A list of whole numbers typed as text ("16, 16"): Split's sizes, ZeroPad2d's left, right,
    top, bottom (or one number for all four). The core checks what was typed; the inspector shows
    its refusal and puts the block's value back."""

    HINTS = {SIZES: "Sizes of the parts, separated by commas (e.g. 16, 16)",
             PAD4: "One number for every side, or left, right, top, bottom (e.g. 1, 1, 2, 0)"}

    def __init__(self, param: Param, emit: Emit):
        super().__init__(param, emit)
        self.edit = self.widget = QLineEdit()
        self.edit.setPlaceholderText("e.g. 16, 16" if param.kind == SIZES else "e.g. 1 or 1, 1, 2, 0")
        self.edit.setToolTip(self.HINTS.get(param.kind, ""))
        self.edit.editingFinished.connect(self._finished)
        self._shown = ""

    def _finished(self) -> None:
        if self.edit.text().strip() != self._shown:
            self.emit(self.value())

    def value(self) -> Any:
        parts = [t for t in re.split(r"[\s,;×x]+", self.edit.text().strip()) if t]
        try:
            numbers = [int(t) for t in parts]
        except ValueError:
            return self.edit.text()  # not numbers: the core's message says what it expects
        if self.param.kind == PAD4 and len(numbers) == 1:
            return numbers[0]
        return numbers

    def show(self, value: Any) -> None:
        if isinstance(value, tuple) and self.param.kind == PAD4 and len(set(value)) == 1:
            value = value[0]
        self._shown = ", ".join(str(v) for v in value) if isinstance(value, (tuple, list)) else str(value)
        self.edit.blockSignals(True)
        self.edit.setText(self._shown)
        self.edit.blockSignals(False)


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
    elif k in (SIZES, PAD4):
        inner = NumbersEditor(param, emit)
    else:  # pragma: no cover - every kind is handled above
        raise AssertionError(f"no editor for param kind {k}")
    if param.inferred or param.nullable:
        return AutoEditor(param, emit, inner)
    return inner

"""The training settings form, built from the core's settings schema (core.training.config.SETTINGS):
one editor per setting kind, with the schema's bounds, so the form never clamps a value the core
accepts and never holds a rule of its own."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ...core.training.config import SETTINGS, Setting, TrainConfig
from ..param_editors import SciSpinBox

Field = tuple[QWidget, Callable[[], Any], Callable[[Any], None]]


class ExactSpinBox(SciSpinBox):
    """A float field that keeps any double it is given (Qt rounds to `decimals` places, so 1e-7
    in a 6-decimal box became 0, then the minimum) and shows it in its shortest exact form."""

    _exact = 0.0  # the base class formats a value before __init__ below has run

    def __init__(self, setting: Setting):
        super().__init__()
        self.setDecimals(323)  # Qt's maximum: almost no rounding, and the exact value is kept beside
        self._log = setting.log
        self.setSingleStep(setting.step)
        self._setting = False
        self.valueChanged.connect(self._track)  # first, so the form's slots read the new value

    def setValue(self, value: float) -> None:
        # Qt still rounds past 323 places (2.2e-309 became 0): keep the double we were given.
        self._exact = min(max(float(value), self.minimum()), self.maximum())
        self._setting = True
        try:
            super().setValue(self._exact)
        finally:
            self._setting = False

    def _track(self, value: float) -> None:
        if not self._setting:  # the user typed or stepped
            self._exact = value

    def value(self) -> float:
        return self._exact

    def textFromValue(self, value: float) -> str:
        return repr(self._exact if value == super().value() else float(value))

    def stepBy(self, steps: int) -> None:
        if not self._log:
            super().stepBy(steps)
            return
        value = self.value()
        for _ in range(abs(steps)):
            value = _next_125(value, up=steps > 0, floor=self.minimum())
        self.setValue(min(max(value, self.minimum()), self.maximum()))


def _next_125(value: float, up: bool, floor: float) -> float:
    """The next value along 1, 2, 5, 10, 20, ... (learning rates and decays span decades)."""
    if value <= 0:
        return max(floor, 1e-6) if up else 0.0
    exp = math.floor(math.log10(value))
    ladder = [m * 10.0 ** e for e in (exp - 1, exp, exp + 1) for m in (1, 2, 5)]
    ladder = [float(f"{x:.3g}") for x in ladder]
    if up:
        return next(x for x in ladder if x > value * (1 + 1e-9))
    below = [x for x in ladder if x < value * (1 - 1e-9)]
    return below[-1] if below else 0.0


class SettingsForm(QWidget):
    """Editors for every setting of the schema that has a form group; `edited` after each change."""

    edited = Signal()
    browse_requested = Signal(str)  # a folder field's "…" button: the setting's name

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.fields: dict[str, Field] = {}
        self._loading = False
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        groups: dict[str, QFormLayout] = {}
        self.boxes: dict[str, QGroupBox] = {}  # form group -> its box
        for s in SETTINGS.values():
            if not s.group:
                continue
            if s.group not in groups:
                box = self.boxes[s.group] = QGroupBox(s.group)
                groups[s.group] = QFormLayout(box)
                groups[s.group].setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
                lay.addWidget(box)
            self._add(groups[s.group], s)
        lay.addStretch(1)

    # -- building ---------------------------------------------------------------------------------
    def _add(self, form: QFormLayout, s: Setting) -> None:
        widget, get, set_ = getattr(self, f"_make_{s.kind}")(s)
        widget.setToolTip(s.help)
        if s.kind == "bool":
            form.addRow(widget)
        else:
            form.addRow(s.label, widget)
        self.fields[s.name] = (widget, get, set_)

    def _make_choice(self, s: Setting) -> Field:
        w = QComboBox()
        for key, text in (s.choices or {}).items():
            w.addItem(text, key)
        w.currentIndexChanged.connect(self._changed)
        return w, w.currentData, lambda v: w.setCurrentIndex(max(0, w.findData(v)))

    def _make_device(self, s: Setting) -> Field:
        w, get, _set = self._make_choice(s)

        def set_(v):
            i = w.findData(v)
            if i < 0:  # a device this machine lacks (a project from another PC): keep it, shown as is
                w.addItem(str(v), v)
                i = w.count() - 1
            w.setCurrentIndex(i)

        return w, get, set_

    def _make_int(self, s: Setting) -> Field:
        w = QSpinBox()
        w.setRange(int(s.lo), int(s.hi))  # every int bound of the schema fits Qt's 32 bits (tested)
        w.setSingleStep(int(s.step))
        w.setKeyboardTracking(False)  # one edit per finished number, not per keystroke
        w.valueChanged.connect(self._changed)
        return w, w.value, lambda v: w.setValue(int(v))

    def _make_float(self, s: Setting) -> Field:
        w = ExactSpinBox(s)
        w.setRange(s.lo, s.hi)
        w.setKeyboardTracking(False)
        w.valueChanged.connect(self._changed)
        return w, w.value, lambda v: w.setValue(float(v))

    def _make_bool(self, s: Setting) -> Field:
        w = QCheckBox(s.label)
        w.toggled.connect(self._changed)
        return w, w.isChecked, lambda v: w.setChecked(bool(v))

    def _make_path(self, s: Setting) -> Field:
        edit = QLineEdit()
        edit.setPlaceholderText(s.placeholder)
        browse = QToolButton()
        browse.setText("…")
        browse.clicked.connect(lambda _checked=False: self.browse_requested.emit(s.name))
        row = QWidget()
        rl = QHBoxLayout(row)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(edit, 1)
        rl.addWidget(browse)
        edit.editingFinished.connect(self._changed)
        return row, edit.text, lambda v: edit.setText(v or "")

    def add_below(self, setting: str, widget: QWidget) -> None:
        """`widget` right under the group box holding `setting` (e.g. a preview of that group)."""
        lay = self.layout()
        lay.insertWidget(lay.indexOf(self.boxes[SETTINGS[setting].group]) + 1, widget)

    # -- values -----------------------------------------------------------------------------------
    def _changed(self, *_args) -> None:
        if not self._loading:
            self.edited.emit()

    def values(self) -> dict[str, Any]:
        return {name: get() for name, (_w, get, _s) in self.fields.items()}

    def write(self, cfg: TrainConfig) -> None:
        """Show `cfg` without reporting edits."""
        self.set_values(**{name: getattr(cfg, name) for name in self.fields})
        self.update_visibility(cfg)

    def set_values(self, **values: Any) -> None:
        self._loading = True
        try:
            for name, v in values.items():
                self.fields[name][2](v)
        finally:
            self._loading = False

    def update_visibility(self, cfg: TrainConfig) -> None:
        for name, (widget, _g, _s) in self.fields.items():
            when = SETTINGS[name].when
            visible = when is None or when(cfg)
            widget.setVisible(visible)
            form = widget.parentWidget().layout()
            if isinstance(form, QFormLayout):
                label = form.labelForField(widget)
                if label is not None:
                    label.setVisible(visible)

    def set_devices(self, devices: list[tuple[str, str]], current: str) -> None:
        combo: QComboBox = self.fields["device"][0]
        self._loading = True
        try:
            combo.clear()
            notes = []
            for key, label in devices:
                combo.addItem(label, key)
                if key is None:  # a note, e.g. an NVIDIA GPU this PyTorch cannot use: shown, not choosable
                    combo.model().item(combo.count() - 1).setEnabled(False)
                    combo.setItemData(combo.count() - 1, label, Qt.ToolTipRole)
                    notes.append(label)
            combo.setToolTip("\n".join(notes))
            self.fields["device"][2](current)
        finally:
            self._loading = False

"""Live training curves and the run history.

Each run owns growable numpy buffers and its curve items, created once and afterwards only fed
with setData (pyqtgraph's advice: never clear() and re-plot). Events append to the buffers; a
timer pushes the buffers of runs that changed, at 25 Hz when painting is cheap. A repaint holds
the GIL, and every millisecond of it is a millisecond the training thread cannot dispatch its next
operation (on two cores, a paint also stalls one of torch's two threads and so the other), so the
interval stretches to keep painting under PAINT_BUDGET of the wall time: about 2-3 Hz on a busy
2-core machine, up to 25 Hz where painting is cheap. The project's runs (live ones keyed by the
panel's run number, stored ones by their record id) stay in a checkable list and their curves are
shown or hidden for comparison.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QGraphicsItem,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ..theme import plot_colors

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22")
SMOOTHING = 0.9  # EMA factor of the smoothed batch-loss curve
FRAME_MS = 40  # 25 Hz when painting is cheap
MAX_FRAME_MS = 1000
PAINT_BUDGET = 0.03  # share of wall time the plots may spend painting while a run trains


class TimedPlotArea(pg.GraphicsLayoutWidget):
    """A GraphicsLayoutWidget that knows how long its paints take (a smoothed average, in ms)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.paint_ms = 0.0

    def paintEvent(self, ev):  # noqa: N802 - Qt's name
        t = time.perf_counter()
        super().paintEvent(ev)
        ms = (time.perf_counter() - t) * 1000
        self.paint_ms = ms if self.paint_ms == 0 else 0.7 * self.paint_ms + 0.3 * ms


class Buffer:
    """An append-only float array that grows by doubling (amortised O(1) appends, no list copies)."""

    def __init__(self, dtype=np.float64, capacity: int = 1024):
        self._data = np.empty(capacity, dtype=dtype)
        self.n = 0

    def extend(self, values) -> None:
        values = np.asarray(values, dtype=self._data.dtype).ravel()
        need = self.n + len(values)
        if need > len(self._data):
            grown = np.empty(max(need, 2 * len(self._data)), dtype=self._data.dtype)
            grown[:self.n] = self._data[:self.n]
            self._data = grown
        self._data[self.n:need] = values
        self.n = need

    def append(self, value) -> None:
        self.extend((value,))

    @property
    def view(self) -> np.ndarray:
        return self._data[:self.n]

    def __len__(self) -> int:
        return self.n


@dataclass
class RunCurves:
    run_id: int | str
    label: str
    color: str
    steps: Buffer = field(default_factory=lambda: Buffer(np.float64))
    loss: Buffer = field(default_factory=lambda: Buffer(np.float32))
    smooth: Buffer = field(default_factory=lambda: Buffer(np.float32))
    lr_step: Buffer = field(default_factory=Buffer)
    lr: Buffer = field(default_factory=Buffer)
    epoch: Buffer = field(default_factory=Buffer)
    train_loss: Buffer = field(default_factory=Buffer)
    val_loss: Buffer = field(default_factory=Buffer)
    train_acc: Buffer = field(default_factory=Buffer)
    val_acc: Buffer = field(default_factory=Buffer)
    curves: dict = field(default_factory=dict)  # name -> PlotDataItem, made once
    dirty: bool = True
    _ema: float = math.nan
    _ema_n: int = 0

    def add_losses(self, steps, losses) -> None:
        self.steps.extend(steps)
        self.loss.extend(losses)
        out = np.empty(len(losses), dtype=np.float32)
        ema, n = self._ema, self._ema_n
        for i, v in enumerate(np.asarray(losses, dtype=np.float64)):
            if math.isfinite(v):  # a NaN step must not poison the rest of the smoothed curve
                ema = v if n == 0 else SMOOTHING * ema + (1 - SMOOTHING) * v  # starts at the first loss, not 0
                n += 1
            out[i] = ema
        self._ema, self._ema_n = ema, n
        self.smooth.extend(out)
        self.dirty = True

    def add_epoch(self, epoch, train_loss, val_loss, train_acc, val_acc) -> None:
        self.epoch.append(epoch)
        self.train_loss.append(train_loss)
        self.val_loss.append(math.nan if val_loss is None else val_loss)
        self.train_acc.append(train_acc * 100)
        self.val_acc.append(math.nan if val_acc is None else val_acc * 100)
        self.dirty = True

    def load_history(self, history: dict) -> None:
        """The curves of the run so far (a resumed run continues the same curve)."""
        if history.get("step"):
            self.add_losses(history["step"], history["loss"])
        if history.get("lr_step"):
            self.lr_step.extend(history["lr_step"])
            self.lr.extend(history["lr"])
        for i, ep in enumerate(history.get("epoch", [])):
            self.add_epoch(ep, history["train_loss"][i], history["val_loss"][i], history["train_acc"][i],
                           history["val_acc"][i])  # None or NaN: no validation


class TrainingPlots(QWidget):
    """Batch loss (raw and smoothed), loss and accuracy per epoch, learning rate; plus the run list."""

    ticked = Signal()  # once per frame, after the curves got their data (the panel syncs its text)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.runs: dict[int | str, RunCurves] = {}
        self.current: int | str | None = None
        self._colors = 0
        self._whole_epoch_ticks = False

        self.view = TimedPlotArea()
        self._titles: dict = {}
        self._key_items: list = []
        self.p_batch = self._plot("Training loss per batch", "step", "loss", row=0, col=0)
        self.p_lr = self._plot("Learning rate", "step", "lr", row=0, col=1)
        self.p_loss = self._plot("Loss per epoch", "epoch", "loss", row=1, col=0)
        self.p_acc = self._plot("Accuracy per epoch", "epoch", "%", row=1, col=1)
        # Which line is which: one neutral key per plot (every run uses the same two strokes).
        self.legends = [self._legend(self.p_loss, (-6, 6)), self._legend(self.p_acc, (-6, -6))]
        for p in (self.p_batch, self.p_lr):
            p.setClipToView(True)  # draw only what is on screen
            p.setDownsampling(auto=True, mode="peak")  # thousands of steps stay cheap, spikes stay visible
        self.p_lr.setXLink(self.p_batch)

        self.run_list = QListWidget()
        self.run_list.setToolTip("This project's runs: tick runs to overlay their curves (the Runs tab renames, "
                                 "deletes and compares them)")
        self.run_list.itemChanged.connect(self._on_item_changed)
        self.run_list.setWordWrap(True)  # a long run name wraps in the narrow list instead of being cut
        self.run_list.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        side = QWidget()
        sl = QVBoxLayout(side)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(QLabel("Runs"))
        sl.addWidget(self.run_list, 1)

        side.setMinimumWidth(120)
        side.setMaximumWidth(260)  # the run names are cut with a tooltip; the plots need the width more
        split = QSplitter(Qt.Horizontal)
        split.addWidget(self.view)
        split.addWidget(side)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)

        self.timer = QTimer(self)
        self.timer.setInterval(FRAME_MS)
        self.timer.timeout.connect(self._tick)
        self.restyle()

    def _plot(self, title, xlabel, ylabel, row, col):
        p = self.view.addPlot(row=row, col=col)
        self._titles[p] = (title, xlabel, ylabel)
        for name in ("left", "bottom"):
            # A repaint of the plot area replays every axis's text; cached, an axis whose range did
            # not move (most of them while a run trains) costs a pixmap copy instead.
            p.getAxis(name).setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        return p

    def _legend(self, plot, offset) -> pg.LegendItem:
        legend = pg.LegendItem(offset=offset, labelTextSize="8pt")
        legend.setParentItem(plot.getViewBox())
        for name, style in (("train", Qt.SolidLine), ("validation", Qt.DashLine)):
            sample = pg.PlotDataItem(pen=pg.mkPen("#888888", width=2, style=style))
            self._key_items.append((sample, style))  # kept alive: the legend only draws it
            legend.addItem(sample, name)
        return legend

    @property
    def plots(self) -> tuple:
        return (self.p_batch, self.p_lr, self.p_loss, self.p_acc)

    def restyle(self) -> None:
        """Background, axes, titles, grid and legends in the palette's colours (light or dark)."""
        c = plot_colors()
        fg = c.foreground.name()
        self.view.setBackground(c.background)
        for p in self.plots:
            title, xlabel, ylabel = self._titles[p]
            p.setTitle(title, size="9pt", color=fg)
            for name, text in (("bottom", xlabel), ("left", ylabel)):
                axis = p.getAxis(name)
                axis.setPen(pg.mkPen(c.grid))
                axis.setTextPen(pg.mkPen(c.foreground))
                axis.setLabel(text, color=fg)
            p.showGrid(x=True, y=True, alpha=0.2)
        for sample, style in self._key_items:
            sample.setPen(pg.mkPen(c.foreground, width=2, style=style))
        for legend in self.legends:
            legend.setBrush(pg.mkBrush(c.legend_fill))
            legend.setPen(pg.mkPen(c.grid))
            legend.setLabelTextColor(c.foreground)
            for _sample, label in legend.items:
                label.setText(label.text)  # setLabelTextColor only records the colour
        self.dark = c.dark


    # -- runs ----------------------------------------------------------------------------------
    def begin_run(self, run_id: int | str, label: str) -> None:
        # Earlier runs step back into the list, unticked: overlaying is a choice, and every shown
        # curve costs paint time while the new run trains.
        for i in range(self.run_list.count()):
            self.run_list.item(i).setCheckState(Qt.Unchecked)
        self._add(run_id, label, checked=True)
        self.current = run_id
        self._apply_visibility()
        self.timer.start()

    def add_stored(self, run_id: str, label: str, history: dict, checked: bool = False) -> None:
        """A run read back from the project's runs folder, with its curves."""
        rec = self._add(run_id, label, checked)
        rec.load_history(history)
        self._apply_visibility()
        self.refresh()

    def _add(self, run_id, label: str, checked: bool) -> RunCurves:
        color = PALETTE[self._colors % len(PALETTE)]
        self._colors += 1
        rec = RunCurves(run_id, label, color)
        self.runs[run_id] = rec
        self._make_curves(rec)
        item = QListWidgetItem(label)
        item.setToolTip(label)
        item.setData(Qt.UserRole, run_id)
        item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
        item.setCheckState(Qt.Checked if checked else Qt.Unchecked)
        item.setForeground(QColor(color))
        self.run_list.blockSignals(True)
        self.run_list.insertItem(0, item)
        self.run_list.blockSignals(False)
        return rec

    def rekey(self, old, new: str, label: str) -> None:
        """A live run was recorded: from now on it goes by its record id."""
        rec = self.runs.pop(old, None)
        if rec is None:
            return
        rec.run_id, rec.label = new, label
        self.runs[new] = rec
        if self.current == old:
            self.current = new
        item = self._item(old)
        if item is not None:
            item.setData(Qt.UserRole, new)

    def rename(self, run_id, label: str) -> None:
        rec, item = self.runs.get(run_id), self._item(run_id)
        if rec is not None and item is not None:
            item.setText(item.text().replace(rec.label, label, 1))
            item.setToolTip(label)
            rec.label = label

    def remove(self, run_id) -> None:
        rec = self.runs.pop(run_id, None)
        if rec is not None:
            for name, curve in rec.curves.items():
                self._plot_of(name).removeItem(curve)
        item = self._item(run_id)
        if item is not None:
            self.run_list.takeItem(self.run_list.row(item))
        if self.current == run_id:
            self.current = None

    def clear_runs(self) -> None:
        """Another project: none of these runs are its runs."""
        self.timer.stop()
        for run_id in list(self.runs):
            self.remove(run_id)
        self.run_list.clear()
        self.current = None
        self._colors = 0

    def end_run(self, run_id, status: str, test_acc: float | None = None) -> None:
        rec = self.runs.get(run_id)
        if rec is None:
            return
        rec.dirty = True
        item = self._item(run_id)
        if item is not None:
            suffix = f" — test {test_acc:.1%}" if test_acc is not None else f" — {status}"
            item.setText(rec.label + suffix)
        self.refresh()
        self.timer.stop()

    def _plot_of(self, curve_name: str):
        if curve_name in ("raw", "smooth"):
            return self.p_batch
        if curve_name == "lr":
            return self.p_lr
        return self.p_loss if curve_name.endswith("loss") else self.p_acc

    def _item(self, run_id: int):
        for i in range(self.run_list.count()):
            if self.run_list.item(i).data(Qt.UserRole) == run_id:
                return self.run_list.item(i)
        return None

    def _make_curves(self, rec: RunCurves) -> None:
        c = QColor(rec.color)
        faint = QColor(c)
        faint.setAlpha(70)
        solid = pg.mkPen(c, width=2)
        dashed = pg.mkPen(c, width=2, style=Qt.DashLine)
        sym = {"symbol": "o", "symbolSize": 6, "symbolBrush": c, "symbolPen": None}
        rec.curves = {
            "raw": self.p_batch.plot(pen=pg.mkPen(faint, width=1), skipFiniteCheck=True),
            "smooth": self.p_batch.plot(pen=solid, skipFiniteCheck=True),
            "lr": self.p_lr.plot(pen=solid, skipFiniteCheck=True),
            "train_loss": self.p_loss.plot(pen=solid, **sym),
            "val_loss": self.p_loss.plot(pen=dashed, **{**sym, "symbol": "t"}),
            "train_acc": self.p_acc.plot(pen=solid, **sym),
            "val_acc": self.p_acc.plot(pen=dashed, **{**sym, "symbol": "t"}),
        }

    def _on_item_changed(self, item) -> None:
        self._apply_visibility()

    def _apply_visibility(self) -> None:
        for i in range(self.run_list.count()):
            item = self.run_list.item(i)
            rec = self.runs.get(item.data(Qt.UserRole))
            if rec is None:
                continue
            shown = item.checkState() == Qt.Checked
            for name, curve in rec.curves.items():
                # Earlier runs overlay their smoothed curve only: raw noise of several runs is clutter.
                curve.setVisible(shown and (name != "raw" or rec.run_id == self.current))

    def set_checked(self, run_id: int, checked: bool) -> None:
        item = self._item(run_id)
        if item is not None:
            item.setCheckState(Qt.Checked if checked else Qt.Unchecked)

    # -- updates ---------------------------------------------------------------------------------
    def _tick(self) -> None:
        self.refresh()
        self.ticked.emit()
        # The paint this frame caused has not happened yet; the average of earlier ones decides.
        ms = self.view.paint_ms
        self.timer.setInterval(int(min(MAX_FRAME_MS, max(FRAME_MS, ms / PAINT_BUDGET))))

    def refresh(self) -> None:
        """Push changed buffers to their curves (called by the 25 Hz timer)."""
        for rec in self.runs.values():
            if not rec.dirty:
                continue
            rec.dirty = False
            cv = rec.curves
            cv["raw"].setData(rec.steps.view, rec.loss.view)
            cv["smooth"].setData(rec.steps.view, rec.smooth.view)
            cv["lr"].setData(rec.lr_step.view, rec.lr.view)
            ep = rec.epoch.view
            cv["train_loss"].setData(ep, rec.train_loss.view)
            cv["train_acc"].setData(ep, rec.train_acc.view)
            for name in ("val_loss", "val_acc"):
                y = getattr(rec, name).view
                if np.isfinite(y).any():
                    cv[name].setData(ep, y, connect="finite")
                else:  # no validation split: an all-NaN series only makes pyqtgraph's bounds warn
                    cv[name].setData([], [])
        self._fit_axes()

    def _fit_axes(self) -> None:
        shown = [r for r in self.runs.values() if r.curves and r.curves["lr"].isVisible() and len(r.lr)]
        if shown:
            # From 0: a constant rate is a flat line at its value, not noise magnified to fill the plot.
            top = max(float(np.nanmax(r.lr.view)) for r in shown)
            if math.isfinite(top) and top > 0:
                self.p_lr.setYRange(0, top * 1.05, padding=0)
        epochs = max((len(r.epoch) for r in self.runs.values()), default=0)
        whole = 0 < epochs <= 20  # ticks at whole epochs, not 1.2, 1.4, ...
        if whole != self._whole_epoch_ticks:  # setTickSpacing re-lays the axis out: only on a change
            self._whole_epoch_ticks = whole
            for p in (self.p_loss, self.p_acc):
                if whole:
                    p.getAxis("bottom").setTickSpacing(major=1, minor=1)
                else:
                    p.getAxis("bottom").setTickSpacing()

    def add_batch(self, run_id: int, steps, losses, step: int, lr: float) -> None:
        rec = self.runs.get(run_id)
        if rec is None:
            return
        rec.add_losses(steps, losses)
        rec.lr_step.append(step)
        rec.lr.append(lr)

    def add_epoch(self, run_id: int, ev) -> None:
        rec = self.runs.get(run_id)
        if rec is not None:
            rec.add_epoch(ev.epoch, ev.train_loss, ev.val_loss, ev.train_acc, ev.val_acc)

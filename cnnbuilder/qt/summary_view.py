"""Summary table: one row per block (output shape, parameters, MACs, activation memory, receptive
field and jump) plus a totals row, and under it the verdict: the model's errors (red) and its
warnings (amber: valid, but it does not fit the chosen training data yet). Clicking a row or a
problem selects the block on the canvas. During and after a run started in the Training panel, an
Activations column shows each block's activation mean (blue) and, after ReLU/ReLU6, the share of
dead units (red) as sparklines, amber when more than half of a block's units are dead.
Updates touch only the rows that changed; the receptive
fields (a pass over the whole graph) follow edits after the code preview's short debounce. A row's
tooltip shows how its numbers come out."""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from PySide6.QtCore import QAbstractTableModel, QItemSelectionModel, QModelIndex, QPointF, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QPen, QPolygonF
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QStyledItemDelegate,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..core.blocks import fmt_shape
from ..core.graph import Graph
from ..core.inspect.formulas import error_arithmetic
from ..core.inspect.receptive import Field, receptive_fields
from ..core.shapes import Analysis, fmt_outputs
from ..core.stats import human, human_bytes
from ..core.training.inspect_run import DEAD_TYPES, DEAD_WARNING, ActivationHistory
from ..core.verdict import ERROR as ERROR_LEVEL
from ..core.verdict import Issue, Verdict
from .arithmetic_view import FIELD_HELP, detail_html, tooltip_html
from .code_view import DEBOUNCE_MS
from .document import Document
from .icons import icon
from .theme import ERROR, WARNING, verdict_html

HEADERS = ("Block", "Type", "Output", "Params", "MACs", "Memory", "Receptive field")
FIELD_COL = 6
VIEW_HEADERS = HEADERS + ("Activations",)  # the last column only on screen (it belongs to a run)
ACT_COL = 7
ACT_HELP = ("Each block's output on a fixed batch of 64 training images, a few times an epoch: mean "
            f"(blue) and, after {' and '.join(sorted(DEAD_TYPES))}, the share of dead units (red: zero for "
            "every image of the batch, so they pass no gradient back). Amber: more than half dead; "
            "try a lower learning rate, LeakyReLU, or BatchNorm before the activation.")
TRACE_ROLE = Qt.UserRole + 3
ID_ROLE = Qt.UserRole + 1
LEVEL_ROLE = Qt.UserRole + 2


@dataclass(frozen=True)
class Row:
    node_id: str | None  # None for the totals row
    name: str
    type: str
    shape: str
    params: int | None
    macs: int | None
    memory: int | None
    error: str | None
    waiting: bool
    field: Field | None = None  # receptive field and jump; None: unknown (a problem, or not computed yet)
    detail: str = ""  # with an error: the arithmetic step that goes wrong

    @property
    def field_text(self) -> str:
        return self.field.text if self.field is not None else ""


def summary_rows(graph: Graph, a: Analysis, fields: Mapping[str, Field] | None = None,
                 details: Mapping[str, str] | None = None) -> list[Row]:
    """`fields`: the receptive fields (computed when not given); `details`: the failing arithmetic
    per block in error (the verdict's `error_details()`; computed when not given)."""
    order = a.order or [n.id for n in graph]
    if fields is None:
        fields = receptive_fields(graph, a)
    if details is None:
        details = {nid: d for nid in order if (d := error_arithmetic(graph, nid, a))}
    rows = []
    for nid in order:
        n, info = graph.node(nid), a.nodes.get(nid)
        ok = info is not None and info.shape is not None
        rows.append(Row(nid, n.label, n.type, fmt_outputs(info) if ok else "—",
                        info.stats.params if ok else None, info.stats.macs if ok else None,
                        info.stats.memory if ok else None,
                        info.error if info is not None else None, bool(info is not None and info.waiting),
                        fields.get(nid) if ok else None, details.get(nid, "") if not ok else ""))
    rows.append(Row(None, "Total", f"{len(graph)} block{'' if len(graph) == 1 else 's'}",
                    fmt_shape(a.output_shape) if a.ok and a.output_shape else ("—" if not a.ok else ""),
                    a.total_params, a.total_macs, a.total_memory, None, False))
    return rows


def _cells(r: Row) -> tuple[str, ...]:
    return (r.name, r.type, r.shape,
            "" if r.params is None else f"{r.params:,}",
            "" if r.macs is None else (human(r.macs) if r.macs else "0"),
            "" if r.memory is None else human_bytes(r.memory),
            r.field_text)


def summary_csv(graph: Graph, a: Analysis, fields: Mapping[str, Field] | None = None,
                details: Mapping[str, str] | None = None, warnings: Sequence[Issue] = ()) -> str:
    """One row per block; `warnings` (the verdict's) go in their block's row, or in a row of their own."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["block", "type", "output_shape", "params", "macs", "memory_bytes", "receptive_field", "jump",
                "error", "error_arithmetic", "warning"])
    warned: dict[str | None, list[str]] = {}
    for issue in warnings:
        warned.setdefault(issue.node_id, []).append(issue.message)
    for r in summary_rows(graph, a, fields, details):
        f = r.field
        w.writerow([r.name, r.type, r.shape if r.shape != "—" else "", "" if r.params is None else r.params,
                    "" if r.macs is None else r.macs, "" if r.memory is None else r.memory,
                    f.size_text if f else "", f.jump_text if f else "", r.error or "", r.detail,
                    "; ".join(warned.get(r.node_id, ())) if r.node_id is not None else ""])
    for message in warned.get(None, ()):  # about the data, not a block
        w.writerow(["", "", "", "", "", "", "", "", "", "", message])
    return out.getvalue()


def summary_markdown(graph: Graph, a: Analysis, title: str = "", fields: Mapping[str, Field] | None = None,
                     details: Mapping[str, str] | None = None, warnings: Sequence[Issue] = ()) -> str:
    lines = [f"# {title}", ""] if title else []
    lines.append("| " + " | ".join(HEADERS) + " |")
    lines.append("|" + "|".join(("---", "---", "---", "---:", "---:", "---:", "---")) + "|")
    rows = summary_rows(graph, a, fields, details)
    detail_of = {r.node_id: r.detail for r in rows if r.detail}
    for r in rows:
        cells = [c.replace("|", "\\|") for c in _cells(r)]
        if r.node_id is None:
            cells = [f"**{c}**" if c else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    problems = a.root_problems
    if problems:
        lines += ["", "Problems:", ""]
        for p in problems:
            where = f"{graph.node(p.node_id).label}: " if p.node_id else ""
            detail = detail_of.get(p.node_id)
            lines.append(f"- {where}{p.message}" + (f" (`{detail}`)" if detail else ""))
    if warnings:
        lines += ["", "Warnings (valid, but it does not fit the chosen training data yet):", ""]
        for issue in warnings:
            where = f"{graph.node(issue.node_id).label}: " if issue.node_id and issue.node_id in graph else ""
            lines.append(f"- {where}{issue.message}")
    return "\n".join(lines) + "\n"


class SummaryModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        # node id -> rich text of how the block's numbers come out, asked only when a tooltip shows
        self.arithmetic_tip: Callable[[str], str] = lambda node_id: ""
        self.rows: list[Row] = []
        self._cells: list[tuple[str, ...]] = []
        self._row_of: dict[str | None, int] = {}
        self._bold = QFont()
        self._bold.setBold(True)
        self.activations = ActivationHistory()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(VIEW_HEADERS)

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if orientation == Qt.Horizontal and role == Qt.DisplayRole:
            return VIEW_HEADERS[section]
        if orientation == Qt.Horizontal and role == Qt.ToolTipRole and section == ACT_COL:
            return ACT_HELP
        if orientation == Qt.Horizontal and role == Qt.TextAlignmentRole and 3 <= section < FIELD_COL:
            return int(Qt.AlignRight | Qt.AlignVCenter)
        if orientation == Qt.Horizontal and role == Qt.ToolTipRole and section == FIELD_COL:
            return FIELD_HELP
        return None

    def data(self, index: QModelIndex, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        r = self.rows[index.row()]
        col = index.column()
        if col == ACT_COL:
            return self._activation_data(r, role)
        if role == Qt.DisplayRole:
            return self._cells[index.row()][col]
        if role == ID_ROLE:
            return r.node_id
        if role == Qt.TextAlignmentRole:
            return int((Qt.AlignRight if 3 <= col < FIELD_COL else Qt.AlignLeft) | Qt.AlignVCenter)
        if role == Qt.ForegroundRole:
            if r.error and not r.waiting and col == 2:
                return QColor(ERROR)
            if r.waiting:
                return QColor(128, 128, 128)
            return None
        if role == Qt.FontRole and r.node_id is None:
            return self._bold
        if role == Qt.ToolTipRole:
            if r.node_id is None:
                return (f"{r.params:,} trainable parameters, {r.macs:,} multiply-accumulates, "
                        f"{human_bytes(r.memory or 0)} of activations per sample")
            return self._row_tip(r, col)
        return None

    def _row_tip(self, r: Row, col: int) -> str:
        head = f"<b>{_esc(r.name)}</b> ({_esc(r.type)})"
        if r.error:
            color = "#8a909a" if r.waiting else ERROR
            tip = f"{head}<br><span style='color:{color}'>{_esc(r.error)}</span>"
            return tip + (f"<br>{detail_html(r.detail)}" if r.detail else "")
        if col == FIELD_COL and r.field is not None:
            note = f"<br><br>{_esc(r.field.note)}" if r.field.note else ""
            return f"{head}: receptive field {_esc(r.field.text)}<br><br>{_esc(FIELD_HELP)}{note}"
        body = self.arithmetic_tip(r.node_id)
        return f"{head}<br>{body}" if body else head

    def _activation_data(self, r: Row, role):
        nid = r.node_id
        if nid is None or nid not in self.activations:
            return r.node_id if role == ID_ROLE else None
        dead = self.activations.last_dead(nid)
        _steps, mean, std, _d = self.activations.series(nid)
        if role == Qt.DisplayRole:
            return f"{dead:.0%} dead" if dead == dead else f"μ {mean[-1]:.2g}"
        if role == ID_ROLE:
            return nid
        if role == TRACE_ROLE:
            return self.activations.series(nid)
        if role == Qt.ForegroundRole and dead == dead and dead > DEAD_WARNING:
            return QColor(WARNING)
        if role == Qt.ToolTipRole:
            tip = (f"<b>{_esc(r.name)}</b> ({_esc(r.type)}): activation mean {mean[-1]:.3g}, std {std[-1]:.3g}" +
                   (f", {dead:.1%} of units dead" if dead == dead else ""))
            if dead == dead and dead > DEAD_WARNING:
                tip += f"<br><span style='color:{WARNING}'>more than half of its units are dead</span>"
            return f"{tip}<br><br>{_esc(ACT_HELP)}"
        return None

    def add_activations(self, ev) -> None:
        """An Activations event: the column's sparklines grow (a new run starts them afresh)."""
        self.activations.add(ev)
        if self.rows:
            self.dataChanged.emit(self.index(0, ACT_COL), self.index(len(self.rows) - 1, ACT_COL))

    def set_rows(self, rows: list[Row]) -> None:
        """Reset when blocks were added, removed or reordered; otherwise signal changed rows only."""
        if [r.node_id for r in rows] != [r.node_id for r in self.rows]:
            self.beginResetModel()
            self.rows = rows
            self._cells = [_cells(r) for r in rows]
            self._row_of = {r.node_id: i for i, r in enumerate(rows)}
            self.endResetModel()
            return
        changed = [i for i, (new, old) in enumerate(zip(rows, self.rows, strict=True)) if new != old]
        for i in changed:
            self.rows[i] = rows[i]
            self._cells[i] = _cells(rows[i])
        if changed:  # one signal for the span: a view repaints visible rows only anyway
            self.dataChanged.emit(self.index(changed[0], 0), self.index(changed[-1], len(VIEW_HEADERS) - 1))

    def row_of(self, node_id: str) -> int:
        return self._row_of.get(node_id, -1)


class SummaryPanel(QWidget):
    def __init__(self, document: Document, parent: QWidget | None = None):
        super().__init__(parent)
        self.document = document
        self.model = SummaryModel(self)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        vh = self.table.verticalHeader()
        vh.setSectionResizeMode(QHeaderView.Fixed)  # uniform rows: fast with thousands of blocks
        vh.setDefaultSectionSize(self.fontMetrics().height() + 8)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.Interactive)
        hh.setSectionResizeMode(0, QHeaderView.Stretch)  # names take the spare room, numbers stay together
        fm = self.fontMetrics()
        for col, sample in enumerate(("block2_conv1_wide", "AdaptiveAvgPool2d", "512×224×224", "23,500,000",
                                      "1.23 G", "99.9 MiB", "≈212×212, jump 32", "100% dead")):
            self.table.setColumnWidth(col, fm.horizontalAdvance(sample) + 24 + (SPARK_W if col == ACT_COL else 0))
        self.table.setItemDelegateForColumn(ACT_COL, SparklineDelegate(self.table))
        self.table.selectionModel().selectionChanged.connect(self._rows_selected)

        self.problems_label = QLabel(self)
        self.problems = QListWidget(self)
        self.problems.itemClicked.connect(self._problem_clicked)
        self.problems.itemActivated.connect(self._problem_clicked)
        self.problems.setToolTip("Click a problem to select its block")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.setSpacing(4)
        lay.addWidget(self.table, 1)
        self.activation_warning = QLabel(self)
        self.activation_warning.setWordWrap(True)
        self.activation_warning.hide()
        lay.addWidget(self.activation_warning)
        lay.addWidget(self.problems_label)
        lay.addWidget(self.problems)

        self._syncing = False
        self.model.arithmetic_tip = self._arithmetic_tip
        self._fields: Mapping[str, Field] = {}  # the last receptive fields computed (maybe one edit old)
        self.field_timer = QTimer(self)
        self.field_timer.setSingleShot(True)
        self.field_timer.setInterval(DEBOUNCE_MS)
        self.field_timer.timeout.connect(self.update_fields)
        document.verdict_changed.connect(self.refresh)  # every edit, a data setting change, a new project
        document.selection_changed.connect(self._select_rows)
        self.refresh()

    def refresh(self) -> None:
        doc = self.document
        v = doc.verdict
        if doc.fields_ready():
            self._fields = doc.fields
        else:  # the fields follow after the debounce; until then a changed block keeps its last one
            self.field_timer.start()
        self.model.set_rows(summary_rows(doc.graph, v.analysis, self._fields, v.error_details()))
        self._fill_problems(v)
        self._select_rows(doc.selection)

    def show_activations(self, ev) -> None:
        """An Activations event from a training run: sparklines, and a warning for dying blocks."""
        self.model.add_activations(ev)
        g = self.document.graph
        dying = [(g.node(nid).label, d) for nid, d in self.model.activations.dying() if nid in g]
        if dying:
            names = ", ".join(f"{name} ({d:.0%})" for name, d in dying)
            self.activation_warning.setText(f"<span style='color:{WARNING}'>⚠ More than half of the units are "
                                            f"dead in {_esc(names)}: they output zero for every probe image "
                                            "and no longer learn.</span>")
        self.activation_warning.setToolTip(ACT_HELP)
        self.activation_warning.setVisible(bool(dying))

    def update_fields(self) -> None:
        """Receptive fields for the current graph (the debounce timer calls this)."""
        self.field_timer.stop()
        self._fields = self.document.fields
        self.refresh()

    def _arithmetic_tip(self, node_id: str) -> str:
        doc = self.document
        if node_id not in doc.graph:
            return ""
        b = doc.arithmetic(node_id)
        return tooltip_html(b, self._fields.get(node_id) if b is not None else None)

    def _fill_problems(self, v: Verdict) -> None:
        g = self.document.graph
        a = v.analysis
        entries = []
        for issue in v.errors + v.warnings:
            if issue.node_id is not None and issue.node_id in g:
                n = g.node(issue.node_id)
                entries.append((f"{n.label} ({n.type}): {issue.text}", issue.node_id, issue.level))
            else:
                entries.append((issue.text, None, issue.level))
        current = [(self.problems.item(i).text(), self.problems.item(i).data(ID_ROLE),
                    self.problems.item(i).data(LEVEL_ROLE)) for i in range(self.problems.count())]
        if entries != current:
            self.problems.clear()
            marks = {ERROR_LEVEL: icon("warning", ERROR)}
            for text, nid, level in entries:
                item = QListWidgetItem(marks.get(level) or icon("warning", WARNING), text)
                item.setData(ID_ROLE, nid)
                item.setData(LEVEL_ROLE, level)
                item.setToolTip(text)
                self.problems.addItem(item)
        rows = min(max(len(entries), 1), 4)  # the list grows to four problems, then scrolls
        self.problems.setFixedHeight(rows * (self.problems.sizeHintForRow(0) if entries else 20) + 6)
        if not entries:
            self.problems_label.setText("✓ No problems: the model is valid")
            self.problems.hide()
            return
        waiting = len(a.problems) - len(a.root_problems)
        extra = f"; {waiting} more blocks wait on them" if waiting and v.errors else ""
        why = f" (it does not fit {_esc(v.dataset)} yet: the Training panel offers fixes)" \
            if v.ok and any(w.node_id for w in v.warnings) else ""
        self.problems_label.setText(f"<b>{verdict_html(v)}</b>{extra}{why}")
        self.problems.show()

    def _rows_selected(self, *args) -> None:
        if self._syncing:
            return
        ids = []
        for idx in self.table.selectionModel().selectedRows():
            nid = self.model.data(idx, ID_ROLE)
            if nid is not None:
                ids.append(nid)
        self._syncing = True
        try:
            self.document.set_selection(ids)
        finally:
            self._syncing = False

    def _select_rows(self, ids: list[str]) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            sm = self.table.selectionModel()
            sm.clearSelection()
            first = None
            for nid in ids:
                row = self.model.row_of(nid)
                if row >= 0:
                    sm.select(self.model.index(row, 0),
                              QItemSelectionModel.Select | QItemSelectionModel.Rows)
                    first = row if first is None else first
            if first is not None:
                self.table.scrollTo(self.model.index(first, 0))
        finally:
            self._syncing = False

    def _problem_clicked(self, item: QListWidgetItem) -> None:
        nid = item.data(ID_ROLE)
        if nid is not None and nid in self.document.graph:
            self.document.set_selection([nid])


_esc = partial(html.escape, quote=False)



SPARK_W = 64  # sparkline width in pixels


class SparklineDelegate(QStyledItemDelegate):
    """The activation column: mean (blue) and dead share (red, 0..1) over the run, then the text."""

    def paint(self, painter, option, index) -> None:
        trace = index.data(TRACE_ROLE)
        if trace is None:
            super().paint(painter, option, index)
            return
        opt = option.__class__(option)
        self.initStyleOption(opt, index)
        r = opt.rect
        spark = r.adjusted(3, 4, 0, -4)
        spark.setWidth(min(SPARK_W - 6, max(0, r.width() - 6)))
        opt.rect = r.adjusted(SPARK_W, 0, 0, 0)
        super().paint(painter, opt, index)
        _steps, mean, _std, dead = trace
        painter.save()
        painter.setRenderHint(painter.RenderHint.Antialiasing, True)
        lo, hi = float(mean.min()), float(mean.max())
        _polyline(painter, mean, lo, hi, spark, QColor("#3b82f6"))
        if len(dead) and dead[-1] == dead[-1]:
            _polyline(painter, dead, 0.0, 1.0, spark, QColor(WARNING if dead[-1] > DEAD_WARNING else ERROR))
        painter.restore()


def _polyline(painter, values, lo: float, hi: float, rect, color: QColor) -> None:
    n = len(values)
    if not n:
        return
    span = hi - lo if hi > lo else 1.0
    pts = QPolygonF()
    for i, v in enumerate(values):
        x = rect.left() + (rect.width() * i / (n - 1) if n > 1 else rect.width() / 2)
        y = rect.bottom() - rect.height() * ((float(v) - lo) / span if hi > lo else 0.5)
        pts.append(QPointF(x, y))
    painter.setPen(QPen(color, 1.5))
    if n == 1:
        painter.drawEllipse(pts[0], 1.5, 1.5)
    else:
        painter.drawPolyline(pts)

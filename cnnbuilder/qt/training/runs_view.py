"""The project's runs as a sortable table: pick the run that Evaluation, Feature maps and Export
weights use, rename it, delete it (after a confirmation). The records and their files are
core/runs.py's; this widget only lists them and forwards the user's choices to the RunStore."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...core.runs import RunError, RunRecord, RunStore
from ...core.training.cli import format_clock

COLUMNS = ("Run", "Date", "Dataset", "Epochs", "Best val. acc.", "Test acc.", "Params", "Time", "Status")


class _Item(QTableWidgetItem):
    """A cell that sorts by its key (a number or a date), not by its text."""

    def __init__(self, text: str, key):
        super().__init__(text)
        self.key = key

    def __lt__(self, other):  # noqa: D105 - Qt calls it while sorting
        a, b = self.key, getattr(other, "key", None)
        if a is None or b is None:  # blanks sort first
            return a is None and b is not None
        return a < b


class RunsView(QWidget):
    current_changed = Signal(object)  # the chosen RunRecord, or None
    renamed = Signal(object)  # the renamed RunRecord
    deleted = Signal(str)  # run id
    message = Signal(str, bool)  # (text, ok) for the panel's status line

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.store: RunStore | None = None
        self.records: dict[str, RunRecord] = {}
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSortingEnabled(True)
        self.table.setToolTip("The runs of this project, kept beside its file. Click a column to sort; the "
                              "selected run is the one Evaluation, Feature maps and Export weights show.")
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.table.itemDoubleClicked.connect(lambda _item: self.rename_current())
        self.rename_button = QPushButton("Rename…")
        self.rename_button.clicked.connect(self.rename_current)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setToolTip("Delete the run's record and weights from the project's runs folder")
        self.delete_button.clicked.connect(self.delete_current)
        self.where = QLabel()
        self.where.setStyleSheet("color: palette(mid);")
        self.where.setTextInteractionFlags(Qt.TextSelectableByMouse)
        row = QHBoxLayout()
        row.addWidget(self.where, 1)
        row.addWidget(self.rename_button)
        row.addWidget(self.delete_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.table, 1)
        lay.addLayout(row)
        self._update_buttons()

    # -- dialogs (overridable in tests) ----------------------------------------------------------
    def ask_run_name(self, current: str) -> str | None:
        text, ok = QInputDialog.getText(self, "Rename run", "Name:", text=current)
        return text if ok else None

    def ask_delete_run(self, name: str) -> bool:
        answer = QMessageBox.question(self, "Delete run", f"Delete “{name}” with its weights? This cannot be undone.",
                                      QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
        return answer == QMessageBox.Yes

    # -- contents --------------------------------------------------------------------------------
    def set_store(self, store: RunStore, records: list[RunRecord]) -> None:
        self.store = store
        self.records = {}
        self.table.setSortingEnabled(False)
        self.table.setRowCount(0)
        for r in records:
            self._insert(r)
        self.table.setSortingEnabled(True)
        self.where.setText(f"Kept in {store.folder}")
        self.select(records[-1].id if records else None)

    def move_store(self, store: RunStore) -> None:
        self.store = store
        self.where.setText(f"Kept in {store.folder}")

    def add(self, record: RunRecord) -> None:
        self.table.setSortingEnabled(False)
        self._remove_row(record.id)
        self._insert(record)
        self.table.setSortingEnabled(True)
        self.select(record.id)

    def current(self) -> RunRecord | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.records.get(self.table.item(rows[0].row(), 0).data(Qt.UserRole))

    def select(self, run_id: str | None) -> None:
        row = self._row(run_id) if run_id else None
        if row is None:
            self.table.clearSelection()
        else:
            self.table.selectRow(row)
        self._on_selection()

    def rename_current(self) -> bool:
        rec = self.current()
        if rec is None or self.store is None:
            return False
        name = self.ask_run_name(rec.name)
        if name is None or not name.strip() or name.strip() == rec.name:
            return False
        try:
            rec = self.store.rename(rec, name)
        except RunError as exc:
            self.message.emit(str(exc), False)
            return False
        self.records[rec.id] = rec
        self.table.item(self._row(rec.id), 0).setText(rec.name)
        self.renamed.emit(rec)
        return True

    def delete_current(self) -> bool:
        rec = self.current()
        if rec is None or self.store is None or not self.ask_delete_run(rec.name):
            return False
        try:
            self.store.delete(rec.id)
        except RunError as exc:
            self.message.emit(str(exc), False)
            return False
        self._remove_row(rec.id)
        self.records.pop(rec.id, None)
        self.deleted.emit(rec.id)
        self.message.emit(f"Deleted {rec.name}", True)
        self._on_selection()
        return True

    # -- internals ---------------------------------------------------------------------------------
    def _insert(self, r: RunRecord) -> None:
        self.records[r.id] = r
        row = self.table.rowCount()
        self.table.insertRow(row)
        date = r.date
        best, test = r.best_val_acc, r.test_acc
        cells = [
            _Item(r.name, r.name.lower()),
            _Item(date.astimezone().strftime("%Y-%m-%d %H:%M") if date else r.created, r.created),
            _Item(r.dataset, r.dataset),
            _Item(str(r.epochs), r.epochs),
            _Item("—" if best is None else f"{best:.2%}", best),
            _Item("—" if test is None else f"{test:.2%}", test),
            _Item(f"{r.params:,}", r.params),
            _Item(format_clock(r.seconds), r.seconds),
            _Item(r.status, r.status),
        ]
        cells[0].setData(Qt.UserRole, r.id)
        cells[0].setToolTip(f"{r.name}\n{r.id}")
        for col, item in enumerate(cells):
            if 3 <= col <= 7:
                item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
            self.table.setItem(row, col, item)

    def _row(self, run_id: str) -> int | None:
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.data(Qt.UserRole) == run_id:
                return row
        return None

    def _remove_row(self, run_id: str) -> None:
        row = self._row(run_id)
        if row is not None:
            self.table.removeRow(row)

    def _on_selection(self) -> None:
        self._update_buttons()
        self.current_changed.emit(self.current())

    def _update_buttons(self) -> None:
        has = self.current() is not None
        self.rename_button.setEnabled(has)
        self.delete_button.setEnabled(has)

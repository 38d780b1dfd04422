"""The block palette: every block type by category, searchable; drag one onto the canvas, or
double-click (Enter) to append it after the selected block."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from ..core.blocks import by_category
from .canvas.scene import BLOCK_MIME
from .icons import category_icon, icon

TYPE_ROLE = Qt.UserRole + 1


class _BlockTree(QTreeWidget):
    def mimeTypes(self) -> list[str]:
        return [BLOCK_MIME]

    def mimeData(self, items) -> QMimeData:
        md = QMimeData()
        types = [it.data(0, TYPE_ROLE) for it in items if it.data(0, TYPE_ROLE)]
        if types:
            md.setData(BLOCK_MIME, types[0].encode("utf-8"))
            md.setText(types[0])
        return md

    def supportedDropActions(self):
        return Qt.CopyAction


class PalettePanel(QWidget):
    block_activated = Signal(str)  # double-click or Enter: append this block type

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search blocks…")
        self.search.setClearButtonEnabled(True)
        self.search.addAction(icon("search"), QLineEdit.LeadingPosition)
        self.search.textChanged.connect(self.filter)
        self.search.returnPressed.connect(self._activate_first)
        self.tree = _BlockTree(self)
        self.tree.setHeaderHidden(True)
        self.tree.setRootIsDecorated(True)
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QAbstractItemView.DragOnly)
        self.tree.setSelectionMode(QAbstractItemView.SingleSelection)
        self.tree.setIndentation(14)
        self.tree.itemActivated.connect(self._on_activated)
        self.tree.setToolTip("Drag a block onto the canvas, or double-click to append it after the selected block")
        self.items: dict[str, QTreeWidgetItem] = {}
        self._groups: list[QTreeWidgetItem] = []
        for category, specs in by_category().items():
            group = QTreeWidgetItem(self.tree, [category])
            group.setIcon(0, category_icon(category))
            group.setFlags(Qt.ItemIsEnabled)
            font = group.font(0)
            font.setBold(True)
            group.setFont(0, font)
            self._groups.append(group)
            for spec in specs:
                item = QTreeWidgetItem(group, [spec.type])
                item.setData(0, TYPE_ROLE, spec.type)
                item.setIcon(0, category_icon(category))
                item.setToolTip(0, f"<b>{spec.type}</b><br>{spec.doc}")
                item.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable | Qt.ItemIsDragEnabled)
                self.items[spec.type] = item
        self.tree.expandAll()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.setSpacing(6)
        lay.addWidget(self.search)
        lay.addWidget(self.tree)

    def refresh_icons(self) -> None:
        for group in self._groups:
            group.setIcon(0, category_icon(group.text(0)))
            for i in range(group.childCount()):
                group.child(i).setIcon(0, category_icon(group.text(0)))
        self.search.actions()[0].setIcon(icon("search"))

    def filter(self, text: str) -> None:
        """Show the blocks whose type, category or description contains every word typed."""
        words = text.lower().split()
        for group in self._groups:
            shown = 0
            for i in range(group.childCount()):
                item = group.child(i)
                spec_type = item.data(0, TYPE_ROLE)
                hay = f"{spec_type} {group.text(0)} {item.toolTip(0)}".lower()
                hide = not all(w in hay for w in words)
                item.setHidden(hide)
                shown += not hide
            group.setHidden(shown == 0)
            group.setExpanded(True)

    def visible_types(self) -> list[str]:
        return [t for t, it in self.items.items() if not it.isHidden() and not it.parent().isHidden()]

    def _activate_first(self) -> None:
        visible = self.visible_types()
        exact = [t for t in visible if t.lower() == self.search.text().strip().lower()]
        if visible:
            self.block_activated.emit((exact or visible)[0])

    def _on_activated(self, item: QTreeWidgetItem, column: int) -> None:
        type_name = item.data(0, TYPE_ROLE)
        if type_name:
            self.block_activated.emit(type_name)

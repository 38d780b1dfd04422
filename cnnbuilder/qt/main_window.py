"""The main window: canvas in the middle, dockable palette, inspector, code preview, summary and
undo history around it; menus, toolbar, shortcuts; files, export, autosave and recovery.

Two workspaces arrange the same docks: Design (the editor around the canvas) and Train (the
training panel takes the room, the canvas stays on the left to pick the block whose feature maps
show, the training settings below it). Each remembers its own arrangement; the current one is
remembered across starts.

Every dialog goes through a small method (ask_save_changes, ask_open_path, ask_save_path,
ask_overwrite_read_only, show_error, ask_restore_autosave, choose_template, ask_import) so tests can
replace it.

Every file this window writes goes through `_write`: whatever fails (a full disk, a folder as the
target, text that cannot be encoded, a bug in a serializer), the user gets a dialog naming the file
and the reason, the project stays modified, and the old file stays whole.
"""

from __future__ import annotations

import html
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QEvent, QIODevice, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QColor,
    QGuiApplication,
    QImage,
    QImageWriter,
    QKeySequence,
    QPainter,
)
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDockWidget,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QScrollArea,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QToolBar,
    QToolButton,
    QUndoView,
    QVBoxLayout,
    QWidget,
)

from .. import __version__
from ..core.codegen import CodegenError, generate
from ..core.fileio import ReadOnlyError, atomic_write, describe_error
from ..core.project import Project, ProjectError
from ..core.stats import human
from . import onnx_export
from .autosave import Autosave
from .canvas.breadcrumb import BreadcrumbBar
from .canvas.items import NODE_H, NODE_W, EdgeItem, GroupItem, NodeItem
from .canvas.scene import GraphScene
from .canvas.view import GRID, GraphView
from .code_view import CLASS_NAME, CodePanel
from .document import Document
from .edit_actions import EditActions
from .export_actions import ExportActions
from .icons import app_icon, icon
from .import_dialog import ImportDialog
from .inspector import InspectorPanel
from .palette import PalettePanel
from .settings import add_recent_file, app_settings, clear_recent_files, recent_files
from .summary_view import SummaryPanel, summary_csv, summary_markdown
from .templates import TemplateDialog, default_project, empty_project, ready_to_train
from .theme import THEMES, apply_theme, canvas_colors, is_dark, verdict_html
from .training.panel import TrainingPanel

PROJECT_FILTER = "cnnbuilder projects (*.json);;All files (*)"
WORKSPACES = ("design", "train")
STATE_KEYS = {"design": "window/state", "train": "window/state_train"}  # design: the key from before workspaces
DESIGN_DOCKS = ("palette_dock", "inspector_dock", "code_dock", "summary_dock", "history_dock")
log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    def __init__(self, document: Document | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        if document is None:
            document = Document(empty_project(), self)  # ours: lives and dies with the window
        self.document = document
        self.settings = app_settings()
        self._close_hooks: list[Callable[[], object]] = []
        self._icon_names: dict[QAction, str] = {}
        self._dark = is_dark()
        self._saved_docks: set[str] = set()  # panels whose place the restored layout knows
        self._fit_pending = True
        self.workspace = "design"
        self._states: dict[str, QByteArray] = {}  # each workspace's dock arrangement (saveState)
        self._views: dict[str, tuple] = {}  # each workspace's canvas zoom and centre
        self._size_train_pending = False
        self._train_column = 0  # the Train workspace's left column (canvas and settings), in px
        self._known_width = 0  # the window width the column was measured at
        self.setWindowIcon(app_icon())
        self.setDockNestingEnabled(True)
        self.setCorner(Qt.BottomLeftCorner, Qt.LeftDockWidgetArea)
        self.setCorner(Qt.BottomRightCorner, Qt.RightDockWidgetArea)

        self.scene = GraphScene(self.document, self)
        self.view = GraphView(self.scene, self)
        self.breadcrumb = BreadcrumbBar(self.scene)
        canvas = QWidget()
        column = QVBoxLayout(canvas)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.breadcrumb)
        column.addWidget(self.view, 1)
        self.setCentralWidget(canvas)
        self.palette_panel = PalettePanel()
        self.inspector = InspectorPanel(self.document)
        self.code_panel = CodePanel(self.document)
        self.summary_panel = SummaryPanel(self.document)
        self.undo_view = QUndoView(self.document.undo_stack)
        self.undo_view.setEmptyLabel("Opened project")
        self.undo_view.setCleanIcon(icon("save"))

        self._create_actions()
        self._create_menus()
        self._create_toolbar()
        self._create_statusbar()
        self.docks: dict[str, QDockWidget] = {}
        self.add_panel(self.palette_panel, "Blocks", Qt.LeftDockWidgetArea, "palette_dock", tabify=False)
        self.add_panel(self.inspector, "Inspector", Qt.RightDockWidgetArea, "inspector_dock", tabify=False)
        self.add_panel(self.code_panel, "Code", Qt.RightDockWidgetArea, "code_dock", tabify=False)
        self.add_panel(self.summary_panel, "Summary", Qt.BottomDockWidgetArea, "summary_dock", tabify=False)
        self.add_panel(self.undo_view, "History", Qt.BottomDockWidgetArea, "history_dock")
        # Training sits beside the summary so the canvas keeps its room; Train (F5) raises it.
        self.training_panel = TrainingPanel(self.document)
        self.training_panel.activations.connect(self.summary_panel.show_activations)
        # In a scroll area: the panel is ~1100 px wide at its minimum, and a dock that insists on
        # that squeezes the palette and inspector on a laptop screen; it scrolls instead.
        self.training_scroll = training_scroll = QScrollArea()
        training_scroll.setWidget(self.training_panel)
        training_scroll.setWidgetResizable(True)
        training_scroll.setFrameShape(QFrame.NoFrame)
        self.add_panel(training_scroll, "Training", Qt.BottomDockWidgetArea, "training_dock")
        # The Train workspace moves the training settings into this dock, under the canvas; in
        # Design they sit in the Training panel and this dock stays hidden (and its toggle off).
        settings_dock = self.add_panel(QWidget(), "Training Settings", Qt.BottomDockWidgetArea,
                                       "training_settings_dock", tabify=False)
        settings_dock.hide()
        settings_dock.toggleViewAction().setEnabled(False)
        self.add_close_hook(self.training_panel.confirm_close)
        self.docks["training_dock"].installEventFilter(self)  # tracks the Train column (resizeEvent)
        self.training_panel.running_changed.connect(self._training_running)
        self.docks["summary_dock"].raise_()
        screen = QGuiApplication.primaryScreen()
        avail = screen.availableGeometry().size() if screen is not None else QSize(1500, 950)
        self.resize(min(1500, int(avail.width() * 0.95)), min(950, int(avail.height() * 0.95)))
        self._layout_restored = False

        d = self.document
        d.modified_changed.connect(self._update_title)
        d.path_changed.connect(self._update_title)
        d.project_replaced.connect(self._project_replaced)
        d.verdict_changed.connect(self._update_totals)
        self.scene.message.connect(self.show_status)
        self.scene.node_activated.connect(self._node_activated)
        self.scene.groups_selected.connect(self._groups_selected)
        self.scene.scope_changed.connect(self._scope_changed)
        self.scene.context_menu_requested.connect(self._context_menu)
        self.view.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f} %"))
        self.palette_panel.block_activated.connect(self.edit_actions.append_block)
        self.code_panel.export_requested.connect(self.export_code_dialog)

        self.autosave = Autosave(self.document, parent=self)
        self.autosave.failed.connect(lambda reason: self.show_status(f"Autosave failed: {reason}", 30_000))
        self.autosave.start()
        self._restore_settings()
        self._enter_workspace(initial=True)
        self._update_title()
        self._update_totals()

    # -- public API for other panels ---------------------------------------------------
    def add_panel(self, widget: QWidget, title: str, area=Qt.BottomDockWidgetArea,
                  object_name: str | None = None, tabify: bool = True) -> QDockWidget:
        """Dock any widget (with a toggle in View ▸ Panels); its place is remembered by object name.
        With `tabify`, a panel joins the first panel already in that area as a tab, so the
        canvas keeps its room; a layout saved by an earlier run takes precedence."""
        name = object_name or f"{''.join(ch for ch in title.lower() if ch.isalnum())}_dock"
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setAllowedAreas(Qt.AllDockWidgetAreas)
        neighbours = [d for d in self.docks.values() if self.dockWidgetArea(d) == area and not d.isFloating()]
        self.addDockWidget(area, dock)
        if name in self._saved_docks:
            self.restoreDockWidget(dock)  # a panel added after start-up goes back where it was
        elif tabify and neighbours:
            self.tabifyDockWidget(neighbours[0], dock)
        toggle = dock.toggleViewAction()
        toggle.setText(title)
        self.panels_menu.addAction(toggle)
        self.docks[name] = dock
        return dock

    def add_close_hook(self, hook: Callable[[], object]) -> None:
        """Run `hook()` when the window is about to close (after the save prompt). A hook that
        returns False keeps the window open (e.g. the user chose to keep training)."""
        self._close_hooks.append(hook)

    # -- dialogs (overridable in tests) ------------------------------------------------
    def ask_save_changes(self) -> str:
        """'save', 'discard' or 'cancel'."""
        answer = QMessageBox.question(
            self, "Unsaved changes", f"Save the changes to {self.document.display_name()}?",
            QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Save)
        return {QMessageBox.Save: "save", QMessageBox.Discard: "discard"}.get(answer, "cancel")

    def ask_open_path(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", self._last_dir(), PROJECT_FILTER)
        return path or None

    def ask_save_path(self, title: str, filters: str, suggested: str) -> str | None:
        start = str(Path(self._last_dir()) / suggested)
        path, _ = QFileDialog.getSaveFileName(self, title, start, filters)
        return path or None

    def ask_overwrite_read_only(self, path: Path) -> bool:
        answer = QMessageBox.question(
            self, "File is read-only", f"{path} is read-only.\n\nOverwrite it anyway?",
            QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
        return answer == QMessageBox.Yes

    def show_error(self, title: str, text: str) -> None:
        show_message(self, QMessageBox.Critical, title, text)

    def ask_restore_autosave(self, description: str) -> bool:
        answer = QMessageBox.question(
            self, "Restore unsaved work?",
            f"cnnbuilder did not close properly last time.\n\nRestore the unsaved changes to {description}?",
            QMessageBox.Yes | QMessageBox.No, QMessageBox.Yes)
        return answer == QMessageBox.Yes

    def choose_template(self) -> Project | None:
        dialog = TemplateDialog(self)
        if dialog.exec() == QDialog.Accepted:
            return dialog.selected_project()
        return None

    def ask_import(self):
        """File ▸ Import ▸ PyTorch module…: the ImportResult, or None when cancelled."""
        dialog = ImportDialog(self, folder=self._last_dir())
        accepted = dialog.exec() == QDialog.Accepted
        result = dialog.imported if accepted else None
        dialog.deleteLater()  # a child of the window: it would stay until the window closes
        return result

    # -- actions -----------------------------------------------------------------------
    def _action(self, text: str, slot, shortcut=None, icon_name: str | None = None, tip: str | None = None,
                checkable: bool = False) -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            keys = shortcut if isinstance(shortcut, list) else [shortcut]
            seqs: list[QKeySequence] = []
            for k in keys:
                for seq in (QKeySequence.keyBindings(k) if isinstance(k, QKeySequence.StandardKey)
                            else [QKeySequence(k)]):
                    if not seq.isEmpty() and seq not in seqs:
                        seqs.append(seq)
            a.setShortcuts(seqs)
        if icon_name:
            a.setIcon(icon(icon_name))
            self._icon_names[a] = icon_name
        if tip:
            a.setStatusTip(tip)
            a.setToolTip(tip)
        a.setCheckable(checkable)
        if slot is not None:
            a.triggered.connect(lambda checked=False: slot())
        self.addAction(a)  # shortcuts work wherever the focus is in the window
        return a

    def _create_actions(self) -> None:
        A, K = self._action, QKeySequence
        self.act_new = A("&New…", self.new_project, K.New, "new", "New project from a template")
        self.act_open = A("&Open…", self.open_dialog, K.Open, "open", "Open a project file")
        self.act_import = A("&PyTorch Module…", self.import_module, None, None,
                            "Bring a model in from PyTorch code or torchvision, with its weights if wanted")
        self.act_save = A("&Save", self.save, K.Save, "save", "Save the project")
        self.act_save_as = A("Save &As…", self.save_as, K.SaveAs, None, "Save the project under a new name")
        self.act_export_code = A("Export PyTorch &Code…", self.export_code_dialog, "Ctrl+E", "code",
                                 "Save the generated model as a .py file")
        self.act_export_summary = A("Export &Summary…", self.export_summary_dialog, None, "table",
                                    "Save the summary table as CSV or Markdown")
        self.act_export_image = A("Export Canvas &Image…", self.export_image_dialog, "Ctrl+Shift+E", "image",
                                  "Save the canvas as PNG or SVG")
        self.act_export_onnx = A("&ONNX…", lambda: onnx_export.export_onnx_dialog(self), None, None,
                                 "Save the model with its weights as ONNX, checked in onnxruntime")
        self.act_quit = A("&Quit", self.close, [K.Quit, "Ctrl+Q"], None, "Close cnnbuilder")

        stack = self.document.undo_stack
        self.act_undo = stack.createUndoAction(self, "&Undo")
        self.act_undo.setShortcuts(QKeySequence.keyBindings(K.Undo))
        self.act_undo.setIcon(icon("undo"))
        self._icon_names[self.act_undo] = "undo"
        self.act_redo = stack.createRedoAction(self, "&Redo")
        redo_keys = [s for s in QKeySequence.keyBindings(K.Redo)]
        for extra in (QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")):
            if extra not in redo_keys:
                redo_keys.append(extra)
        self.act_redo.setShortcuts(redo_keys)
        self.act_redo.setIcon(icon("redo"))
        self._icon_names[self.act_redo] = "redo"
        self.addAction(self.act_undo)
        self.addAction(self.act_redo)

        self.edit_actions = e = EditActions(self)  # clipboard, delete, append, auto-layout
        self.act_cut, self.act_copy, self.act_paste = e.cut_action, e.copy_action, e.paste_action
        self.act_duplicate, self.act_delete, self.act_delete_reconnect = \
            e.duplicate_action, e.delete_action, e.delete_reconnect_action
        self.act_select_all, self.act_rename, self.act_layout = e.select_all_action, e.rename_action, e.layout_action
        self.act_find = A("&Find Block Type", self.focus_palette_search, K.Find, "search",
                          "Search the block palette")

        self.act_zoom_in = A("Zoom &In", self.view.zoom_in, [K.ZoomIn, "Ctrl+="], "zoom-in", "Zoom in")
        self.act_zoom_out = A("Zoom &Out", self.view.zoom_out, K.ZoomOut, "zoom-out", "Zoom out")
        self.act_fit = A("&Fit to View", self.view.fit, "Ctrl+0", "fit", "Show the whole model")
        self.act_zoom_reset = A("Actual &Size (100 %)", self.view.zoom_reset, "Ctrl+1", None, "Zoom to 100 %")
        self.act_snap = A("&Snap to Grid", None, None, None,
                          "Dragged, nudged and new blocks land on the background grid", checkable=True)
        self.act_snap.toggled.connect(self.set_snap)
        self.act_snap.setChecked(str(self.settings.value("canvas/snap", "false")).lower() == "true")
        self.act_train = A("&Train", self.train, "F5", "train", "Train the model on the chosen dataset")
        self.act_shortcuts = A("&Keyboard Shortcuts", self.show_shortcuts, K.HelpContents, None,
                               "List the keyboard shortcuts")
        self.act_about = A("&About cnnbuilder", self.show_about, None, None, None)

        self.workspace_group = QActionGroup(self)  # exclusive: one workspace at a time
        self.workspace_actions: dict[str, QAction] = {}
        for name, text, short, keys, tip in (
                ("design", "&Design Workspace", "Design", "Alt+1",
                 "Edit the model: blocks, inspector, code and summary around the canvas"),
                ("train", "T&rain Workspace", "Train", "Alt+2",
                 "Train and watch: curves, feature maps and evaluation get the room; click a block on "
                 "the canvas (left) to see its feature maps")):
            a = A(text, lambda n=name: self.set_workspace(n), keys, None, tip, checkable=True)
            a.setIconText(short)  # the toolbar switch says "Design" / "Train"
            a.setChecked(name == "design")
            self.workspace_group.addAction(a)
            self.workspace_actions[name] = a

        self.theme_group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        current = str(self.settings.value("theme", "system"))
        for mode in THEMES:
            a = QAction({"system": "Follow &System", "light": "&Light", "dark": "&Dark"}[mode], self)
            a.setCheckable(True)
            a.setChecked(mode == current)
            a.triggered.connect(lambda checked=False, m=mode: self.set_theme(m))
            self.theme_group.addAction(a)
            self.theme_actions[mode] = a

    def set_snap(self, on: bool) -> None:
        self.scene.snap = GRID if on else 0.0
        self.settings.setValue("canvas/snap", "true" if on else "false")

    def train(self) -> bool:
        """Switch to the Train workspace and start a run (as the panel's Train button does)."""
        self.set_workspace("train")
        dock = self.docks["training_dock"]
        dock.show()
        dock.raise_()
        return self.training_panel.start()

    # -- workspaces --------------------------------------------------------------------
    def set_workspace(self, name: str) -> None:
        """Design or Train: each keeps its own arrangement of the docks (and canvas zoom), so
        switching back and forth loses nothing; selection, runs and plots are the panels' own."""
        if name not in WORKSPACES:
            name = "design"
        self.workspace_actions[name].setChecked(True)
        if name == self.workspace:
            return
        self._states[self.workspace] = self.saveState()
        self._views[self.workspace] = (self.view.zoom(), self.view.mapToScene(self.view.viewport().rect().center()))
        self.workspace = name
        self.settings.setValue("workspace", name)
        self._enter_workspace()
        self.show_status("Train workspace: click a block on the canvas to see its feature maps (Alt+1: Design)"
                         if name == "train" else "Design workspace (Alt+2: Train)", 6000)

    def _enter_workspace(self, initial: bool = False) -> None:
        name = self.workspace
        self.workspace_actions[name].setChecked(True)
        panel, settings_dock = self.training_panel, self.docks["training_settings_dock"]
        if name == "train" and panel.settings_placed_here():
            settings_dock.setWidget(panel.settings_scroll)
        state = self._states.get(name)
        restored = state is not None and self.restoreState(state)
        if initial:
            self._layout_restored = restored
        if not restored:
            if name == "train":
                self._arrange_train()
            elif not initial:  # at start-up the docks are where the constructor put them
                self._arrange_design()
        if name == "design":
            settings_dock.hide()
            panel.take_back_settings()
        elif restored and self.isVisible():
            QTimer.singleShot(0, self._tidy_train)  # once the restored layout has its geometry
        settings_dock.toggleViewAction().setEnabled(name == "train")
        view = self._views.get(name)
        if view is not None:
            QTimer.singleShot(0, self, lambda: self._show_canvas(*view))  # not after the window is gone
        elif self.isVisible():
            QTimer.singleShot(0, self._fit_canvas)

    def _show_canvas(self, zoom: float, centre) -> None:
        self.view.set_zoom(zoom)
        self.view.centerOn(centre)
        self.view._reveal_selection(self.document.selection)  # the block being looked at stays in view

    def _fit_canvas(self) -> None:
        self.view.show_start(readable=0.6)  # a narrow canvas: the top of a long chain, readably
        self.view._reveal_selection(self.document.selection)

    def _arrange_design(self) -> None:
        """The editor's first-run arrangement (used when Design has no remembered one)."""
        areas = {"palette_dock": Qt.LeftDockWidgetArea, "inspector_dock": Qt.RightDockWidgetArea,
                 "code_dock": Qt.RightDockWidgetArea, "summary_dock": Qt.BottomDockWidgetArea,
                 "history_dock": Qt.BottomDockWidgetArea, "training_dock": Qt.BottomDockWidgetArea}
        for name, area in areas.items():
            dock = self.docks[name]
            dock.setFloating(False)
            self.addDockWidget(area, dock)
            dock.show()
        self.tabifyDockWidget(self.docks["summary_dock"], self.docks["history_dock"])
        self.tabifyDockWidget(self.docks["summary_dock"], self.docks["training_dock"])
        self.docks["summary_dock"].raise_()
        if self.isVisible():
            self.default_dock_sizes()

    def _arrange_train(self) -> None:
        """Training on the right, full height; the canvas (top) and the training settings (below
        it) share the left column. The editor's panels are hidden (View ▸ Panels shows them)."""
        for name in DESIGN_DOCKS:
            self.docks[name].hide()
        training, settings = self.docks["training_dock"], self.docks["training_settings_dock"]
        for dock, area in ((training, Qt.RightDockWidgetArea), (settings, Qt.BottomDockWidgetArea)):
            dock.setFloating(False)
            self.addDockWidget(area, dock)
            dock.show()
        training.raise_()
        if self.isVisible():
            self._size_train_docks()
        else:
            self._size_train_pending = True

    def _size_train_docks(self) -> None:
        self._size_train_pending = False
        w = self.width()
        column = max(self.training_panel.settings_scroll.minimumWidth() + 8, min(int(0.3 * w), 460))
        self._known_width = w
        self.resizeDocks([self.docks["training_dock"]], [w - column], Qt.Horizontal)
        height = self.centralWidget().height() + self.docks["training_settings_dock"].height()
        self.resizeDocks([self.docks["training_settings_dock"]], [int(0.5 * height)], Qt.Vertical)

    def _tidy_train(self) -> None:
        """A Train arrangement saved at another window size: the canvas keeps a usable share of
        the left column, and the column at most 40 % of the window (the curves need the rest)."""
        if not self._train_dock_docked_right():
            return
        training, settings = self.docks["training_dock"], self.docks["training_settings_dock"]
        self._known_width = self.width()
        column = self.width() - training.width()
        if column > 0.4 * self.width():
            self.resizeDocks([training], [self.width() - max(settings.minimumSizeHint().width(),
                                                             int(0.3 * self.width()))], Qt.Horizontal)
        if settings.isVisible() and self.dockWidgetArea(settings) == Qt.BottomDockWidgetArea:
            height = self.view.height() + settings.height()
            if self.view.height() < 0.35 * height:
                self.resizeDocks([settings], [height // 2], Qt.Vertical)

    def _train_dock_docked_right(self) -> bool:
        training = self.docks["training_dock"]
        return (self.workspace == "train" and training.isVisible() and not training.isFloating()
                and self.dockWidgetArea(training) == Qt.RightDockWidgetArea)

    def eventFilter(self, watched, event) -> bool:
        if (event.type() == QEvent.Resize and watched is self.docks.get("training_dock")
                and self.width() == self._known_width and self._train_dock_docked_right()):
            # The user moved the separator (the window kept its width): that is the column to keep.
            self._train_column = self.width() - watched.width()
        return super().eventFilter(watched, event)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        # QMainWindow gives what the window gains or loses to the canvas; in Train the training
        # dock takes it instead, so the left column keeps the width it had.
        if not hasattr(self, "docks") or not self.isVisible() or not self._train_dock_docked_right():
            return
        self._known_width = self.width()
        if self._train_column > 0 and event.oldSize().isValid():
            self.resizeDocks([self.docks["training_dock"]], [self.width() - self._train_column], Qt.Horizontal)
        settings = self.docks["training_settings_dock"]
        dh = event.size().height() - event.oldSize().height()
        if dh and event.oldSize().isValid() and settings.isVisible() and not settings.isFloating() \
                and self.dockWidgetArea(settings) == Qt.BottomDockWidgetArea:
            # The canvas got all of it: share it with the settings below.
            self.resizeDocks([settings], [max(120, settings.height() + dh // 2)], Qt.Vertical)

    def _training_running(self, running: bool) -> None:
        self.act_train.setEnabled(not running)
        self.show_status("Training…" if running else "Training finished", 4000)

    def _create_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addActions([self.act_new, self.act_open])
        self.recent_menu = m.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self.import_menu = m.addMenu("&Import")
        self.import_menu.addAction(self.act_import)
        m.addSeparator()
        m.addActions([self.act_save, self.act_save_as])
        m.addSeparator()
        m.addActions([self.act_export_code, self.act_export_summary, self.act_export_image])
        self.export_actions = ExportActions(self)
        self.export_menu = m.addMenu("E&xport")
        self.export_menu.addActions(self.export_actions.actions)
        self.export_menu.addAction(self.act_export_onnx)
        m.addSeparator()
        m.addAction(self.act_quit)
        m = mb.addMenu("&Edit")
        m.addActions([self.act_undo, self.act_redo])
        m.addSeparator()
        m.addActions([self.act_cut, self.act_copy, self.act_paste, self.act_duplicate, self.act_delete,
                      self.act_delete_reconnect])
        m.addSeparator()
        m.addActions([self.act_select_all, self.act_rename, self.act_find])
        m.addSeparator()
        e = self.edit_actions
        m.addActions([e.group_action, e.ungroup_action, e.open_group_action, e.up_action])
        m = mb.addMenu("&View")
        m.addActions([self.act_zoom_in, self.act_zoom_out, self.act_fit, self.act_zoom_reset])
        m.addSeparator()
        m.addActions([self.act_layout, self.act_snap])
        m.addSeparator()
        workspace = m.addMenu("&Workspace")
        workspace.addActions(list(self.workspace_actions.values()))
        self.panels_menu = m.addMenu("&Panels")
        theme = m.addMenu("&Theme")
        theme.addActions(list(self.theme_actions.values()))
        m = mb.addMenu("&Model")
        m.addAction(self.act_train)
        m = mb.addMenu("&Help")
        m.addActions([self.act_shortcuts, self.act_about])

    def _create_toolbar(self) -> None:
        tb = QToolBar("Main toolbar", self)
        tb.setObjectName("main_toolbar")
        tb.setIconSize(QSize(20, 20))
        tb.setToolButtonStyle(Qt.ToolButtonIconOnly)
        tb.addActions([self.act_new, self.act_open, self.act_save])
        tb.addSeparator()
        tb.addActions([self.act_undo, self.act_redo])
        tb.addSeparator()
        tb.addActions([self.act_copy, self.act_paste, self.act_duplicate, self.act_delete])
        tb.addSeparator()
        tb.addActions([self.act_zoom_out, self.act_zoom_in, self.act_fit, self.act_layout])
        tb.addSeparator()
        tb.addActions([self.act_export_code, self.act_export_image])
        tb.addSeparator()
        tb.addAction(self.act_train)
        for a in tb.actions():
            if a.text() and not a.isSeparator():
                keys = a.shortcut().toString(QKeySequence.NativeText)
                a.setToolTip(a.text().replace("&", "").replace("…", "") + (f" ({keys})" if keys else ""))
        # The Design / Train switch, at the right end, as two text buttons.
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
        tb.addWidget(spacer)
        switch = QWidget()
        switch.setObjectName("workspace_switch")
        row = QHBoxLayout(switch)
        row.setContentsMargins(0, 0, 6, 0)
        row.setSpacing(2)
        self.workspace_buttons: dict[str, QToolButton] = {}
        for name, a in self.workspace_actions.items():
            keys = a.shortcut().toString(QKeySequence.NativeText)
            a.setToolTip(f"{a.iconText()} workspace ({keys}): {a.statusTip()}")
            b = QToolButton()
            b.setDefaultAction(a)
            b.setToolButtonStyle(Qt.ToolButtonTextOnly)
            b.setAutoRaise(True)
            row.addWidget(b)
            self.workspace_buttons[name] = b
        tb.addWidget(switch)
        self.addToolBar(Qt.TopToolBarArea, tb)
        self.toolbar = tb

    def _create_statusbar(self) -> None:
        sb = self.statusBar()
        self.totals_label = QLabel()
        self.zoom_label = QLabel("100 %")
        self.zoom_label.setMinimumWidth(48)
        self.zoom_label.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
        sb.addPermanentWidget(self.totals_label)
        sb.addPermanentWidget(self.zoom_label)

    # -- state display -----------------------------------------------------------------
    def _update_title(self, *args) -> None:
        self.setWindowTitle(f"{self.document.display_name()}[*] — cnnbuilder")
        self.setWindowModified(self.document.is_modified())

    def _update_totals(self) -> None:
        v = self.document.verdict
        a = v.analysis
        n = len(self.document.graph)
        base = f"{n} block{'s' if n != 1 else ''} · {human(a.total_params)} params · {human(a.total_macs)} MACs"
        self.totals_label.setText(f"{base} · {verdict_html(v)}")
        issues = v.errors + v.warnings
        tip = "<br>".join(html.escape(f"{'✗' if i in v.errors else '⚠'} {i.text}") for i in issues[:8])
        self.totals_label.setToolTip(tip + ("<br>…" if len(issues) > 8 else ""))

    def show_status(self, message: str, timeout_ms: int = 8000) -> None:
        if message:
            self.statusBar().showMessage(message, timeout_ms)
        else:
            self.statusBar().clearMessage()

    def _project_replaced(self) -> None:
        # The title and totals follow path_changed, modified_changed and graph_changed, which come next.
        if self.isVisible():
            self.view.show_start()
        else:
            self._fit_pending = True

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._fit_pending:
            self._fit_pending = False
            if not self._layout_restored and self.workspace == "design":
                self.default_dock_sizes()
            QTimer.singleShot(0, self._fit_canvas if self.workspace == "train" else self.view.show_start)
        if self._size_train_pending:
            self._size_train_docks()

    def default_dock_sizes(self) -> None:
        """The first-run layout. Applied once the window is shown: before that the docks have no
        real geometry and Qt squeezes the palette to its minimum."""
        self.resizeDocks([self.docks["palette_dock"], self.docks["inspector_dock"]], [230, 460], Qt.Horizontal)
        self.resizeDocks([self.docks["inspector_dock"], self.docks["code_dock"]], [440, 420], Qt.Vertical)
        self.resizeDocks([self.docks["summary_dock"]], [250], Qt.Vertical)

    # -- files -------------------------------------------------------------------------
    def _last_dir(self) -> str:
        if self.document.path is not None:
            return str(self.document.path.parent)
        return str(self.settings.value("last_dir", str(Path.home())))

    def _remember(self, path: Path) -> None:
        add_recent_file(str(path), self.settings)
        self.settings.setValue("last_dir", str(path.parent))
        self.settings.setValue("last_file", str(path))

    def maybe_save(self) -> bool:
        """True when it is fine to drop the current project (saved, discarded or unmodified)."""
        if not self.document.is_modified():
            return True
        answer = self.ask_save_changes()
        if answer == "save":
            return self.save()
        return answer == "discard"

    def new_project(self) -> bool:
        if not self.maybe_save():
            return False
        project = self.choose_template()
        if project is None:
            return False
        self.document.set_project(project)
        self.show_status(f"New project: {project.name}")
        return True

    def import_module(self) -> bool:
        """File ▸ Import ▸ PyTorch module…: the imported model opens as a new, untitled project (as New
        does); a refused or cancelled import changes nothing."""
        if not self.maybe_save():
            return False
        result = self.ask_import()
        if result is None:
            return False
        self.open_imported(result)
        return True

    def open_imported(self, result) -> None:
        project = ready_to_train(result.project)
        if result.notes:  # what the importer wants the user to know stays with the model (Model notes)
            notes = "; ".join(n.strip().rstrip(".") for n in result.notes)  # a description is one paragraph
            project.description = (project.description + " " if project.description else "") + \
                f"Import notes: {notes}."
        self.document.set_project(project)
        if self.isVisible():
            self.view.fit()  # the whole imported graph, however small its blocks come out
        n = len(project.graph)
        self.show_status(f"Imported {project.name}: {n} block{'s' if n != 1 else ''}" +
                         (f"; training starts from {result.weights}" if result.weights else ""))

    def open_dialog(self) -> bool:
        if not self.maybe_save():
            return False
        path = self.ask_open_path()
        return bool(path) and self.open_path(path)

    def open_path(self, path: str | Path) -> bool:
        """Open a project; a bad file (or a loader bug) leaves the current project untouched and says why."""
        try:
            self.document.open(path)
        except Exception as exc:
            self._report("Cannot open project", path, exc, "cannot open")
            return False
        self._remember(Path(path))
        self.show_status(f"Opened {path}")
        return True

    def open_recent(self, path: str) -> bool:
        if not self.maybe_save():
            return False
        return self.open_path(path)

    def save(self) -> bool:
        if self.document.path is None:
            return self.save_as()
        return self._save_to(self.document.path)

    def save_as(self) -> bool:
        suggested = self.document.path.name if self.document.path else _file_stem(self.document.project.name) + ".json"
        path = self.ask_save_path(f"Save “{self.document.display_name()}” as", PROJECT_FILTER, suggested)
        if not path:
            return False
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".json")
        return self._save_to(path)

    def _save_to(self, path: Path) -> bool:
        """False (with the reason shown, the project still modified) when the file cannot be written."""
        if not self._write("Cannot save project", path, lambda force: self.document.save(path, force=force)):
            return False
        self._remember(Path(path))
        self.show_status(f"Saved {path}")
        return True

    def _write(self, title: str, path: str | Path, write: Callable[[bool], object]) -> bool:
        """Run `write(force)`; whatever it raises becomes a dialog naming the file and the reason.
        A read-only file is overwritten (force=True) only after the user agrees."""
        force = False
        while True:
            try:
                write(force)
                return True
            except ReadOnlyError as exc:
                if not force and self.ask_overwrite_read_only(Path(path)):
                    force = True
                    continue
                if force:
                    self._report(title, path, exc)
                else:
                    self.show_status(f"Not written: {path} is read-only")
                return False
            except Exception as exc:
                self._report(title, path, exc)
                return False

    def _report(self, title: str, path: str | Path, exc: BaseException, verb: str = "") -> None:
        """One line for the user: the file and the reason. An exception no one expected (a bug) is
        also logged, with its traceback at debug level."""
        if isinstance(exc, ProjectError):
            text = str(exc)  # names the file and the field already
        else:
            reason = describe_error(exc)
            text = f"{path}: {verb} ({reason})" if verb else f"{path}: {reason}"
            if not isinstance(exc, (OSError, UnicodeError)):
                log.warning("%s: %s: %s", title, path, reason)
        log.debug("%s: %s", title, path, exc_info=exc)
        self.show_error(title, text)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = [f for f in recent_files(self.settings) if Path(f).exists()]
        for i, f in enumerate(files):
            a = self.recent_menu.addAction(f"&{i + 1} {Path(f).name}")
            a.setToolTip(f)
            a.setStatusTip(f)
            a.triggered.connect(lambda checked=False, p=f: self.open_recent(p))
        if not files:
            a = self.recent_menu.addAction("No recent projects")
            a.setEnabled(False)
        self.recent_menu.addSeparator()
        self.recent_menu.addAction("Clear List", lambda: clear_recent_files(self.settings))

    # -- start-up and recovery ---------------------------------------------------------
    def start(self, path: str | None = None) -> None:
        """What the app shows first: a crashed session's work (if the user wants it), the file
        given on the command line, the last project, or the MNIST example."""
        if self.offer_recovery():
            return
        if path and self.open_path(path):
            return
        last = self.settings.value("last_file", "")
        if not path and last and Path(str(last)).is_file():
            try:
                self.document.open(str(last))
                return
            except Exception:  # moved or damaged since (or the loader broke): the example, quietly
                log.debug("cannot reopen %s", last, exc_info=True)
        self.document.set_project(default_project())

    def offer_recovery(self) -> bool:
        orphans = self.autosave.orphans()
        if not orphans:
            return False
        newest, older = orphans[0], orphans[1:]
        for o in older:
            o.lock.unlock()  # offered on a later start
        if not self.ask_restore_autosave(newest.describe()):
            newest.discard()
            return False
        try:
            project = newest.load()
        except Exception as exc:
            self._report("Cannot restore the autosave", newest.file, exc)
            newest.discard()
            return False
        self.document.set_project(project)
        self.document.undo_stack.resetClean()  # restored work is unsaved work
        newest.discard()
        self.autosave.save_now()  # our own autosave now protects it
        self.show_status("Restored unsaved changes from the autosave")
        return True

    # -- closing -----------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.maybe_save():
            event.ignore()
            return
        for hook in list(self._close_hooks):
            try:
                if hook() is False:
                    event.ignore()
                    return
            except Exception:  # a broken hook must not trap the user in the app
                traceback.print_exc(file=sys.stderr)
        self._save_settings()
        self.autosave.stop()
        self.autosave.remove()  # a clean exit leaves no autosave behind
        event.accept()

    def _save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self._states[self.workspace] = self.saveState()
        for name, state in self._states.items():
            self.settings.setValue(STATE_KEYS[name], state)
        self.settings.setValue("workspace", self.workspace)
        self.settings.setValue("window/docks", sorted(self.docks))
        self.settings.sync()

    def _restore_settings(self) -> None:
        """The window's size, the workspace it was in and each workspace's arrangement; the
        current workspace's is applied by `_enter_workspace`."""
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        self.workspace = "train" if str(self.settings.value("workspace", "design")) == "train" else "design"
        for name, key in STATE_KEYS.items():
            state = self.settings.value(key)
            if isinstance(state, QByteArray):
                self._states[name] = state
        if self.workspace in self._states:
            names = self.settings.value("window/docks", [])
            self._saved_docks = {str(n) for n in ([names] if isinstance(names, str) else names or [])}

    # -- editing (the edits themselves are in edit_actions.py) ----------------------------
    def rename_selected(self) -> None:
        groups = self.scene.selected_group_ids()
        if len(groups) == 1 and not self.document.selection:
            self.inspector.show_group(groups[0])
            self.docks["inspector_dock"].show()
            self.docks["inspector_dock"].raise_()
            self.inspector.focus_group_name()
            return
        if len(self.document.selection) == 1:
            self.docks["inspector_dock"].show()
            self.docks["inspector_dock"].raise_()
            self.inspector.focus_name()

    def focus_palette_search(self) -> None:
        self.docks["palette_dock"].show()
        self.docks["palette_dock"].raise_()
        self.palette_panel.search.setFocus(Qt.ShortcutFocusReason)
        self.palette_panel.search.selectAll()

    def _node_activated(self, node_id: str) -> None:
        self.docks["inspector_dock"].show()
        self.docks["inspector_dock"].raise_()
        self.inspector.focus_first_editor()

    def _groups_selected(self, groups: list[str]) -> None:
        if len(groups) == 1 and not self.document.selection:
            self.inspector.show_group(groups[0])
            self.code_panel.highlight_group(groups[0])
        elif self.inspector.group_id is not None:
            self.inspector._on_selection()

    def _scope_changed(self, scope) -> None:
        self.view.fit(max_zoom=1.0)  # the open group's blocks (or the whole level) in view
        if scope is not None:
            name = self.document.graph.group(scope).name
            self.show_status(f"Inside {name}: new blocks land in this group; Alt+Up or the bar above goes back")

    def _context_menu(self, screen_pos, item) -> None:
        menu = QMenu(self)
        e = self.edit_actions
        if isinstance(item, GroupItem):
            menu.addActions([e.open_group_action, self.act_rename, e.ungroup_action, e.group_action])
            menu.addSeparator()
            menu.addActions([self.act_duplicate, self.act_copy, self.act_cut])
            menu.addSeparator()
            menu.addAction(self.act_delete)
        elif isinstance(item, NodeItem):
            menu.addActions([self.act_rename, self.act_duplicate, self.act_copy, self.act_cut])
            menu.addSeparator()
            menu.addAction(e.group_action)
            menu.addSeparator()
            menu.addActions([self.act_delete, self.act_delete_reconnect])
        elif isinstance(item, EdgeItem):
            menu.addAction(icon("delete"), "Delete Connection", self.edit_actions.delete)
        else:
            menu.addActions([self.act_paste, self.act_select_all])
            menu.addSeparator()
            menu.addActions([self.act_layout, self.act_fit])
            if self.scene.scope is not None:
                menu.addAction(e.up_action)
        self.edit_actions.update()
        self.edit_actions.update_paste()
        menu.exec(screen_pos)

    # -- export ------------------------------------------------------------------------
    def _suggest(self, suffix: str) -> str:
        stem = self.document.path.stem if self.document.path else _file_stem(self.document.project.name)
        return stem + suffix

    def export_code(self, path: str | Path) -> bool:
        doc = self.document
        try:
            gen = generate(doc.graph, CLASS_NAME, doc.project.name, analysis=doc.analysis)
            data = gen.code.encode("utf-8")
        except CodegenError as exc:
            self.show_error("Cannot export code", str(exc))
            return False
        except Exception as exc:
            self._report("Cannot export code", path, exc)
            return False
        if not self._write("Cannot export code", path, lambda force: atomic_write(path, _put(data), force=force)):
            return False
        self.show_status(f"Wrote {path} (class {gen.class_name})")
        return True

    def export_code_dialog(self) -> bool:
        if not self.document.analysis.ok:
            self.show_error("Cannot export code", "The model has problems; the Summary panel lists them.")
            return False
        path = self.ask_save_path(f"Export the PyTorch code of “{self.document.display_name()}”",
                                  "Python files (*.py)", self._suggest(".py"))
        return bool(path) and self.export_code(path)

    def export_summary(self, path: str | Path) -> bool:
        path = Path(path)
        doc = self.document
        try:
            if path.suffix.lower() == ".csv":
                text = summary_csv(doc.graph, doc.analysis, doc.fields, doc.verdict.error_details(),
                                   doc.verdict.warnings)
            else:
                text = summary_markdown(doc.graph, doc.analysis, doc.project.name, doc.fields,
                                        doc.verdict.error_details(), doc.verdict.warnings)
            data = text.encode("utf-8")
        except Exception as exc:
            self._report("Cannot export summary", path, exc)
            return False
        if not self._write("Cannot export summary", path, lambda force: atomic_write(path, _put(data), force=force)):
            return False
        self.show_status(f"Wrote {path}")
        return True

    def export_summary_dialog(self) -> bool:
        path = self.ask_save_path(f"Export the summary of “{self.document.display_name()}”",
                                  "CSV (*.csv);;Markdown (*.md)", self._suggest(".csv"))
        return bool(path) and self.export_summary(path)

    def export_image(self, path: str | Path, scale: float = 2.0) -> bool:
        """The whole model as PNG (at `scale` × 100 % zoom) or SVG, without selection marks. Rendered
        in memory first, then written like every other file (safely, through links, asking before
        a read-only file is replaced)."""
        path = Path(path)
        try:
            data = self.image_bytes(path.suffix, scale)
        except Exception as exc:
            self._report("Cannot export image", path, exc)
            return False
        if not self._write("Cannot export image", path, lambda force: atomic_write(path, _put(data), force=force)):
            return False
        self.show_status(f"Wrote {path}")
        return True

    def image_bytes(self, suffix: str, scale: float = 2.0) -> bytes:
        """The canvas encoded as SVG (suffix .svg) or as the image format the suffix names (PNG
        when Qt does not know it)."""
        source = self.scene.blocks_rect()
        if source.isNull():
            source = QRectF(0, 0, NODE_W, NODE_H)
        source = source.adjusted(-30, -30, 30, 30)
        buffer = QBuffer()
        buffer.open(QIODevice.WriteOnly)
        fmt = suffix.lower().lstrip(".")
        if fmt == "svg":
            from PySide6.QtSvg import QSvgGenerator

            gen = QSvgGenerator()
            gen.setOutputDevice(buffer)
            gen.setSize(source.size().toSize())
            gen.setViewBox(QRectF(0, 0, source.width(), source.height()))
            gen.setTitle(self.document.project.name)
            gen.setDescription("Exported by cnnbuilder")
            painter = QPainter(gen)
            self.scene.render_image(painter, QRectF(0, 0, source.width(), source.height()), source)
            painter.end()
        else:
            if fmt.encode() not in {bytes(f.data()) for f in QImageWriter.supportedImageFormats()}:
                fmt = "png"
            w, h = int(source.width() * scale), int(source.height() * scale)
            if w * h > 400_000_000:  # ~1.6 GB of pixels: scale down instead of failing
                f = (400_000_000 / (w * h)) ** 0.5
                w, h = int(w * f), int(h * f)
            img = QImage(w, h, QImage.Format_ARGB32_Premultiplied)
            if img.isNull():
                raise OSError(f"not enough memory for a {w}×{h} image")
            img.fill(QColor(self.scene.colors.background))
            painter = QPainter(img)
            painter.setRenderHint(QPainter.Antialiasing)
            self.scene.render_image(painter, QRectF(0, 0, w, h), source)
            painter.end()
            if not img.save(buffer, fmt.upper()):
                raise OSError(f"could not encode the image as {fmt.upper()}")
        data = bytes(buffer.data().data())
        if not data:
            raise OSError("the image came out empty")
        return data

    def export_image_dialog(self) -> bool:
        path = self.ask_save_path(f"Export the canvas of “{self.document.display_name()}”",
                                  "PNG image (*.png);;SVG image (*.svg)", self._suggest(".png"))
        return bool(path) and self.export_image(path)

    # -- theme and help ----------------------------------------------------------------
    def set_theme(self, mode: str) -> None:
        self.settings.setValue("theme", mode)
        self.theme_actions[mode].setChecked(True)
        app = QApplication.instance()
        if app is not None:
            apply_theme(app, mode)
        self._palette_changed()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.PaletteChange, QEvent.ApplicationPaletteChange):
            self._palette_changed()  # e.g. the system switched between light and dark

    def _palette_changed(self) -> None:
        dark = is_dark()
        if dark != self._dark:
            self._dark = dark
            self._restyle()

    def _restyle(self) -> None:
        for action, name in self._icon_names.items():
            action.setIcon(icon(name))
        self.scene.set_colors(canvas_colors())
        self.view.resetCachedContent()
        self.code_panel.set_dark(self._dark)
        self.inspector.theme_changed()
        self.undo_view.setCleanIcon(icon("save"))
        self.palette_panel.refresh_icons()
        self.summary_panel.refresh()
        self.training_panel.restyle()

    def show_shortcuts(self) -> None:
        dialog = QDialog(self)
        dialog.setWindowTitle("Keyboard shortcuts")
        rows = []
        for a in self.actions():
            keys = ", ".join(s.toString(QKeySequence.NativeText) for s in a.shortcuts())
            if keys:
                rows.append((a.text().replace("&", "").replace("…", ""), keys))
        rows += [("Pan", "Middle-drag, or hold Space and drag"), ("Zoom", "Mouse wheel"),
                 ("Connect", "Drag from an output port (bottom) to an input port (top)"),
                 ("Select several", "Rubber-band drag on empty canvas, or Ctrl+click"),
                 ("Move selected blocks", "Arrow keys (10 px; Shift: 1 px; with Snap to Grid: one cell)"),
                 ("Re-route a connection", "Drag it off its input port; drop on empty canvas to remove it"),
                 ("Open a group", "Double-click it; the bar above the canvas (or Alt+Up, Backspace) goes back")]
        table = QTableWidget(len(rows), 2, dialog)
        table.setHorizontalHeaderLabels(["Action", "Shortcut"])
        table.verticalHeader().hide()
        table.setEditTriggers(QTableWidget.NoEditTriggers)
        for i, (what, keys) in enumerate(rows):
            table.setItem(i, 0, QTableWidgetItem(what))
            table.setItem(i, 1, QTableWidgetItem(keys))
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        table.horizontalHeader().setStretchLastSection(True)
        lay = QVBoxLayout(dialog)
        lay.addWidget(table)
        dialog.resize(560, 560)
        dialog.setAttribute(Qt.WA_DeleteOnClose)
        dialog.show()
        self.shortcuts_dialog = dialog

    def show_about(self) -> None:
        QMessageBox.about(self, "About cnnbuilder",
                          f"<b>cnnbuilder {__version__}</b><br>Build convolutional neural networks visually, "
                          "get readable PyTorch code and train them.")


def show_message(parent: QWidget | None, kind: QMessageBox.Icon, title: str, text: str) -> QMessageBox:
    """A message box that does not block: no nested event loop. An exception in a slot while a
    nested loop runs (e.g. QMessageBox.critical's) can crash PySide 6.11 (seen: a pending error
    during a Python override lookup, SIGSEGV), and a failing save or open is just when more goes wrong."""
    box = QMessageBox(kind, title, text, QMessageBox.Ok, parent)
    box.setAttribute(Qt.WA_DeleteOnClose)
    box.setWindowModality(Qt.WindowModal if parent is not None else Qt.ApplicationModal)
    box.open()
    return box


def _put(data: bytes) -> Callable:
    return lambda f: f.write(data)


def _file_stem(name: str) -> str:
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name.strip().lower()).strip("_")
    return stem or "untitled"




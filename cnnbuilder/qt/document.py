"""The open project as the GUI sees it: the core Project, a QUndoStack of core commands, the
cached analysis and verdict, and the modified flag (the undo stack's clean state).

The verdict (core/verdict.py) is the one answer to "can this model run, and does it fit the
chosen training data?": errors and warnings that the canvas, Summary, status bar, code panel and
Training panel all read, so they agree. `verdict_changed` follows every edit, undo and redo, every
change of the training settings and every New/Open.

The arithmetic behind each block's numbers and the receptive fields (core/inspect) are cached here
too, per analysis, and computed only when a view asks: the fields take a pass over the whole graph
(about 11 ms for 500 blocks), so the views that show them ask from a debounce timer, not on every
keystroke."""

from __future__ import annotations

import copy
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from ..core.blocks import ParamError
from ..core.commands import Command
from ..core.fileio import atomic_write_text, describe_error, ensure_regular_file
from ..core.graph import Graph, GraphError
from ..core.groups import GroupInfo, all_group_info
from ..core.inspect.formulas import BlockArithmetic, block_arithmetic
from ..core.inspect.receptive import Field, receptive_fields
from ..core.project import Project, ProjectError, dumps, load_project
from ..core.shapes import Analysis, analyze
from ..core.training.config import rebase_paths
from ..core.verdict import MetaCache, Verdict, judge

_MERGE_IDS: dict[tuple, int] = {}


def _merge_id(key: tuple | None) -> int:
    if key is None:
        return -1
    return _MERGE_IDS.setdefault(key, len(_MERGE_IDS) + 1)


class CoreCommandAdapter(QUndoCommand):
    """A core Command on a QUndoStack. The command has already run once when pushed (so a refused
    edit never reaches the stack); the stack's first redo() call is skipped."""

    def __init__(self, document: Document, cmd: Command):
        super().__init__(cmd.text)
        self.document, self.cmd = document, cmd
        self._skip_first = True

    def redo(self) -> None:
        if self._skip_first:
            self._skip_first = False
            return
        self.cmd.redo(self.document.graph)

    def undo(self) -> None:
        self.cmd.undo(self.document.graph)

    def id(self) -> int:
        return _merge_id(self.cmd.merge_key)

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, CoreCommandAdapter) or other.cmd.merge_key != self.cmd.merge_key:
            return False
        return self.cmd.merge(other.cmd)


class Document(QObject):
    graph_changed = Signal()  # after every edit, undo or redo (not for moves alone)
    project_replaced = Signal()  # New/Open: views rebuild from scratch
    modified_changed = Signal(bool)
    path_changed = Signal()
    training_changed = Signal()  # training settings edited
    selection_changed = Signal(list)  # node ids selected on the canvas (or via the summary table)
    verdict_changed = Signal()  # errors or warnings may differ: after graph_changed and training_changed

    def __init__(self, project: Project | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        # A bound method, not a lambda: Qt drops the connection when the Document dies, before the
        # dying stack's clear() would call back into it.
        self.undo_stack.cleanChanged.connect(self._clean_changed)
        self._project = project or Project()
        self._analysis: Analysis | None = None
        self._analysis_rev = -1
        self._verdict: Verdict | None = None
        self._verdict_key: tuple = ()
        self._arith: dict[str, BlockArithmetic | None] = {}
        self._fields: dict[str, Field] | None = None
        self._inspected: Analysis | None = None  # the analysis the two caches above belong to
        self._groups: tuple[Analysis | None, dict[str, GroupInfo]] = (None, {})
        self._training_rev = 0  # bumps when the training settings change (the data the model must fit)
        self._metas = MetaCache()
        self._extra_dirty = False  # changes outside the undo stack (training settings)
        self._selection: list[str] = []
        self._connect_graph()

    def _clean_changed(self, clean: bool) -> None:
        self.modified_changed.emit(self.is_modified())

    # -- state --------------------------------------------------------------------------
    @property
    def project(self) -> Project:
        return self._project

    @property
    def graph(self) -> Graph:
        return self._project.graph

    @property
    def path(self) -> Path | None:
        return self._project.path

    @property
    def analysis(self) -> Analysis:
        """Shapes and statistics of the current graph, recomputed only when it changed."""
        if self._analysis is None or self._analysis_rev != self.graph.revision:
            self._analysis = analyze(self.graph)
            self._analysis_rev = self.graph.revision
        return self._analysis

    @property
    def verdict(self) -> Verdict:
        """Errors (the model cannot run) and warnings (it does not fit the chosen data yet), for
        the current graph and training settings; recomputed only when either changed."""
        key = (self.graph.revision, self._training_rev)
        if self._verdict is None or self._verdict_key != key or self._verdict.analysis is not self.analysis:
            self._verdict = judge(self.graph, self._project.training, self.analysis, self._metas)
            self._verdict_key = key
        return self._verdict

    @property
    def group_info(self) -> dict[str, GroupInfo]:
        """Every group's ports, output shapes and figures (core/groups), which the canvas and the
        inspector show: one pass over the graph per analysis, shared by both."""
        a = self.analysis
        if self._groups[0] is not a:
            self._groups = (a, all_group_info(self.graph, a))
        return self._groups[1]

    def _inspection_cache(self) -> Analysis:
        a = self.analysis
        if self._inspected is not a:
            self._arith, self._fields, self._inspected = {}, None, a
        return a

    def arithmetic(self, node_id: str) -> BlockArithmetic | None:
        """How the block's output shape, parameters and MACs come out (None while its input is unknown)."""
        a = self._inspection_cache()
        if node_id not in self._arith:
            self._arith[node_id] = block_arithmetic(self.graph, node_id, a) if node_id in self.graph else None
        return self._arith[node_id]

    @property
    def fields(self) -> dict[str, Field]:
        """Every block's receptive field and jump (blocks with problems are left out)."""
        a = self._inspection_cache()
        if self._fields is None:
            self._fields = receptive_fields(self.graph, a)
        return self._fields

    def fields_ready(self) -> bool:
        """True when `fields` is already computed for the current graph (asking costs nothing)."""
        return self._fields is not None and self._inspected is self.analysis

    def refresh_data(self) -> None:
        """Look at the data again (an image folder's content may have changed)."""
        self._metas.forget()
        self._verdict = None
        self.verdict_changed.emit()

    def is_modified(self) -> bool:
        return not self.undo_stack.isClean() or self._extra_dirty

    def display_name(self) -> str:
        return self.path.name if self.path else (self._project.name or "Untitled")

    @property
    def selection(self) -> list[str]:
        return [n for n in self._selection if n in self.graph]

    def set_selection(self, node_ids: list[str]) -> None:
        ids = [n for n in node_ids if n in self.graph]
        if ids != self._selection:
            self._selection = ids
            self.selection_changed.emit(list(ids))

    # -- editing ------------------------------------------------------------------------
    def push(self, cmd: Command) -> str | None:
        """Run a core command and put it on the undo stack. Returns None, or the reason the edit
        was refused (the graph is then unchanged)."""
        try:
            cmd.redo(self.graph)
        except (GraphError, ParamError, KeyError, ValueError) as exc:
            return str(exc)
        self.undo_stack.push(CoreCommandAdapter(self, cmd))
        return None

    def set_training(self, settings: dict) -> None:
        if settings == self._project.training:
            return
        self._project.training = copy.deepcopy(settings)
        was = self.is_modified()
        self._extra_dirty = True
        self._training_rev += 1
        self.training_changed.emit()
        self.verdict_changed.emit()
        if not was:
            self.modified_changed.emit(True)

    # -- files --------------------------------------------------------------------------
    def set_project(self, project: Project) -> None:
        self._disconnect_graph()
        self._project = project
        self._analysis = None
        self._verdict = None
        self._metas.forget()
        self.undo_stack.clear()
        self._extra_dirty = False
        self._selection = []
        self._connect_graph()
        self.project_replaced.emit()
        self.graph_changed.emit()
        self.verdict_changed.emit()
        self.path_changed.emit()
        self.modified_changed.emit(False)

    def open(self, path: str | Path) -> None:
        """Raises (ProjectError for a bad file, anything else for a loader bug) and leaves the
        current project untouched."""
        try:
            ensure_regular_file(path)  # reading /dev/zero or a pipe would never end
        except FileNotFoundError:
            pass  # the loader says so in its own words
        except OSError as exc:
            raise ProjectError(f"{path}: cannot open ({describe_error(exc)})") from None
        self.set_project(load_project(path))

    def save(self, path: str | Path | None = None, force: bool = False) -> None:
        """Write the project (to `path`, or where it came from). On any failure it raises, and the
        document stays modified with its old path; a read-only file raises ReadOnlyError unless
        `force`."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ValueError("no file name given")
        untitled = self._project.name == "Untitled"
        if untitled:  # the first save names the project after its file (the code's docstring says so)
            self._project.name = target.stem
        # Files the settings name (a weights file to start from) keep naming the same files from the new folder.
        training = self._project.training
        self._project.training = rebase_paths(training, self.path, target)
        try:
            atomic_write_text(target, dumps(self._project), force=force)
        except BaseException:
            if untitled:
                self._project.name = "Untitled"
            self._project.training = training
            raise
        self._project.path = target
        if self._project.training != training:
            self._training_rev += 1
            self.training_changed.emit()
        self._extra_dirty = False
        self.undo_stack.setClean()
        self.path_changed.emit()
        self.modified_changed.emit(False)

    def _connect_graph(self) -> None:
        self.graph.changed.connect(self._graph_edited)

    def _disconnect_graph(self) -> None:
        self.graph.changed.disconnect(self._graph_edited)

    def _graph_edited(self) -> None:
        self.graph_changed.emit()
        self.verdict_changed.emit()

"""The Training panel: settings, Train/Pause/Stop, live curves, feature maps, evaluation, runs.

Training runs in a child process that owns PyTorch (`TrainingWorker`, the GUI's handle on
core/training/service.py), on a snapshot of the graph; this widget only turns plain events into
pixels, and this process never imports torch. Settings are saved in the project
(`Document.set_training`). Before a run the panel checks the Document's verdict: a model that does
not fit the data (Input shape, number of classes) waits, and the fit banner (fit_banner.py) offers
the one-click fixes.

Public API for the main window: `start()`, `is_running()`, `shutdown(timeout_ms)` and
`confirm_close()` (for `MainWindow.add_close_hook`).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ...core import runs
from ...core.inspect.look import FILTERS, PREDICT, LookRequest, LookResult
from ...core.project import graph_to_dict
from ...core.training.cli import format_clock
from ...core.training.config import DATASETS, OPTIMIZERS, TrainConfig, project_relative, resolve_project_path
from ...core.training.events import (
    Activations,
    BatchMetrics,
    Cancelled,
    CheckpointFailed,
    CheckpointSaved,
    EpochMetrics,
    Failed,
    FeatureMaps,
    Finished,
    Notice,
    Paused,
    Resumed,
    Started,
    Status,
    TestImages,
)
from ...core.training.events import AugmentPreview as AugmentPreviewEvent
from ...core.training.runlog import default_log_dir, run_name, tensorboard_missing
from ..document import Document
from .augment_preview import AugmentPreview
from .evaluation import EvaluationView
from .feature_maps import FeatureMapView
from .filters_view import FiltersView
from .fit_banner import FitBanner
from .look_view import PredictView, _dropped_file
from .plots import TrainingPlots
from .runs_view import RunsView
from .settings_form import SettingsForm
from .worker import FeatureRequest, RemoteControl, TrainingWorker, TrainJob

CHECKPOINT_FILTER = "cnnbuilder checkpoints (*.ckpt *.pt);;All files (*)"
WEIGHTS_FILTER = "Weights files (*.pt *.pth);;All files (*)"


class TrainingPanel(QWidget):
    running_changed = Signal(bool)
    activations = Signal(object)  # core Activations events of the runs started here (for the Summary)

    # Requests to the training process (TrainingWorker sends them; the answers come back as its signals).
    _train_requested = Signal(object)
    _devices_requested = Signal()
    _features_requested = Signal(object)
    _save_requested = Signal(str)
    _export_requested = Signal(str, object, str)  # runs folder, RunRecord, target folder
    _forget_requested = Signal()
    _look_requested = Signal(object)  # a LookRequest (Filters and Predict tabs)

    def __init__(self, document: Document, parent: QWidget | None = None):
        super().__init__(parent)
        self.document = document
        self._run_counter = 0
        self._feature_tag = 0
        self._active: int | None = None  # run id being trained
        self._control: RemoteControl | None = None
        self._has_model = False  # the worker holds a trained (or training) model
        self._paused = False
        self._shut = False
        self._class_names: tuple[str, ...] = ()
        self._feature_node: str | None = None
        self._look_tag = 0
        self._look_want: dict[str, int] = {FILTERS: 0, PREDICT: 0}  # the answer each tab waits for
        # The project's runs (core/runs.py): where they are kept, and live run number -> record id.
        self._runs_folder: Path = self._folder_for_project()
        self._live_keys: dict[str, int] = {}
        self._recorded: dict[int, str] = {}  # live run number -> its record id, once recorded

        # The child process loads torch while the user edits; Train says "Loading PyTorch…" until then.
        self.worker = TrainingWorker(self)
        self._build_ui()
        self._load_settings()

        self._train_requested.connect(self.worker.train)
        self._devices_requested.connect(self.worker.detect_devices)
        self._features_requested.connect(self.worker.feature_maps)
        self._save_requested.connect(self.worker.save_checkpoint)
        self._export_requested.connect(self.worker.export_run)
        self._forget_requested.connect(self.worker.forget)
        self._look_requested.connect(self.worker.look)
        self.worker.run_saved.connect(self._on_run_saved)
        self.worker.event.connect(self._on_event)
        self.augment_preview.requested.connect(self.worker.augment_preview)  # answered by the training process
        self.evaluation.images_requested.connect(self.worker.test_images)
        self.worker.devices_found.connect(self._on_devices)
        self.worker.action_done.connect(self._on_action)
        self.worker.state_changed.connect(self._on_worker_state)
        self.worker.process_ended.connect(self._on_process_ended)
        self.worker.notice.connect(self._on_worker_notice)
        self.worker.start(defer=True)  # spawned once the window is on screen (or at the first Train)
        self._devices_requested.emit()  # asked in the training process, once torch is there
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

        self._feature_timer = QTimer(self)
        self._feature_timer.setSingleShot(True)
        self._feature_timer.setInterval(150)  # coalesce quick selection changes into one request
        self._feature_timer.timeout.connect(self._request_idle_features)
        # Filters during a run: re-read at most once a second, and only with no answer outstanding.
        self._filters_timer = QTimer(self)
        self._filters_timer.setInterval(1000)
        self._filters_timer.timeout.connect(self._tick_filters)

        document.project_replaced.connect(self._on_project_replaced)
        document.training_changed.connect(self._on_training_changed)
        document.selection_changed.connect(self._on_selection)
        document.path_changed.connect(self._on_path_changed)
        document.graph_changed.connect(self._update_run_note)
        self._open_runs()
        self._update_buttons()

    # -- public API ----------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self._active is not None

    def start(self, resume: str | None = None) -> bool:
        """Start a run (as the Train button does); False, with the reason shown, if it cannot."""
        if self._shut or self._active is not None:
            return False
        self._clear_error()
        a = self.document.analysis
        if not a.ok:
            first = a.problems[0]
            where = f"{self.document.graph.node(first.node_id).label}: " if first.node_id else ""
            self._show_error(f"Fix the model before training — {where}{first.message}")
            return False
        if self.worker.state == "failed":
            self._show_error(self._worker_failure)
            return False
        cfg = self.config()
        if cfg.tensorboard and (missing := tensorboard_missing(load=False)):
            self._show_error(missing + " (or untick TensorBoard under Run log)")
            return False
        if resume is None:  # a checkpoint brings its own data settings, checked when it loads
            held = [w for w in self.document.verdict.warnings if w.holds_training]
            if held:
                first = held[0]
                self._show_error(("The model does not fit the data: " + first.message +
                                  (" (the buttons below fix it)" if first.fixes else "")) if first.node_id
                                 else first.message)
                return False
        self._run_counter += 1
        run_id = self._run_counter
        run_key = runs.new_id()
        self._live_keys[run_key] = run_id
        number = 1 + len(self.runs_view.records) + sum(1 for r in self.plots.runs if isinstance(r, int))
        control = RemoteControl()
        if self._feature_node and self._features_shown():
            control.set_feature_node(self._feature_node)
        self._active, self._control = run_id, control
        self._paused = False
        self._model_before, self._has_model = self._has_model, False
        label = f"Run {number}: {DATASETS[cfg.dataset]}, {OPTIMIZERS[cfg.optimizer]} lr {cfg.lr:g}, " \
                f"batch {cfg.batch_size}" + (" (resumed)" if resume else "")
        self.plots.begin_run(run_id, label)
        self.progress.setValue(0)
        self.progress.setFormat("Starting…")
        self.status.setText("Starting…" if self.worker.state == "ready" else "Starting as soon as PyTorch has loaded…")
        self._log(f"— {label}")
        self.features.set_source(f"{label}: the weights as it trains")
        self._filters_timer.start()
        self._update_buttons()
        self.running_changed.emit(True)
        path = self.document.path
        self._train_requested.emit(TrainJob(run_id, graph_to_dict(self.document.graph), cfg.to_dict(), control,
                                            resume, str(cfg.log_dir or default_log_dir(path)),
                                            run_name(path.stem if path else self.document.project.name),
                                            str(self._runs_folder), run_key, label, self.document.project.name,
                                            str(path) if path else None))
        return True

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Stop any run and end the training process (call when the window closes). Returns whether
        it finished its work within the timeout."""
        if self._shut:
            return self.worker.is_finished()
        self._shut = True
        if self._control is not None:
            self._control.stop()
        self.plots.timer.stop()
        self._feature_timer.stop()
        self._filters_timer.stop()
        finished = self.worker.shutdown(timeout_ms)
        if finished and self.document.path is None and runs.is_scratch(self._runs_folder):
            shutil.rmtree(self._runs_folder, ignore_errors=True)  # closed without saving: its runs go with it
        self._active = None
        self._update_buttons()
        return finished

    def confirm_close(self) -> bool:
        """For MainWindow.add_close_hook: asks before stopping a run; False keeps the window open."""
        if self.is_running() and not self.ask_stop_training():
            return False
        self.shutdown()
        return True

    def config(self) -> TrainConfig:
        """The settings as the widgets show them."""
        data = self.settings_form.values()
        base = TrainConfig.from_dict(self.document.project.training).to_dict()
        base.update(data)
        return TrainConfig.from_dict(base)

    # -- dialogs (overridable in tests) ----------------------------------------------------------
    def ask_stop_training(self) -> bool:
        answer = QMessageBox.question(self, "Training is running", "Stop the training run and close?",
                                      QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
        return answer == QMessageBox.Yes

    def ask_checkpoint_save_path(self) -> str | None:
        path, _ = QFileDialog.getSaveFileName(self, "Save checkpoint", self._suggest("checkpoint.ckpt", "checkpoint"),
                                              CHECKPOINT_FILTER)
        return self._remember(path, "checkpoint")

    def ask_checkpoint_open_path(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self, "Resume from checkpoint", self._suggest("", "checkpoint"),
                                              CHECKPOINT_FILTER)
        return self._remember(path, "checkpoint")

    def ask_export_dir(self) -> str | None:
        path = QFileDialog.getExistingDirectory(self, "Export code and weights to folder",
                                                self._suggest("", "export"))
        return self._remember(path, "export", folder=True)

    def ask_log_dir(self) -> str | None:
        path = QFileDialog.getExistingDirectory(self, "Run log folder", self._fields["log_dir"][1]() or
                                                self._suggest("", "log"))
        return self._remember(path, "log", folder=True)

    def ask_data_root(self) -> str | None:
        path = QFileDialog.getExistingDirectory(self, "Data folder", self._fields["data_root"][1]() or
                                                self._suggest("", "data"))
        return self._remember(path, "data", folder=True)

    def ask_init_weights(self) -> str | None:
        current = self._fields["init_weights"][1]()
        start = resolve_project_path(current, self.document.path) if current else self._suggest("", "weights")
        path, _ = QFileDialog.getOpenFileName(self, "Start training from weights", start, WEIGHTS_FILTER)
        return self._remember(path, "weights")

    def _suggest(self, name: str, kind: str) -> str:
        """Where a file dialog starts: the project's folder, else the last folder used for this kind
        of file, else the home folder."""
        if self.document.path is not None:
            base = self.document.path.parent
        else:
            base = Path(str(QSettings().value(f"training/last_dir/{kind}", str(Path.home()))))
        return str(base / name) if name else str(base)

    def _remember(self, path: str, kind: str, folder: bool = False) -> str | None:
        if not path:
            return None
        QSettings().setValue(f"training/last_dir/{kind}", str(Path(path) if folder else Path(path).parent))
        return path

    # -- building the UI -------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.settings_form = form_box = SettingsForm()
        form_box.edited.connect(self._settings_edited)
        form_box.browse_requested.connect(
            lambda name: {"data_root": self._browse_root, "init_weights": self._browse_init_weights}.get(
                name, self._browse_log_dir)())
        self._fields = form_box.fields
        self.augment_preview = AugmentPreview(lambda: self.config().to_dict())
        form_box.add_below("crop_padding", self.augment_preview)
        form_box.edited.connect(self.augment_preview.schedule)

        self.settings_scroll = scroll = QScrollArea()
        scroll.setWidget(form_box)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        # Wide enough for the form itself: with the horizontal bar off, anything less clips the fields.
        scroll.setMinimumWidth(form_box.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 6)

        # Controls, progress, messages.
        self.train_button = QPushButton("Train")
        self.train_button.setToolTip("Train the model on the chosen data (a snapshot: later edits wait for the "
                                     "next run)")
        self.train_button.clicked.connect(lambda: self.start())
        self.pause_button = QPushButton("Pause")
        self.pause_button.clicked.connect(self._toggle_pause)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self._stop)
        self.save_button = QPushButton("Save checkpoint…")
        self.save_button.setToolTip("Everything needed to continue this run later, exactly")
        self.save_button.clicked.connect(self._save_checkpoint)
        self.resume_button = QPushButton("Resume from checkpoint…")
        self.resume_button.clicked.connect(self._resume_from)
        self.export_button = QPushButton("Export weights…")
        self.export_button.setToolTip("Write model.py (the code), model.pt (state_dict) and model.safetensors")
        self.export_button.clicked.connect(self._export)
        # Two rows: one row of six buttons made the panel ~1100 px wide at its minimum.
        buttons = QVBoxLayout()
        run_row, file_row = QHBoxLayout(), QHBoxLayout()
        for b in (self.train_button, self.pause_button, self.stop_button):
            run_row.addWidget(b)
        run_row.addStretch(1)
        for b in (self.save_button, self.resume_button, self.export_button):
            file_row.addWidget(b)
        file_row.addStretch(1)
        buttons.addLayout(run_row)
        buttons.addLayout(file_row)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)  # a bar that was never set shows no text: "Idle" stayed invisible
        self.progress.setTextVisible(True)
        self.progress.setFormat("Idle")
        self.status = QLabel("Ready.")
        self.device_label = QLabel("Device: detecting…")
        status_row = QHBoxLayout()
        status_row.addWidget(self.status, 1)
        status_row.addWidget(self.device_label)

        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.error_label.setStyleSheet("QLabel { background: #fdecea; color: #8a1c1c; border: 1px solid #f5c2c0;"
                                       " padding: 4px; }")
        self.error_label.hide()

        self.fit_frame = FitBanner(self.document)
        self.fit_frame.refused.connect(self._show_error)
        self.fit_frame.applied.connect(self._clear_error)

        self.plots = TrainingPlots()
        self.plots.ticked.connect(self._show_progress)
        self.features = FeatureMapView()
        self.features.refresh_requested.connect(self._refresh_features)
        self.evaluation = EvaluationView()
        self.filters = FiltersView()
        self.filters.refresh_requested.connect(lambda: self._request_look(FILTERS))
        self.predict = PredictView()
        self.predict.requested.connect(lambda: self._request_look(PREDICT))
        self.setAcceptDrops(True)  # an image dropped anywhere on the panel goes to Predict
        self.runs_view = RunsView()
        self.runs_view.current_changed.connect(self._on_run_chosen)
        self.runs_view.renamed.connect(self._on_run_renamed)
        self.runs_view.deleted.connect(self._on_run_deleted)
        self.runs_view.message.connect(lambda text, ok: self.status.setText(text) if ok else self._show_error(text))
        self.run_note = QLabel()
        self.run_note.setWordWrap(True)
        self.run_note.setStyleSheet("QLabel { background: #fff4e5; color: #6b4a00; padding: 3px; }")
        self.run_note.hide()
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.plots, "Curves")
        self.tabs.addTab(self.features, "Feature maps")
        self.tabs.addTab(self.filters, "Filters")
        self.tabs.addTab(self.predict, "Predict")
        self.tabs.addTab(self.evaluation, "Evaluation")
        self.tabs.addTab(self.runs_view, "Runs")
        self.tabs.addTab(self.log, "Log")
        self.tabs.currentChanged.connect(self._on_tab)

        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(4, 4, 4, 4)
        rv.addLayout(buttons)
        rv.addWidget(self.progress)
        rv.addLayout(status_row)
        rv.addWidget(self.error_label)
        rv.addWidget(self.run_note)
        rv.addWidget(self.fit_frame)
        rv.addWidget(self.tabs, 1)

        self._split = split = QSplitter(Qt.Horizontal)
        split.addWidget(scroll)
        split.addWidget(right)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([scroll.minimumWidth(), 900])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)

    def restyle(self) -> None:
        """The theme changed (MainWindow._restyle): plots, feature maps and evaluation follow it."""
        for view in (self.plots, self.features, self.evaluation, self.filters):
            view.restyle()

    def settings_placed_here(self) -> bool:
        """Whether the settings form sits in this panel, beside the tabs. The Train workspace gives
        `settings_scroll` a dock of its own (under the canvas) so the curves get the width;
        `take_back_settings` returns it."""
        return self.settings_scroll.parentWidget() is self._split

    def take_back_settings(self) -> None:
        if not self.settings_placed_here():
            self._split.insertWidget(0, self.settings_scroll)
            self.settings_scroll.show()
            self._split.setSizes([self.settings_scroll.minimumWidth(), max(600, self._split.width())])

    # -- settings ----------------------------------------------------------------------------------
    def _load_settings(self) -> None:
        cfg = TrainConfig.from_dict(self.document.project.training)
        self._write_fields(cfg)
        for note in cfg.notes:
            self._log(f"project training settings: {note}")

    def _write_fields(self, cfg: TrainConfig) -> None:
        self.settings_form.write(cfg)

    def _settings_edited(self, *_args) -> None:
        cfg = self.config()
        self.document.set_training(cfg.to_dict())
        self._update_visibility()

    def _on_training_changed(self) -> None:
        if TrainConfig.from_dict(self.document.project.training).to_dict() != self.config().to_dict():
            self._load_settings()  # e.g. a fix of the fit banner changed the data settings

    def _on_project_replaced(self) -> None:
        if self._control is not None and self._active is not None:
            self._control.stop()  # the run belongs to the project that was closed; it is recorded there
            self._log("stopped the run: its project was closed (it is kept with that project)")
            self._end_run()
        self._has_model = False
        self._forget_requested.emit()  # the worker's last model is the old project's
        if runs.is_scratch(self._runs_folder):
            shutil.rmtree(self._runs_folder, ignore_errors=True)  # the unsaved project was discarded
        self._load_settings()
        self._feature_node = None
        self.features.set_block(None)
        self.filters.set_block(None)
        self.predict.forget()  # the image and weights file were chosen for the old project's model
        self._clear_error()
        self.progress.setValue(0)
        self.progress.setFormat("Idle")
        self.status.setText("Ready.")
        self._runs_folder = self._folder_for_project()
        self._open_runs()
        self._update_buttons()

    # -- the project's runs ----------------------------------------------------------------------
    def _folder_for_project(self) -> Path:
        path = self.document.path
        return runs.runs_folder(path) if path is not None else runs.scratch_folder()

    def _store(self) -> runs.RunStore:
        return runs.RunStore(self._runs_folder)

    def _open_runs(self) -> None:
        """Show exactly this project's runs, curves and evaluation included."""
        records, problems = self._store().load()
        self.plots.clear_runs()
        for i, r in enumerate(records):
            self.plots.add_stored(r.id, r.name, r.history, checked=i == len(records) - 1)
            self.plots.end_run(r.id, r.status, r.test_acc)
        self.runs_view.set_store(self._store(), records)
        for p in problems:
            self._log(p)
        if problems:
            self._show_error(f"{len(problems)} run(s) of this project could not be read and were skipped: "
                             + problems[0])
        if not records:
            self.evaluation.set_run("No run yet.")
            self.evaluation.clear()
            self.features.set_source("No run yet: the maps use untrained weights.")

    def _on_path_changed(self) -> None:
        """Saved under a (new) name: the runs go with the project file."""
        if self.document.path is None:
            return
        target = self._folder_for_project()
        if target == self._runs_folder:
            return
        was_scratch = runs.is_scratch(self._runs_folder)
        try:
            # An unsaved project's runs move; a saved one's are copied, so the old file keeps its own.
            store = self._store().move_to(target, copy=not was_scratch)
        except runs.RunError as exc:
            self._show_error(str(exc))
            return
        self._runs_folder = store.folder
        self.runs_view.move_store(store)
        self._update_buttons()

    def _on_run_saved(self, record: runs.RunRecord, folder: str) -> None:
        run_id = self._live_keys.pop(record.id, None)
        if Path(folder) != self._runs_folder:
            if run_id is None or run_id not in self.plots.runs:
                if runs.is_scratch(folder):  # an unsaved project that was closed: nobody can reach its runs
                    shutil.rmtree(folder, ignore_errors=True)
                return  # another project's run: it stays in that project's folder
            try:  # this project was saved under a new name while the run trained
                runs.RunStore(folder).move_to(self._runs_folder)
            except runs.RunError as exc:
                self._show_error(str(exc))
                return
        if run_id is not None:
            self._recorded[run_id] = record.id
            self.plots.rekey(run_id, record.id, record.name)
        self.runs_view.add(record)  # selects it: Evaluation, Feature maps and Export follow
        self._log(f"recorded {record.name} in {self._runs_folder}")

    def _on_run_chosen(self, record: runs.RunRecord | None) -> None:
        if record is not None:
            date = record.date
            title = f"Showing {record.name}" + (f" ({date.astimezone():%Y-%m-%d %H:%M})" if date else "")
            if self._active is None:
                self.evaluation.show_run(record, title)
                self.features.set_source(f"{record.name}: its trained weights")
                if self._feature_node is not None and self.features.isVisible():
                    self._feature_timer.start()
                self._refresh_look()
        self._update_run_note()
        self._update_buttons()

    def _on_run_renamed(self, record: runs.RunRecord) -> None:
        self.plots.rename(record.id, record.name)
        self._on_run_chosen(self.runs_view.current())

    def _on_run_deleted(self, run_id: str) -> None:
        self.plots.remove(run_id)
        if self.runs_view.current() is None:
            self.evaluation.set_run("No run chosen.")
            self.evaluation.clear("Pick a run in the Runs tab to see its evaluation.")

    def _update_run_note(self) -> None:
        record = self.runs_view.current()
        edited = record is not None and runs.model_changed(record, self.document.graph)
        self.run_note.setText(f"The model was edited after this run ({record.name}): Export weights… writes the "
                              "run's own code with its weights." if edited else "")
        self.run_note.setVisible(edited)

    def _update_visibility(self) -> None:
        self.settings_form.update_visibility(self.config())

    def _browse_root(self) -> None:
        path = self.ask_data_root()
        if path:
            self.settings_form.set_values(data_root=path)
            self._settings_edited()
            self.document.refresh_data()  # chosen again: its content may have changed

    def _browse_init_weights(self) -> None:
        path = self.ask_init_weights()
        if path:  # kept relative to the project's folder when inside it: they move together
            self.settings_form.set_values(init_weights=project_relative(path, self.document.path))
            self._settings_edited()

    def _browse_log_dir(self) -> None:
        path = self.ask_log_dir()
        if path:
            self.settings_form.set_values(log_dir=path)
            self._settings_edited()

    def _on_devices(self, devices: list) -> None:
        self.settings_form.set_devices(devices, self.config().device)
        auto = next((label for key, label in devices if key == "auto"), "Auto")
        self.device_label.setText(f"Device: {auto[6:-1] if auto.startswith('Auto (') else auto}")
        self.device_label.setToolTip(self._fields["device"][0].toolTip())  # notes, e.g. a GPU torch cannot use

    # -- run control ---------------------------------------------------------------------------------
    def _toggle_pause(self) -> None:
        if self._control is None:
            return
        if self._paused:
            self._control.resume()
        else:
            self._control.pause()
            self.pause_button.setText("Pausing…")

    def _stop(self) -> None:
        if self._control is not None:
            self._control.stop()
            self.status.setText("Stopping…")

    def _save_checkpoint(self) -> None:
        path = self.ask_checkpoint_save_path()
        if not path:
            return
        if self._active is not None and self._control is not None:
            self._control.request_checkpoint(path)  # written between two batches
        else:
            self._save_requested.emit(path)

    def _resume_from(self) -> None:
        path = self.ask_checkpoint_open_path()
        if path:
            self.start(resume=path)

    def _export(self) -> None:
        record = self.runs_view.current()
        if record is None:
            self._show_error("No run to export: train first, or pick a run in the Runs tab.")
            return
        directory = self.ask_export_dir()
        if directory:
            # The run's own code and weights, whatever the canvas holds now.
            self._export_requested.emit(str(self._runs_folder), record, directory)

    def _update_buttons(self) -> None:
        running = self._active is not None and not self._shut
        idle = self._active is None and not self._shut
        loading = self.worker.state == "loading"
        self.train_button.setEnabled(idle and self.worker.state in ("ready", "down"))
        self.train_button.setText("Loading PyTorch…" if loading and not self._shut else "Train")
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        self.resume_button.setEnabled(idle)
        self.save_button.setEnabled(not self._shut and self._has_model)
        record = self.runs_view.current()
        self.export_button.setEnabled(idle and record is not None and self._store().has_weights(record.id))
        self.pause_button.setText("Resume" if self._paused else "Pause")

    # -- the training process -------------------------------------------------------------------------
    _worker_failure = ""

    def _on_worker_state(self, state: str, message: str) -> None:
        if state == "failed":
            self._worker_failure = message + " (training needs PyTorch; the editor works without it)"
            self._show_error(self._worker_failure)
            self._log(message)
        self._update_buttons()

    def _on_process_ended(self, message: str, lost_run: bool) -> None:
        self._has_model = False  # what it kept (the last run's model) went with it
        if not lost_run:  # a lost run already said so, as its failure
            self._show_error(message)
            self._log(message)
        self._update_buttons()

    def _on_worker_notice(self, message: str) -> None:
        self._log("note: " + message)
        self.status.setText(message)

    # -- events from the worker ----------------------------------------------------------------------
    def _on_event(self, ev) -> None:
        if self._shut:
            return
        if isinstance(ev, FeatureMaps):
            self._on_feature_maps(ev)
            return
        if isinstance(ev, LookResult):
            self._on_look(ev)
        if isinstance(ev, (AugmentPreviewEvent, TestImages)):  # tagged by the view that asked
            (self.augment_preview.show_result if isinstance(ev, AugmentPreviewEvent) else
             self.evaluation.show_images)(ev)
            return
        if ev.run_id != self._active:
            return  # a stale event from a run this panel has moved on from
        if isinstance(ev, Activations):
            self.activations.emit(ev)
        elif isinstance(ev, BatchMetrics):
            self.plots.add_batch(ev.run_id, ev.steps, ev.losses, ev.step, ev.lr)
            self._last_batch = ev  # shown on the plots' next frame, with the curves
        elif isinstance(ev, EpochMetrics):
            self.plots.add_epoch(ev.run_id, ev)
            val = "" if ev.val_loss is None else f", validation loss {ev.val_loss:.4f} accuracy {ev.val_acc:.1%}"
            self._log(f"epoch {ev.epoch}: train loss {ev.train_loss:.4f} accuracy {ev.train_acc:.1%}{val} "
                      f"({ev.seconds:.1f} s)")
        elif isinstance(ev, Started):
            self._epochs = ev.epochs
            self.evaluation.run_config = ev.config  # the mistakes gallery loads this run's test images
            self._class_names = ev.class_names
            self._has_model = True
            rec = self.plots.runs.get(ev.run_id)
            if rec is not None and ev.history.get("step"):
                rec.load_history(ev.history)  # a resumed run continues its curve
            self.device_label.setText(f"Device: {ev.device_name}" + (" · mixed precision" if ev.amp else ""))
            self._log(f"training on {ev.device_name}: {ev.num_train:,} training, {ev.num_val:,} validation, "
                      f"{ev.num_test:,} test images ({ev.dataset}, {'×'.join(map(str, ev.input_shape))})")
            if ev.run_dir:
                self._log(f"run log: {ev.run_dir}")
            if ev.start_step:
                self._adopt_config(ev.config)
            self._update_buttons()
        elif isinstance(ev, Status):
            self.status.setText(ev.message)
            self.progress.setFormat(ev.message)
        elif isinstance(ev, Notice):
            self._log("note: " + ev.message)
            self.status.setText(ev.message.splitlines()[0])
        elif isinstance(ev, Paused):
            self._paused = True
            self._last_batch = None  # a frame queued before the pause must not say "Training…" again
            self.status.setText(f"Paused at step {ev.step:,}")
            self.progress.setFormat(f"Paused at step {ev.step:,} · Resume to continue")
            self._update_buttons()
        elif isinstance(ev, Resumed):
            self._paused = False
            self.status.setText("Training…")
            self._update_buttons()
        elif isinstance(ev, CheckpointSaved):
            self._log(f"saved checkpoint {ev.path} (step {ev.step:,})")
            self.status.setText(f"Saved checkpoint {Path(ev.path).name}")
        elif isinstance(ev, CheckpointFailed):  # the run goes on; the user may save elsewhere
            self._log(ev.message)
            self._show_error(ev.message)
        elif isinstance(ev, Finished):
            self.evaluation.set_run("Showing this run (not recorded: see the log)")
            self.evaluation.show_result(ev)  # the recorded run, if any, replaces it at _end_run
            self.plots.end_run(self._plot_key(ev.run_id), "finished", ev.test_acc)
            self.progress.setValue(1000)
            self.progress.setFormat(f"Finished · test accuracy {ev.test_acc:.2%}")
            self.status.setText(f"Finished in {ev.seconds:.1f} s: test accuracy {ev.test_acc:.2%}")
            self._log(f"finished: test accuracy {ev.test_acc:.2%}, loss {ev.test_loss:.4f}")
            self._end_run()
        elif isinstance(ev, Failed):
            self.plots.end_run(self._plot_key(ev.run_id), "failed")
            self.progress.setFormat("Failed")
            self.status.setText("Training failed.")
            self._show_error(ev.message)
            self._log("failed: " + ev.message + (f"\n{ev.details}" if ev.details else ""))
            self._end_run()
        elif isinstance(ev, Cancelled):
            self.plots.end_run(self._plot_key(ev.run_id), "stopped")
            self.progress.setFormat(f"Stopped at epoch {ev.epoch}, step {ev.step:,}")
            self.status.setText(f"Stopped at epoch {ev.epoch}, step {ev.step:,}. Save a checkpoint to continue "
                                "later.")
            self._log(f"stopped at epoch {ev.epoch}, step {ev.step:,}")
            self._end_run()

    _epochs = 0
    _last_batch: BatchMetrics | None = None
    _model_before = False

    def _show_progress(self) -> None:
        ev, self._last_batch = self._last_batch, None
        if ev is None or ev.run_id != self._active or self._paused:
            return
        self.progress.setValue(int(1000 * ev.step / max(1, ev.total_steps)))
        eta = "—" if not math.isfinite(ev.eta_s) else format_clock(ev.eta_s)
        self.progress.setFormat(f"Epoch {ev.epoch}/{self._epochs} · step {ev.step:,}/{ev.total_steps:,} · "
                                f"{ev.images_per_s:,.0f} img/s · ETA {eta}")
        self.status.setText(f"Training… loss {ev.loss:.4f}, accuracy this epoch {ev.acc:.1%}")

    def _end_run(self) -> None:
        if not self._has_model:  # ended before building a model: the worker keeps the last run's
            self._has_model = self._model_before
        recorded = self._active in self._recorded
        self._active = None
        self._filters_timer.stop()
        self._look_want = {FILTERS: 0, PREDICT: 0}  # a request the run ended before answering is asked again
        self._paused = False
        if recorded:
            self._on_run_chosen(self.runs_view.current())  # the record, saved just before the end
        self._update_buttons()
        self.running_changed.emit(False)

    def _plot_key(self, run_id: int):
        return self._recorded.get(run_id, run_id)

    def _adopt_config(self, config: dict) -> None:
        cfg = TrainConfig.from_dict(config)
        self._write_fields(cfg)
        self.document.set_training(cfg.to_dict())

    def _on_action(self, message: str, ok: bool) -> None:
        self._log(message)
        if ok:
            self.status.setText(message)
        else:
            self._show_error(message)

    def _show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.show()

    def _clear_error(self) -> None:
        self.error_label.hide()
        self.error_label.clear()

    def _log(self, text: str) -> None:
        self.log.appendPlainText(text)

    # -- feature maps ------------------------------------------------------------------------------------
    def _on_selection(self, ids: list) -> None:
        node = ids[0] if ids else None
        if node == self._feature_node:
            return
        self._feature_node = node
        self._select_filters(node)
        if node is None or node not in self.document.graph:
            self.features.set_block(None)
            if self._control is not None:
                self._control.set_feature_node(None)
            return
        n = self.document.graph.node(node)
        self.features.set_block(f"{n.label} ({n.type})")
        self._refresh_features()

    def _refresh_features(self) -> None:
        if self._feature_node is None or self._shut:
            return
        if self._active is not None and self._control is not None:
            if self._features_shown():
                self._control.set_feature_node(self._feature_node, now=True)  # next batch boundary
            else:
                self._control.set_feature_node(None)
        elif self.features.isVisible():
            self._feature_timer.start()

    def _features_shown(self) -> bool:
        # Maps nobody looks at are not worth a forward pass between training steps.
        return self.tabs.currentWidget() is self.features

    def _on_tab(self, index: int) -> None:
        self._refresh_look()
        if self._feature_node is not None and (self._active is not None or self.tabs.widget(index) is self.features):
            self._refresh_features()

    def _request_idle_features(self) -> None:
        if self._feature_node is None or self._active is not None or self._shut:
            return
        if not self.document.analysis.ok:
            self.features.show_message("Fix the model's problems to see its feature maps.")
            return
        self._feature_tag -= 1  # negative tags: requests outside runs
        self.features.info.setText("Computing…")
        record = self.runs_view.current()
        weights = (str(self._runs_folder), record.id) if record is not None and \
            self._store().has_weights(record.id) else None
        self._features_requested.emit(FeatureRequest(self._feature_tag, graph_to_dict(self.document.graph),
                                                     self.config().to_dict(), self._feature_node, weights,
                                                     record.name if record else ""))

    def _on_feature_maps(self, ev: FeatureMaps) -> None:
        if ev.node_id != self._feature_node:
            return
        if ev.run_id < 0 and ev.run_id != self._feature_tag:
            return  # an answer to an older request
        if ev.run_id >= 0 and ev.run_id != self._active:
            return
        if ev.maps.shape[0] == 0:
            self.features.show_message(ev.message or "nothing to show")
            return
        names = self._class_names or self._names_for_config()
        label = names[ev.label] if 0 <= ev.label < len(names) else str(ev.label)
        self.features.show_maps(ev.maps, ev.total_channels, ev.step, label, ev.message)

    def _names_for_config(self) -> tuple[str, ...]:
        meta = self.document.verdict.meta
        return meta.class_names if meta is not None else ()

    # -- look inside: filters and predictions (core/inspect/look.py) -----------------------------------
    def _select_filters(self, node: str | None) -> None:
        if node is None or node not in self.document.graph:
            self.filters.set_block(None)
            return
        n = self.document.graph.node(node)
        self.filters.set_block(f"{n.label} ({n.type})", n.type in ("Conv2d", "ConvTranspose2d"))
        self._refresh_look()

    def _refresh_look(self) -> None:
        """Ask for what the Filters or Predict tab in front shows, when it shows something."""
        current = self.tabs.currentWidget()
        if current is self.filters and self.filters.is_conv:
            self._request_look(FILTERS)
        elif current is self.predict and self.predict.has_image() and self._look_want[PREDICT] == 0:
            self._request_look(PREDICT)

    def _tick_filters(self) -> None:
        if self.tabs.currentWidget() is self.filters and self._look_want[FILTERS] == 0 and \
                self.filters.is_conv:
            self._request_look(FILTERS)

    def _look_weights(self) -> tuple[tuple[str, ...] | None, str]:
        """Which weights a request uses, and what to say about them: a chosen file, else the live
        run, else the run chosen in the Runs tab, else the last run's model (or untrained)."""
        if self.predict.weights_file:
            return ("file", self.predict.weights_file), f"Weights: {self.predict.weights_file}"
        if self._active is not None:
            return None, "Weights: the live model, as it trains"
        record = self.runs_view.current()
        if record is not None and self._store().has_weights(record.id):
            return ("run", str(self._runs_folder), record.id), f"Weights: {record.name}"
        return None, "Weights: the last run's model, or untrained weights before any run"

    def _request_look(self, kind: str) -> None:
        if self._shut:
            return
        if kind == FILTERS and self._feature_node is None:
            return
        if kind == PREDICT and not self.predict.has_image():
            return
        if not self.document.analysis.ok:
            text = "Fix the model's problems first."
            self.filters.show_message(text) if kind == FILTERS else self.predict.show_message(text)
            return
        self._look_tag += 1
        weights, source = self._look_weights()
        extra = self.predict.choices() if kind == PREDICT else {}
        req = LookRequest(self._look_tag, kind, graph_to_dict(self.document.graph), self.config().to_dict(),
                          node_id=self._feature_node if kind == FILTERS else None, weights=weights, **extra)
        self._look_want[kind] = self._look_tag
        view = self.filters if kind == FILTERS else self.predict
        if (view.grid if kind == FILTERS else view.result) is None:  # else the answer says it, without flicker
            view.set_source(source)
        if kind == PREDICT:
            self.predict.busy()
        if self._active is not None and self._control is not None:
            self._control.request_look(req)  # answered between two batches, with the live weights
        else:
            self._look_requested.emit(req)

    def _on_look(self, ev: LookResult) -> None:
        if ev.run_id != self._look_want.get(ev.kind):
            return  # an answer to an older request
        self._look_want[ev.kind] = 0
        if ev.kind == FILTERS:
            if ev.message:
                self.filters.show_message(ev.message)
            elif ev.filters is not None and ev.filters.node_id == self._feature_node:
                self.filters.show_grid(ev.filters, ev.source)
        elif ev.message:
            self.predict.show_message(ev.message)
        else:
            self.predict.show_result(ev)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if _dropped_file(event.mimeData()) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt's name
        path = _dropped_file(event.mimeData())
        if path is not None:
            event.acceptProposedAction()
            self.tabs.setCurrentWidget(self.predict)
            self.predict.open_image(path)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.shutdown()
        super().closeEvent(event)


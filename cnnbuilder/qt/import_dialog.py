"""File ▸ Import ▸ PyTorch module…: pick a class from a Python file or a torchvision model, give its
constructor arguments and input shape, optionally carry its weights over for fine-tuning, and import.

The editor's process never imports torch and never runs the user's file: the class picker parses the
file with `ast` (core/import_options), and core/importer runs the module in a subprocess with a time
limit. That call blocks, so it runs on a thread; Cancel abandons it (its result is dropped when it
comes; the subprocess ends at its own time limit) and leaves everything as it was.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import re
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from ..core.import_options import (
    TORCHVISION_CLASSIFIERS,
    OptionError,
    module_classes,
    parse_args_text,
    parse_input_text,
)
from .theme import ERROR

IMPORTER = "cnnbuilder.core.importer"
# The importer's refusals name command-line options; the dialog shows its own field names instead.
CLI_FIELDS = {"--args": "Constructor arguments", "--input": "Input shape", "--state-dict": "Load a state_dict"}
PYTHON_FILTER = "Python files (*.py);;All files (*)"
STATE_DICT_FILTER = "PyTorch weights (*.pth *.pt);;All files (*)"
WEIGHTS_FILTER = "Weights files (*.pt);;All files (*)"
DEFAULT_INPUT = "3x224x224"
DEFAULT_TORCHVISION = "resnet18"
TIMEOUT_S = 60.0  # for running the module's code; an import that needs longer is refused with a message


class _Relay(QObject):
    """Carries an import's outcome from its thread to the GUI thread (a queued signal). One for the
    process, made in the GUI thread and never deleted, so a thread that outlives its dialog still
    has something to emit on."""

    finished = Signal(int, object)  # job number, ImportResult or the exception


_relay: _Relay | None = None
_jobs = itertools.count(1)


def _the_relay() -> _Relay:
    global _relay
    if _relay is None:
        _relay = _Relay()
    return _relay


def _run(job: int, request: dict[str, Any]) -> None:
    try:
        importer = importlib.import_module(IMPORTER)
        outcome = importer.import_model(**request)
    except BaseException as exc:  # noqa: BLE001 - every outcome goes back to the dialog, which words it
        outcome = exc
    _the_relay().finished.emit(job, outcome)


class ImportDialog(QDialog):
    """`imported` holds the ImportResult once the dialog is accepted."""

    def __init__(self, parent: QWidget | None = None, folder: str | Path | None = None):
        super().__init__(parent)
        self.setWindowTitle("Import PyTorch module")
        self.folder = Path(folder) if folder else Path.home()  # where the weights file goes by default
        self.imported: Any = None
        self._classes: dict = {}  # name -> ModuleClass of the scanned file
        self.thread: threading.Thread | None = None  # the running import (tests join it)
        self._stop = threading.Event()  # set by Cancel: the running import's process is killed
        self._job = 0  # the import whose answer is awaited; 0: none
        self._weights_chosen = False  # the user picked the weights file (the default follows the source)
        self._weights_asked = False  # ... in the save dialog, which has asked about replacing it
        self._scanned: str | None = None  # the file the class list was read from
        _the_relay().finished.connect(self._finished)

        # -- source -------------------------------------------------------------------------------
        source = QGroupBox("Model")
        sl = QVBoxLayout(source)
        self.file_radio = QRadioButton("A class in a Python file")
        self.tv_radio = QRadioButton("A torchvision classification model")
        self._kinds = QButtonGroup(self)
        self._kinds.addButton(self.file_radio)
        self._kinds.addButton(self.tv_radio)
        self.file_edit = QLineEdit()
        self.file_edit.setPlaceholderText("path/to/model.py")
        self.file_edit.editingFinished.connect(self.scan_file)
        self.browse_file = QPushButton("Browse…")
        self.browse_file.clicked.connect(self._browse_file)
        self.class_combo = QComboBox()
        self.class_combo.setEditable(True)  # a class the parser cannot recognise can still be typed
        self.class_combo.lineEdit().setPlaceholderText("class name")
        self.class_combo.currentTextChanged.connect(self._class_changed)
        self.class_hint = QLabel()
        self.class_hint.setWordWrap(True)
        self.class_hint.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.tv_combo = QComboBox()
        self.tv_combo.addItems(TORCHVISION_CLASSIFIERS)
        self.tv_combo.setCurrentText(DEFAULT_TORCHVISION)
        self.tv_combo.setMaxVisibleItems(20)
        self.tv_combo.currentTextChanged.connect(self._source_changed)

        file_row = QHBoxLayout()
        file_row.addWidget(self.file_edit, 1)
        file_row.addWidget(self.browse_file)
        self.file_box = QWidget()
        fl = QFormLayout(self.file_box)
        fl.setContentsMargins(24, 0, 0, 0)
        fl.addRow("File", file_row)
        fl.addRow("Class", self.class_combo)
        fl.addRow("", self.class_hint)
        self.tv_box = QWidget()
        tl = QFormLayout(self.tv_box)
        tl.setContentsMargins(24, 0, 0, 0)
        tl.addRow("Name", self.tv_combo)
        sl.addWidget(self.file_radio)
        sl.addWidget(self.file_box)
        sl.addWidget(self.tv_radio)
        sl.addWidget(self.tv_box)
        self.file_radio.toggled.connect(self._source_changed)

        # -- options ------------------------------------------------------------------------------
        options = QGroupBox("Construction")
        ol = QFormLayout(options)
        ol.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.args_edit = QLineEdit()
        self.args_edit.setPlaceholderText('none, or JSON such as {"num_classes": 10}')
        self.args_edit.setToolTip("Keyword arguments for the class's constructor, as a JSON object")
        self.input_edit = QLineEdit(DEFAULT_INPUT)
        self.input_edit.setPlaceholderText(DEFAULT_INPUT)
        self.input_edit.setToolTip("The shape of one input sample without the batch: channels × height × width")
        ol.addRow("Constructor arguments", self.args_edit)
        ol.addRow("Input shape", self.input_edit)

        # -- weights ------------------------------------------------------------------------------
        weights = QGroupBox("Weights")
        wl = QVBoxLayout(weights)
        self.state_edit = QLineEdit()
        self.state_edit.setPlaceholderText("none: the module's own initial values")
        self.state_edit.setToolTip("A state_dict file loaded into the module before it is imported, e.g. "
                                   "torchvision's resnet18-f37072fd.pth from ~/.cache/torch/hub/checkpoints")
        self.browse_state = QPushButton("Browse…")
        self.browse_state.clicked.connect(self._browse_state)
        state_row = QHBoxLayout()
        state_row.addWidget(QLabel("Load a state_dict"))
        state_row.addWidget(self.state_edit, 1)
        state_row.addWidget(self.browse_state)
        wl.addLayout(state_row)
        self.carry = QCheckBox("Carry weights over for fine-tuning")
        self.carry.setToolTip("Save the module's weights (as constructed) into a file the project refers to: "
                              "training then starts from them instead of random values")
        self.carry.toggled.connect(self._update_enabled)
        self.weights_edit = QLineEdit()
        self.weights_edit.textEdited.connect(self._weights_typed)
        self.browse_weights = QPushButton("Browse…")
        self.browse_weights.clicked.connect(self._browse_weights)
        row = QHBoxLayout()
        row.setContentsMargins(24, 0, 0, 0)
        row.addWidget(QLabel("Save to"))
        row.addWidget(self.weights_edit, 1)
        row.addWidget(self.browse_weights)
        wl.addWidget(self.carry)
        wl.addLayout(row)

        # -- progress, messages, buttons ----------------------------------------------------------
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # no figure to show: it moves while the module's code runs
        self.busy.setTextVisible(False)
        self.busy.setMaximumHeight(10)
        self.busy.hide()
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse | Qt.TextSelectableByKeyboard)
        self.message.setMinimumHeight(self.message.fontMetrics().height() * 3)
        self.message.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.import_button = self.buttons.button(QDialogButtonBox.Ok)
        self.import_button.setText("Import")
        self.cancel_button = self.buttons.button(QDialogButtonBox.Cancel)
        self.buttons.accepted.connect(self.start)
        self.buttons.rejected.connect(self.cancel)

        lay = QVBoxLayout(self)
        lay.addWidget(source)
        lay.addWidget(options)
        lay.addWidget(weights)
        lay.addWidget(self.busy)
        lay.addWidget(self.message, 1)
        lay.addWidget(self.buttons)
        self.setMinimumWidth(640)

        self._restore()
        self._source_changed()

    # -- what the fields say -------------------------------------------------------------------------
    def source(self) -> str:
        """The importer's SOURCE: "path/file.py:ClassName" or "torchvision:name" (checked by `request`)."""
        if self.tv_radio.isChecked():
            return f"torchvision:{self.tv_combo.currentText()}"
        return f"{self.file_edit.text().strip()}:{self.class_combo.currentText().strip()}"

    def request(self) -> dict[str, Any]:
        """import_model's keyword arguments; OptionError names the field that is wrong."""
        if self.file_radio.isChecked():
            path = self.file_edit.text().strip()
            if not path:
                raise OptionError("choose the Python file that defines the model")
            if not Path(path).is_file():
                raise OptionError(f"{path}: no such file")
            name = self.class_combo.currentText().strip()
            if not name:
                raise OptionError("choose the class to import (an nn.Module subclass in the file)")
            if not name.isidentifier():
                raise OptionError(f"class: {name[:40]!r} is not a Python class name")
        args = parse_args_text(self.args_edit.text())
        shape = parse_input_text(self.input_edit.text())
        out: dict[str, Any] = {"source": self.source(), "args": args or None, "input_shape": shape,
                               "weights_to": None, "timeout": TIMEOUT_S}
        state = self.state_edit.text().strip()
        if state:  # passed only when given: an importer without pretrained loading still serves the rest
            if not Path(state).expanduser().is_file():
                raise OptionError(f"weights to load: {state}: no such file")
            out["state_dict"] = str(Path(state).expanduser().absolute())
        if self.carry.isChecked():
            text = self.weights_edit.text().strip()
            if not text:
                raise OptionError("weights file: say where to save the weights (or untick Carry weights over)")
            target = Path(text).expanduser()
            if target.is_dir():
                raise OptionError(f"weights file: {target} is a folder; give a file name")
            if not target.parent.is_dir():
                raise OptionError(f"weights file: the folder {target.parent} does not exist")
            out["weights_to"] = str(target.absolute())
        return out

    # -- running -------------------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self._job != 0

    def start(self) -> bool:
        """Import (the Import button): False, with the reason shown, when a field is wrong."""
        if self.is_running():
            return False
        try:
            request = self.request()
        except OptionError as exc:
            text = str(exc)
            self._say(text[:1].upper() + text[1:], error=True)
            return False
        target = request["weights_to"]
        if target and Path(target).exists() and not self._weights_asked and not self.ask_overwrite(Path(target)):
            return False
        self._job = next(_jobs)
        self._set_running(True)
        self._say("Importing: running the module's code in a separate process…")
        self._stop = threading.Event()
        if self._cancellable():
            request["cancel"] = self._stop
        self.thread = threading.Thread(target=_run, args=(self._job, request), daemon=True,
                                       name=f"import-{self._job}")
        self.thread.start()
        return True

    def cancel(self) -> None:
        """Cancel: stop a running import, killing its process (nothing changes), or close the dialog."""
        if self.is_running():
            self._job = 0
            self._stop.set()  # the import's process is killed, not left to run out its time limit
            self._set_running(False)
            self._say("Import cancelled: nothing was changed.")
            return
        self.reject()

    def reject(self) -> None:  # Esc and the window's close button too
        self._job = 0
        self._stop.set()
        super().reject()

    @staticmethod
    def _cancellable() -> bool:
        """Whether the importer takes a cancel event (a stand-in in the tests may not)."""
        try:
            importer = importlib.import_module(IMPORTER)
        except ImportError:  # the import itself says so, in words, once it runs
            return False
        params = inspect.signature(importer.import_model).parameters.values()
        return any(p.name == "cancel" or p.kind is p.VAR_KEYWORD for p in params)

    def _finished(self, job: int, outcome: object) -> None:
        if job != self._job:  # cancelled, or another dialog's
            return
        self._job = 0
        self._set_running(False)
        if isinstance(outcome, BaseException):
            self._say(_refusal(outcome), error=True)
            return
        self.imported = outcome
        self._save_choices()
        self.accept()

    # -- dialogs (overridable in tests) --------------------------------------------------------------
    def ask_python_file(self) -> str:
        path, _ = QFileDialog.getOpenFileName(self, "Python file with the model", self._file_start(), PYTHON_FILTER)
        return path

    def ask_state_dict(self) -> str:
        path, _ = QFileDialog.getOpenFileName(self, "state_dict to load into the module",
                                              self.state_edit.text() or str(self.folder), STATE_DICT_FILTER)
        return path

    def ask_weights_path(self) -> str:
        path, _ = QFileDialog.getSaveFileName(self, "Save the weights as", self.weights_edit.text() or
                                              str(self.folder), WEIGHTS_FILTER)
        return path

    def ask_overwrite(self, path: Path) -> bool:
        answer = QMessageBox.question(self, "Replace weights file?", f"{path} exists. Replace it with the "
                                      "imported module's weights?", QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
        return answer == QMessageBox.Yes

    # -- reactions -----------------------------------------------------------------------------------
    def scan_file(self) -> None:
        """List the file's nn.Module classes in the picker (parsed, never run)."""
        path = self.file_edit.text().strip()
        if path == self._scanned:
            return
        self._scanned = path
        typed = self.class_combo.currentText()
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        self.class_combo.blockSignals(False)
        self._classes = {}
        if not path:
            self._hint("")
            return
        try:
            found = module_classes(path)
        except OptionError as exc:
            self.class_combo.setEditText(typed)
            self._hint(str(exc), error=True)
            return
        self._classes = {c.name: c for c in found}
        self.class_combo.blockSignals(True)
        self.class_combo.addItems(list(self._classes))
        self.class_combo.blockSignals(False)
        if not found:
            self.class_combo.setEditText(typed)
            self._hint(f"No nn.Module subclass found in {Path(path).name}: type the class name", error=True)
            return
        self.class_combo.setCurrentText(typed if typed in self._classes else found[-1].name)
        self._class_changed()

    def _class_changed(self, *_args) -> None:
        info = self._classes.get(self.class_combo.currentText().strip())
        if info is not None:
            text = f"{info.name}({info.signature}), line {info.line}"
            if info.required:
                text += f" — needs constructor arguments: {', '.join(info.required)}"
            self._hint(text)
        elif self._classes:
            self._hint("")
        self._source_changed()

    def _source_changed(self, *_args) -> None:
        self._update_enabled()
        if not self._weights_chosen:
            self.weights_edit.setText(str(self._default_weights()))

    def _update_enabled(self, *_args) -> None:
        running = self.is_running()
        from_file = self.file_radio.isChecked()
        for w in (self.file_edit, self.browse_file, self.class_combo, self.class_hint):
            w.setEnabled(from_file and not running)
        self.tv_combo.setEnabled(not from_file and not running)
        for w in (self.file_radio, self.tv_radio, self.args_edit, self.input_edit, self.carry, self.state_edit,
                  self.browse_state):
            w.setEnabled(not running)
        for w in (self.weights_edit, self.browse_weights):
            w.setEnabled(self.carry.isChecked() and not running)
        self.import_button.setEnabled(not running)

    def _set_running(self, running: bool) -> None:
        self.busy.setVisible(running)
        self.cancel_button.setText("Stop" if running else "Cancel")
        self._update_enabled()

    def _weights_typed(self, _text: str) -> None:
        self._weights_chosen = True
        self._weights_asked = False

    def _browse_file(self) -> None:
        path = self.ask_python_file()
        if path:
            self.file_edit.setText(path)
            self.scan_file()

    def _browse_state(self) -> None:
        path = self.ask_state_dict()
        if path:
            self.state_edit.setText(path)

    def _browse_weights(self) -> None:
        path = self.ask_weights_path()
        if path:
            self.weights_edit.setText(path)
            self._weights_chosen = self._weights_asked = True  # the save dialog asked about replacing it

    def _default_weights(self) -> Path:
        """<folder>/<model>-weights.pt, numbered past files that exist."""
        if self.tv_radio.isChecked():
            stem = self.tv_combo.currentText()
        else:
            stem = self.class_combo.currentText().strip() or Path(self.file_edit.text().strip()).stem
        stem = re.sub(r"[^\w\-]+", "_", stem).strip("_")[:60].lower() or "model"
        for k in range(1, 1000):
            path = self.folder / (f"{stem}-weights.pt" if k == 1 else f"{stem}-weights-{k}.pt")
            if not path.exists():
                return path
        return self.folder / f"{stem}-weights.pt"

    def _file_start(self) -> str:
        text = self.file_edit.text().strip()
        return str(Path(text).parent) if text else str(QSettings().value("import/last_dir", str(self.folder)))

    def _hint(self, text: str, error: bool = False) -> None:
        self.class_hint.setText(text)
        self.class_hint.setStyleSheet(f"color: {ERROR};" if error else "")

    def _say(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet(f"color: {ERROR};" if error else "")

    # -- remembered between imports ------------------------------------------------------------------
    def _restore(self) -> None:
        s = QSettings()
        kind = s.value("import/kind", "torchvision")
        (self.file_radio if kind == "file" else self.tv_radio).setChecked(True)
        self.file_edit.setText(str(s.value("import/file", "")))
        if self.file_edit.text():
            self.scan_file()
            self.class_combo.setCurrentText(str(s.value("import/class", "")))
        name = str(s.value("import/torchvision", DEFAULT_TORCHVISION))
        if name in TORCHVISION_CLASSIFIERS:
            self.tv_combo.setCurrentText(name)
        self.args_edit.setText(str(s.value("import/args", "")))
        self.input_edit.setText(str(s.value("import/input", DEFAULT_INPUT)))
        self.carry.setChecked(str(s.value("import/carry", "false")).lower() == "true")

    def _save_choices(self) -> None:
        s = QSettings()
        s.setValue("import/kind", "file" if self.file_radio.isChecked() else "torchvision")
        s.setValue("import/file", self.file_edit.text().strip())
        if self.file_edit.text().strip():
            s.setValue("import/last_dir", str(Path(self.file_edit.text().strip()).parent))
        s.setValue("import/class", self.class_combo.currentText().strip())
        s.setValue("import/torchvision", self.tv_combo.currentText())
        s.setValue("import/args", self.args_edit.text())
        s.setValue("import/input", self.input_edit.text())
        s.setValue("import/carry", "true" if self.carry.isChecked() else "false")


def _refusal(exc: BaseException) -> str:
    """What the user reads for an import that did not happen: the importer's own words for a refusal,
    one line (never a traceback) for anything else."""
    if type(exc).__name__ == "ImportRefused":  # worded for the command line: name this dialog's fields
        text = str(exc) or "The importer refused the module."
        for option, field in CLI_FIELDS.items():
            text = text.replace(option, field)
        return text
    if isinstance(exc, ImportError) and getattr(exc, "name", None) == IMPORTER:
        return "Importing PyTorch modules is not available in this build of cnnbuilder."
    text = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"The import failed: {type(exc).__name__}" + (f": {text}" if text else "")

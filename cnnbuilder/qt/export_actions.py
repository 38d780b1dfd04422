"""File ▸ Export ▸ Training Script… and Notebook…: the core exporters behind two menu actions.

The window provides `ask_save_path`, `show_error`, `show_status`, `document` and `training_panel`
(tests replace the dialogs); the settings exported are the ones the Training panel shows."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QAction

from ..core.export import ExportError, generate_script, notebook_text
from ..core.fileio import atomic_write_text


class ExportActions:
    def __init__(self, window):
        self.window = window
        self.script = QAction("Training &Script…", window)
        self.script.setStatusTip("Save a standalone training script (torch and torchvision only; runs under torchrun)")
        self.script.triggered.connect(lambda checked=False: self.export_script_dialog())
        self.notebook = QAction("&Notebook…", window)
        self.notebook.setStatusTip("Save the training script as a Jupyter notebook")
        self.notebook.triggered.connect(lambda checked=False: self.export_notebook_dialog())
        self.actions = [self.script, self.notebook]

    def _suggest(self, suffix: str) -> str:
        doc = self.window.document
        return (doc.path.stem if doc.path else "train") + suffix

    def _write(self, what: str, path: str | Path, make) -> bool:
        w = self.window
        try:
            text = make(w.document.project, w.training_panel.config())
        except ExportError as exc:
            w.show_error(f"Cannot export the {what}", str(exc))
            return False
        try:
            atomic_write_text(Path(path), text)
        except OSError as exc:
            w.show_error(f"Cannot export the {what}", f"{path}: {exc.strerror or exc}")
            return False
        w.show_status(f"Wrote {path} ({what})")
        return True

    def export_script(self, path: str | Path) -> bool:
        make = lambda project, cfg: generate_script(project, cfg, filename=Path(path).name)
        return self._write("training script", path, make)

    def export_notebook(self, path: str | Path) -> bool:
        return self._write("notebook", path, notebook_text)

    def export_script_dialog(self) -> bool:
        path = self.window.ask_save_path("Export training script", "Python files (*.py)", self._suggest("_train.py"))
        return bool(path) and self.export_script(path)

    def export_notebook_dialog(self) -> bool:
        path = self.window.ask_save_path("Export notebook", "Jupyter notebooks (*.ipynb)", self._suggest(".ipynb"))
        return bool(path) and self.export_notebook(path)

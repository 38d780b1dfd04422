"""Crash recovery. Every minute a modified project is written to the user's data directory
(`CNNBUILDER_DATA_DIR` overrides it). Each running window owns one autosave file, guarded by a
QLockFile; a clean exit deletes both. At start, an autosave whose lock is free (its process died)
is offered for restore."""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import platformdirs
from PySide6.QtCore import QLockFile, QObject, QTimer, Signal

from ..core.fileio import atomic_write_text, describe_error
from ..core.project import Project, dumps, loads
from .document import Document

ENV_DATA_DIR = "CNNBUILDER_DATA_DIR"
INTERVAL_MS = 60_000
SUFFIX = ".autosave.json"


def data_dir() -> Path:
    override = os.environ.get(ENV_DATA_DIR)
    return Path(override) if override else Path(platformdirs.user_data_dir("cnnbuilder", appauthor=False))


def autosave_dir() -> Path:
    return data_dir() / "autosave"


def _lock(path: Path) -> QLockFile:
    lock = QLockFile(str(path))
    lock.setStaleLockTime(0)  # stale only when its process is gone, however long a session runs
    return lock


@dataclass
class Orphan:
    """An autosave left behind by a session that did not exit cleanly."""

    file: Path
    info: dict
    lock: QLockFile

    @property
    def original_path(self) -> Path | None:
        p = self.info.get("path")
        return Path(p) if p else None

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.info.get("saved_at", self.file.stat().st_mtime)))
        what = str(self.original_path) if self.original_path else (self.info.get("name") or "an untitled project")
        return f"{what}, autosaved {when}"

    def load(self) -> Project:
        """The autosaved project, with its original file name (raises ProjectError)."""
        project = loads(self.file.read_bytes(), str(self.file))
        project.path = self.original_path
        return project

    def discard(self) -> None:
        _delete(self.file, self.lock)


def _info_of(file: Path) -> Path:
    return file.with_name(file.name[: -len(SUFFIX)] + ".info.json")


def _delete(file: Path, lock: QLockFile) -> None:
    """An autosave, its info file and its lock gone (what cannot be deleted is left behind)."""
    for p in (file, _info_of(file)):
        try:
            p.unlink()
        except OSError:
            pass
    if lock.isLocked():
        lock.unlock()


def _lock_of(file: Path) -> Path:
    return file.with_name(file.name[: -len(SUFFIX)] + ".lock")


class Autosave(QObject):
    saved = Signal(str)  # the autosave file written
    failed = Signal(str)  # why the autosave could not be written (once per run of failures)

    def __init__(self, document: Document, directory: Path | None = None, interval_ms: int = INTERVAL_MS,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.document = document
        self.directory = Path(directory) if directory is not None else autosave_dir()
        self.session = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.file = self.directory / f"{self.session}{SUFFIX}"
        self.lock = _lock(_lock_of(self.file))
        self.last_error: str | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.save_now)
        document.modified_changed.connect(self._modified_changed)

    def start(self) -> None:
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _modified_changed(self, modified: bool) -> None:
        if not modified:
            self.remove()  # saved (or reverted to clean): the file on disk is the truth again

    def save_now(self) -> bool:
        """Write the project if it has unsaved changes; returns True if written."""
        if not self.document.is_modified():
            self.remove()
            return False
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if not self.lock.isLocked() and not self.lock.tryLock(0):
                return False
            project = self.document.project
            # force: it is our own file, whatever its mode says.
            atomic_write_text(self.file, dumps(project), force=True)
            info = {"path": str(project.path) if project.path else None, "name": project.name,
                    "saved_at": time.time(), "pid": os.getpid()}
            atomic_write_text(_info_of(self.file), json.dumps(info), force=True)
        except Exception as exc:  # a full disk or an unsavable name must not interrupt editing
            reason = describe_error(exc)
            if reason != self.last_error:  # every minute the same news would be noise
                self.last_error = reason
                self.failed.emit(reason)
            return False
        self.last_error = None
        self.saved.emit(str(self.file))
        return True

    def remove(self) -> None:
        _delete(self.file, self.lock)

    def orphans(self) -> list[Orphan]:
        """Autosaves of sessions that crashed, newest first; each comes locked to us."""
        if not self.directory.is_dir():
            return []
        found = []
        for file in self.directory.glob(f"*{SUFFIX}"):
            if file == self.file:
                continue
            lock = _lock(_lock_of(file))
            if not lock.tryLock(0):
                continue  # another window is running and owns it
            try:
                info = json.loads(_info_of(file).read_text(encoding="utf-8"))
                if not isinstance(info, dict):
                    info = {}
            except (OSError, ValueError):
                info = {}
            found.append(Orphan(file, info, lock))
        found.sort(key=lambda o: o.info.get("saved_at", 0), reverse=True)
        return found

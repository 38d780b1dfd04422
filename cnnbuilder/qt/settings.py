"""Where the GUI keeps its preferences (window layout, recent files, theme)."""

from __future__ import annotations

from PySide6.QtCore import QSettings

ORGANIZATION = "cnnbuilder"
APPLICATION = "cnnbuilder"
MAX_RECENT = 10


def app_settings() -> QSettings:
    # INI everywhere (not the Windows registry): one format to read, copy and isolate in tests.
    return QSettings(QSettings.IniFormat, QSettings.UserScope, ORGANIZATION, APPLICATION)


def recent_files(settings: QSettings | None = None) -> list[str]:
    s = settings or app_settings()
    value = s.value("recent_files", [])
    if isinstance(value, str):  # QSettings returns a lone entry as a plain string
        value = [value]
    return [str(v) for v in (value or []) if v]


def add_recent_file(path: str, settings: QSettings | None = None) -> list[str]:
    s = settings or app_settings()
    files = [path] + [f for f in recent_files(s) if f != path]
    files = files[:MAX_RECENT]
    s.setValue("recent_files", files)
    return files


def clear_recent_files(settings: QSettings | None = None) -> None:
    (settings or app_settings()).setValue("recent_files", [])

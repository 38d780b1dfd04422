"""Safe file writes. New content goes to a temporary file beside the target, is flushed to disk,
then renamed over it, so a crash, a full disk or a failing serializer leaves the old file whole.

The write behaves the way editors do with what is already there:
- a symbolic link keeps being a link: the file it points to is written;
- an existing file keeps its permission bits (and owner, where the OS lets us); a new file gets
  0666 minus the umask, like any file the user creates;
- a file with more than one hard link is rewritten in place (after the new content is complete on
  disk), so every name keeps seeing the same file;
- a read-only file is not replaced unless the caller says so: `ReadOnlyError` lets a GUI ask first;
- temporary files left by a writer that was killed are removed by the next write to that target.
See docs/project-format.md ("How files are written").
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

STALE_AGE_S = 24 * 3600  # a temp file this old belongs to no running write, whatever its pid says
LEGACY_AGE_S = 3600  # for temp names without a pid (earlier versions)


class ReadOnlyError(PermissionError):
    """The target exists and is read-only. Call again with force=True to replace it anyway."""

    def __init__(self, path: str | os.PathLike):
        super().__init__(errno.EACCES, "the file is read-only", str(path))


def is_read_only(path: str | os.PathLike, st: os.stat_result | None = None) -> bool:
    """No write bit set, or not writable by us. The mode bits count even for root, who may write
    anything: a 0444 file says "don't change me" to everybody."""
    st = st if st is not None else os.stat(path)
    return not (st.st_mode & 0o222) or not os.access(path, os.W_OK)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None], *, force: bool = False) -> Path:
    """Call `write(f)` on a temporary binary file, fsync it and put it in place of `path`.

    Raises ReadOnlyError when `path` is read-only (unless `force`), IsADirectoryError for a folder,
    OSError for a device or pipe, and whatever `write` raises (the old file is then untouched)."""
    path = Path(path)
    target = Path(os.path.realpath(path))  # through symlinks: the link stays, its target changes
    try:
        st: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file but a device, pipe or socket", str(path))
        if is_read_only(target, st):
            if not force:
                raise ReadOnlyError(path)
            if os.name == "nt":  # Windows refuses to rename over a read-only file; the mode comes back below
                os.chmod(target, stat.S_IMODE(st.st_mode) | stat.S_IWRITE)
    remove_stale_temps(target)
    try:
        if st is not None and st.st_nlink > 1:
            _write_in_place(target, write, st)
        else:
            _write_and_rename(target, write, st)
    except BaseException:
        if st is not None and os.name == "nt" and force:
            try:
                os.chmod(target, stat.S_IMODE(st.st_mode))  # read-only again, as it was
            except OSError:
                pass
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str, *, force: bool = False) -> Path:
    data = text.encode("utf-8")  # before anything is touched: text that cannot be encoded changes nothing
    return atomic_write(path, lambda f: f.write(data), force=force)


def ensure_regular_file(path: str | os.PathLike) -> None:
    """Raise OSError unless `path` is a regular file: reading a device such as /dev/zero never ends."""
    st = os.stat(path)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, "not a regular file but a device, pipe or socket", str(path))


def describe_error(exc: BaseException, limit: int = 300) -> str:
    """A one-line reason for a message that already names the file."""
    if isinstance(exc, UnicodeEncodeError):
        bad = exc.object[exc.start:exc.start + 1] if isinstance(exc.object, str) else ""
        code = f"U+{ord(bad):04X}" if bad else "a character"
        return (f"the text holds a character that cannot be stored ({code}, e.g. in a name); "
                "rename it and save again")
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        text = first if isinstance(exc, OSError) and first else (
            f"{type(exc).__name__}: {first}" if first else type(exc).__name__)
    return text if len(text) <= limit else text[:limit - 1] + "…"


# -- temporary files -------------------------------------------------------------------------------
def _temp_path(target: Path, suffix: str = ".tmp") -> Path:
    # The pid says whose it is: a later write removes it only when that process is gone.
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}{suffix}")


_OURS = re.compile(r"(?P<pid>\d+)\.[0-9a-f]{8}")
_LEGACY = re.compile(r"[a-z0-9_]{8}")  # tempfile.mkstemp's names, written by earlier versions


def remove_stale_temps(target: str | os.PathLike) -> list[Path]:
    """Delete temp files of `target` left by writers that died (killed mid-save). Another running
    writer's file is kept: only a dead pid, or an age of STALE_AGE_S, makes one stale."""
    target = Path(target)
    prefix = f".{target.name}."
    removed = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        middle = name[len(prefix):-len(".tmp")]
        ours = _OURS.fullmatch(middle)
        if not ours and not _LEGACY.fullmatch(middle):
            continue  # some other file's temp, e.g. of "model.json.bak"
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if ours is not None:
            stale = age >= STALE_AGE_S or not _pid_alive(int(ours["pid"]))
        else:
            stale = age >= LEGACY_AGE_S  # no pid in the name: only age tells
        if not stale:
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of ours may be writing
    if os.name == "nt":
        return True  # os.kill(pid, 0) would terminate it there; the age rule decides instead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


# -- the two ways of writing -----------------------------------------------------------------------
def _open_new(path: Path, mode: int) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    return os.open(path, flags, mode)


def _take_over_metadata(fd: int, st: os.stat_result) -> None:
    """Give the new file the old one's permission bits and, where allowed, its owner and group."""
    if hasattr(os, "fchown") and (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
        for uid in (st.st_uid, -1):
            try:
                os.fchown(fd, uid, st.st_gid)
                break
            except OSError:
                continue
    if hasattr(os, "fchmod"):
        os.fchmod(fd, stat.S_IMODE(st.st_mode))  # after chown, which may clear setuid/setgid


def _write_and_rename(target: Path, write: Callable[[BinaryIO], None], st: os.stat_result | None) -> None:
    tmp = _temp_path(target)
    # A new file is created 0666 and the umask trims it, as for any file the user makes; a
    # replacement starts private and gets the old file's mode once its content is written.
    fd = _open_new(tmp, 0o600 if st is not None else 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            if st is not None:
                _take_over_metadata(f.fileno(), st)
            os.fsync(f.fileno())
        if st is not None and not hasattr(os, "fchmod"):
            os.chmod(tmp, stat.S_IMODE(st.st_mode))  # Windows: only the read-only flag
        os.replace(tmp, target)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_dir(target.parent)


def _write_in_place(target: Path, write: Callable[[BinaryIO], None], st: os.stat_result) -> None:
    """For a file with several hard links: a rename would leave the other names on the old inode.
    The new content is completed (and synced) in a temp file first, so a failing `write` changes
    nothing; the old content is copied to a backup `.NAME.PID.XXXXXXXX.bak`, the new content is
    copied over the file and synced, and the backup is removed. The trade-off: between those steps
    the file itself is not whole; if the process dies then, the backup keeps the old content (it is
    never deleted automatically) and the temp file the new one."""
    tmp = _temp_path(target)
    backup = _temp_path(target, ".bak")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    made_writable = keep_backup = False
    try:
        with os.fdopen(fd, "w+b") as new:
            write(new)
            new.flush()
            os.fsync(new.fileno())
            shutil.copyfile(target, backup)
            if not os.access(target, os.W_OK):  # forced over a read-only file that we own
                os.chmod(target, stat.S_IMODE(st.st_mode) | stat.S_IWUSR)
                made_writable = True
            try:
                new.seek(0)
                _copy_over(new, target)
            except BaseException as exc:
                try:
                    with open(backup, "rb") as old:
                        _copy_over(old, target)
                except OSError:
                    keep_backup = True
                    raise OSError(errno.EIO, f"writing in place failed ({describe_error(exc)}); the old content "
                                             f"is in {backup.name}", str(target)) from exc
                raise
    finally:
        if made_writable:
            try:
                os.chmod(target, stat.S_IMODE(st.st_mode))
            except OSError:
                pass
        _unlink_quietly(tmp)
        if not keep_backup:
            _unlink_quietly(backup)


def _copy_over(src: BinaryIO, target: Path) -> None:
    with open(target, "r+b") as out:
        shutil.copyfileobj(src, out)
        out.truncate()
        out.flush()
        os.fsync(out.fileno())


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX); where a folder cannot be opened, there is nothing to do."""
    if os.name == "nt":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

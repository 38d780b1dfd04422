"""The safe writer: links, modes, read-only files, hard links, killed writers, failing writers."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnbuilder.core import fileio
from cnnbuilder.core.fileio import (
    ReadOnlyError,
    atomic_write,
    atomic_write_text,
    describe_error,
    ensure_regular_file,
    remove_stale_temps,
)

ROOT = Path(__file__).resolve().parents[2]
posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX permissions, links and signals")
EXAMPLES = int(os.environ.get("CNNB_EXAMPLES", 40))


def _leftovers(directory: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


@posix_only
def test_saving_through_a_symlink_writes_its_target_and_keeps_the_link(tmp_path):
    real = tmp_path / "real" / "model.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    assert atomic_write_text(link, "new") == link
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new"
    assert _leftovers(real.parent, {"model.json"}) == [] and _leftovers(tmp_path, {"real", "link.json"}) == []


@posix_only
def test_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "missing.json")
    atomic_write_text(link, "x")
    assert link.is_symlink() and (tmp_path / "missing.json").read_text() == "x"


@posix_only
def test_existing_files_keep_their_mode_and_new_files_honour_the_umask(tmp_path):
    old_umask = os.umask(0o022)
    try:
        new = tmp_path / "new.json"
        atomic_write_text(new, "a")
        assert stat.S_IMODE(new.stat().st_mode) == 0o644
        os.umask(0o077)
        atomic_write_text(tmp_path / "private.json", "a")
        assert stat.S_IMODE((tmp_path / "private.json").stat().st_mode) == 0o600
        shared = tmp_path / "shared.json"
        shared.write_text("a")
        os.chmod(shared, 0o664)
        atomic_write_text(shared, "b")  # the umask does not narrow an existing file's mode
        assert stat.S_IMODE(shared.stat().st_mode) == 0o664 and shared.read_text() == "b"
    finally:
        os.umask(old_umask)


@posix_only
def test_a_read_only_file_is_not_replaced_unless_forced(tmp_path):
    ro = tmp_path / "ro.json"
    ro.write_text("old")
    os.chmod(ro, 0o444)
    with pytest.raises(ReadOnlyError) as info:
        atomic_write_text(ro, "new")
    assert isinstance(info.value, PermissionError) and info.value.filename == str(ro)
    assert "read-only" in describe_error(info.value)
    assert ro.read_text() == "old"
    atomic_write_text(ro, "new", force=True)
    assert ro.read_text() == "new" and stat.S_IMODE(ro.stat().st_mode) == 0o444


@posix_only
def test_hard_links_stay_linked(tmp_path):
    a = tmp_path / "a.json"
    a.write_text("old content that is longer")
    b = tmp_path / "b.json"
    os.link(a, b)
    os.chmod(a, 0o640)
    ino = a.stat().st_ino
    atomic_write_text(a, "new")
    assert a.stat().st_ino == ino and b.read_text() == "new" and a.stat().st_nlink == 2
    assert stat.S_IMODE(b.stat().st_mode) == 0o640
    assert _leftovers(tmp_path, {"a.json", "b.json"}) == []
    # A read-only linked file too, when forced; its mode stays read-only.
    os.chmod(a, 0o444)
    with pytest.raises(ReadOnlyError):
        atomic_write_text(b, "newer")
    atomic_write_text(b, "newer", force=True)
    assert a.read_text() == "newer" and stat.S_IMODE(a.stat().st_mode) == 0o444


@posix_only
def test_a_failing_writer_leaves_linked_files_whole(tmp_path):
    a = tmp_path / "a.json"
    a.write_text("old")
    os.link(a, tmp_path / "b.json")

    def half(f):
        f.write(b"partial")
        raise RuntimeError("serializer broke")

    with pytest.raises(RuntimeError):
        atomic_write(a, half)
    assert (tmp_path / "b.json").read_text() == "old" == a.read_text()
    assert _leftovers(tmp_path, {"a.json", "b.json"}) == []


def test_folders_devices_and_missing_folders_are_refused_with_a_reason(tmp_path):
    folder = tmp_path / "folder.json"
    folder.mkdir()
    with pytest.raises(IsADirectoryError):
        atomic_write_text(folder, "x")
    if os.path.exists("/dev/null"):
        with pytest.raises(OSError, match="not a regular file"):
            atomic_write_text("/dev/null", "x")
        with pytest.raises(OSError, match="not a regular file"):
            ensure_regular_file("/dev/zero")
    with pytest.raises(IsADirectoryError):
        ensure_regular_file(folder)
    with pytest.raises(FileNotFoundError):
        atomic_write_text(tmp_path / "no" / "such" / "dir.json", "x")
    assert _leftovers(tmp_path, {"folder.json"}) == []


def test_text_that_cannot_be_encoded_changes_nothing(tmp_path):
    target = tmp_path / "m.json"
    target.write_text("old")
    with pytest.raises(UnicodeEncodeError) as info:
        atomic_write_text(target, "name \ud800")
    assert target.read_text() == "old" and _leftovers(tmp_path, {"m.json"}) == []
    assert "U+D800" in describe_error(info.value)


def test_describe_error_is_one_bounded_line():
    assert describe_error(OSError(28, "No space left on device")) == "No space left on device"
    assert describe_error(TypeError("bad\nsecond line")) == "TypeError: bad"
    assert describe_error(KeyError()) == "KeyError"
    assert len(describe_error(ValueError("x" * 5000))) <= 300


@posix_only
def test_stale_temps_of_dead_writers_are_removed_but_live_ones_kept(tmp_path):
    target = tmp_path / "m.json"
    target.write_text("old")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".m.json.{dead.pid}.0123abcd.tmp"
    live = tmp_path / f".m.json.{os.getppid()}.0123abcd.tmp"  # a running process (our parent)
    legacy_old = tmp_path / ".m.json.ab_cd123.tmp"
    legacy_new = tmp_path / ".m.json.zz_cd123.tmp"
    other = tmp_path / f".m.json.bak.{dead.pid}.0123abcd.tmp"  # belongs to "m.json.bak"
    for p in (stale, live, legacy_old, legacy_new, other):
        p.write_text("junk")
    hours_ago = time.time() - 2 * 3600
    os.utime(legacy_old, (hours_ago, hours_ago))
    removed = remove_stale_temps(target)
    assert sorted(p.name for p in removed) == sorted([stale.name, legacy_old.name])
    assert live.exists() and legacy_new.exists() and other.exists()


@posix_only
def test_a_save_killed_mid_write_leaves_the_old_file_and_the_next_save_cleans_up(tmp_path):
    target = tmp_path / "model.json"
    target.write_text("old")
    script = textwrap.dedent(f"""
        import sys, time
        from cnnbuilder.core.fileio import atomic_write
        def slow(f):
            f.write(b"half of the new")
            f.flush()
            print("writing", flush=True)
            time.sleep(60)
        atomic_write({str(target)!r}, slow)
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        temps = [p.name for p in tmp_path.glob(".model.json.*.tmp")]
        assert temps and str(proc.pid) in temps[0]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert target.read_text() == "old"
    assert list(tmp_path.glob(".model.json.*.tmp"))  # the killed writer left its temp
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and _leftovers(tmp_path, {"model.json"}) == []


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(old=st.binary(max_size=200), new=st.binary(max_size=2000), cut=st.integers(0, 2000),
       step=st.sampled_from(["write", "fsync", "chmod", "replace", "none"]),
       error=st.sampled_from([OSError(28, "No space left on device"), PermissionError(13, "Permission denied"),
                              ValueError("bad"), MemoryError(), KeyboardInterrupt()]),
       linked=st.booleans())
def test_failures_at_any_step_leave_old_or_new_content_never_partial(tmp_path_factory, old, new, cut, step, error,
                                                                    linked):
    d = tmp_path_factory.mktemp("w")
    target = d / "t.bin"
    target.write_bytes(old)
    keep = {"t.bin"}
    if linked and os.name != "nt":
        os.link(target, d / "u.bin")
        keep.add("u.bin")
    real_fsync, real_replace, real_fchmod = os.fsync, os.replace, getattr(os, "fchmod", None)

    def fail(*args, **kwargs):
        raise error

    def write(f):
        f.write(new[:cut])
        if step == "write":
            raise error
        f.write(new[cut:])

    patches = {"fsync": ("fsync", fail), "replace": ("replace", fail), "chmod": ("fchmod", fail)}
    try:
        if step in patches:
            name, fn = patches[step]
            setattr(fileio.os, name, fn)
        try:
            atomic_write(target, write)
        except BaseException as exc:  # noqa: BLE001 - the injected error, whatever it is
            assert exc is error or step == "chmod"
    finally:
        os.fsync, os.replace = real_fsync, real_replace
        if real_fchmod is not None:
            os.fchmod = real_fchmod
    assert target.read_bytes() in (old, new)
    for name in keep:
        assert (d / name).read_bytes() == target.read_bytes()
    assert _leftovers(d, keep) == []

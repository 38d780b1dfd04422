"""`cnnbuilder FILE` on bad files, in a real subprocess: a loader error escaping before the event
loop used to print a traceback and abort the process ("QThread: Destroyed while thread is still
running"). Now every bad file gets a dialog naming it, the editor comes up with the example
project, and the process ends normally."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = "MNIST tutorial CNN"


def _drive(tmp_path: Path, *args: str) -> tuple[list[dict], str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen", HOME=str(home),
               XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"),
               CNNBUILDER_DATA_DIR=str(home / "cnnbuilder"))
    proc = subprocess.run([sys.executable, "-m", "tests.qt.gui_driver", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "QThread: Destroyed" not in proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")], proc.stderr


def test_bad_files_on_the_command_line_get_a_dialog_and_the_editor_stays_up(tmp_path):
    files = {
        "wrong.json": b'{"format": "cnnbuilder-project", "version": 1, "nodes": [',
        "deep.json": b"[" * 1000 + b"]" * 1000,
        "binary.json": bytes(range(256)) * 8,
        # An integer too large for a float: the loader raised OverflowError, not ProjectError.
        "huge.json": json.dumps({"format": "cnnbuilder-project", "version": 1, "nodes": [
            {"id": "a", "type": "Conv2d", "params": {"out_channels": 10 ** 400}}]}).encode(),
    }
    paths = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    (tmp_path / "folder.json").mkdir()
    paths += [str(tmp_path / "folder.json"), str(tmp_path / "missing.json")]
    if os.path.exists("/dev/zero"):
        paths.append("/dev/zero")  # reading it would never end
    good = str(ROOT / "resources" / "examples" / "mnist_cnn.json")
    runs, stderr = _drive(tmp_path, *paths, "!" + good)
    assert [r["file"] for r in runs] == [*paths, good]
    for r in runs[:-1]:
        assert r["rc"] == 0 and r["project"] == DEFAULT and not r["modified"], r
        assert len(r["dialogs"]) == 1 and r["dialogs"][0].startswith("Cannot open project: "), r
        assert r["file"] in r["dialogs"][0] and "\n" not in r["dialogs"][0]
    # A loader bug on a good file, and a slot that raises while the editor runs: both end in a
    # dialog; the guard logs the slot's traceback, and nothing else prints one.
    r = runs[-1]
    assert r["rc"] == 0 and r["project"] == DEFAULT and r["slot_raised"]
    assert any(d.startswith("Cannot open project: ") and good in d and "TypeError" in d for d in r["dialogs"])
    assert any(d.startswith("Unexpected error: ") and "ZeroDivisionError" in d for d in r["dialogs"])
    assert stderr.count("Traceback") == 1 and "unexpected error (the editor carries on)" in stderr

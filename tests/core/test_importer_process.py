"""The importer runs the user's code in a child process: a hang, an exit, a crash or printed junk in
it reaches the caller only as a one-line refusal (and a time limit stops it)."""

from __future__ import annotations

import os
import textwrap
import time

import pytest

from cnnbuilder.core.importer import ImportRefused, import_model
from cnnbuilder.core.training import node_weights

GOOD = """
    import torch
    from torch import nn
    print("JUNK FROM THE USER'S MODULE")
    import sys
    print("MORE JUNK", file=sys.stderr)

    class Net(nn.Module):
        def __init__(self, classes=3):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.fc = nn.Linear(4 * 6 * 6, classes)
            print("junk from __init__")

        def forward(self, x):
            print("junk from forward")
            x = torch.relu(self.conv(x))
            return self.fc(x.view(x.size(0), -1))
"""


def _file(tmp_path, source: str):
    path = tmp_path / "model.py"
    path.write_text(textwrap.dedent(source))
    return path


def test_import_in_a_child_process_keeps_the_callers_output_clean(tmp_path, capfd):
    path = _file(tmp_path, GOOD)
    r = import_model(f"{path}:Net", args={"classes": 5}, input_shape=(1, 8, 8), weights_to=tmp_path / "w.pt")
    out, err = capfd.readouterr()
    assert "JUNK" not in out + err and "junk" not in out + err
    g = r.project.graph
    assert g.find("fc").params["out_features"] == 5
    assert r.project.training["init_weights"] == str(tmp_path / "w.pt")
    assert set(node_weights.load(r.weights)) == {g.find("conv").id, g.find("fc").id}


@pytest.mark.parametrize("case, source, message", [
    ("hangs in __init__", """
        from torch import nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                while True:
                    pass
     """, "the module did not finish building within 4 s (it was stopped)"),
    ("os._exit while imported", """
        import os
        os._exit(0)
     """, "the import process exited with code 0 before answering"),
    ("sys.exit while imported", """
        import sys
        sys.exit(3)
     """, "model.py called sys.exit(3) while being imported"),
    ("crashes", """
        import ctypes
        ctypes.string_at(0)
     """, "the import process was killed by signal"),
])
def test_the_child_process_contains_the_damage(case, source, message, tmp_path):
    path = _file(tmp_path, source)
    start = time.monotonic()
    with pytest.raises(ImportRefused) as err:
        import_model(f"{path}:Net", input_shape=(1, 8, 8), timeout=4 if "hangs" in case else 60)
    assert message in str(err.value)
    assert "Traceback" not in str(err.value)
    if "hangs" in case:
        assert time.monotonic() - start < 30  # stopped, not waited for


def _gone(pid: int) -> bool:
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_what_the_module_started_ends_with_the_import(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    path = _file(tmp_path, GOOD + f"""
    import subprocess
    _p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    open({str(pidfile)!r}, "w").write(str(_p.pid))
    """)
    import_model(f"{path}:Net", input_shape=(1, 8, 8))
    assert _gone(int(pidfile.read_text())), "the module's own child process outlived the import"


def test_a_hung_child_and_what_it_started_are_killed(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    path = _file(tmp_path, f"""
        import subprocess, sys, time
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(pidfile)!r}, "w").write(str(p.pid))
        time.sleep(600)
    """)
    with pytest.raises(ImportRefused, match="did not finish building within 6 s"):
        import_model(f"{path}:Net", input_shape=(1, 8, 8), timeout=6)
    pid = int(pidfile.read_text())
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    else:
        pytest.fail("the module's own child process outlived the import")


def test_a_module_that_allocates_without_end_is_stopped(tmp_path, monkeypatch):
    import cnnbuilder.core.importer as importer

    monkeypatch.setattr(importer, "memory_limit", lambda: 3 << 30)  # a small limit: the test machine is shared
    path = _file(tmp_path, """
        import torch
        from torch import nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.hoard = [torch.ones(64, 1024, 1024) for _ in range(64)]  # 16 GiB
    """)
    with pytest.raises(ImportRefused) as err:
        import_model(f"{path}:Net", input_shape=(1, 8, 8))
    assert str(err.value).startswith("building Net() raised RuntimeError")
    assert "can't allocate memory" in str(err.value) and "at model.py:7 (out of memory" in str(err.value)


def test_cancel_stops_a_running_import_at_once(tmp_path):
    """Cancel in the dialog sets the event: the child that hangs is killed within moments, not left
    to run out its time limit, and the refusal says it was cancelled."""
    import threading

    path = _file(tmp_path, """
        import os
        from torch import nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                open(os.path.join(os.path.dirname(__file__), "started"), "w").close()
                while True:
                    pass
    """)
    cancel = threading.Event()
    outcome: list = []

    def run():
        try:
            import_model(f"{path}:Net", input_shape=(1, 8, 8), timeout=300, cancel=cancel)
        except ImportRefused as exc:
            outcome.append(str(exc))

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 120
    while not (tmp_path / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (tmp_path / "started").exists(), "the module never started building"
    t = time.monotonic()
    cancel.set()
    thread.join(30)
    assert not thread.is_alive() and time.monotonic() - t < 30
    assert outcome == ["model.py: the import was cancelled (its process was stopped)"]

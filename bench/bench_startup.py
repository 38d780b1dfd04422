"""Start-up: launch each app, time until it reports its window painted on screen, next to the time of
`python -c "import torch, torchvision"` in the same run, and the GUI thread's longest stall while
the training process loads torch.

    xvfb-run -a -s "-screen 0 1600x1000x24" python bench/bench_startup.py --app pip=.venv/bin/cnnbuilder --runs 5

    xvfb-run -a -s "-screen 0 1600x1000x24" python bench/bench_startup.py \\
        --app bundle=dist/cnnbuilder/cnnbuilder --app pip=build/venv-linux/bin/cnnbuilder --runs 7

Each app runs with an empty environment (a fresh HOME, DISPLAY only; PYTHONPATH too when set, to time
a working tree through an editable install) and CNNBUILDER_REPORT_SHOWN=ready, which makes it print
the wall-clock time of its first painted expose, then time its GUI thread with a 10 ms timer until
the training process reports torch loaded, print the longest gap between two ticks after the window
was shown, and quit (cnnbuilder/qt/app.py). `--until shown` quits at the window instead (for builds
older than the training process). The torch import runs with the same environment and the Python of
`--python` (default: the one beside the first app, else this one). Apps and the import alternate
within each round. Round 1 is the first start after the build or boot as far as the page cache
allows; with --drop-caches (root, where /proc/sys/vm/drop_caches is writable) every run starts cold.

Goals (issue 9): the window in under a third of the torch import's time, and no GUI stall over 100 ms.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHOWN = re.compile(r"cnnbuilder: window shown at ([0-9.]+)")
READY = re.compile(r"cnnbuilder: torch (ready|failed) at ([0-9.]+) .*longest GUI stall after the window was shown "
                   r"([0-9.]+) ms over (\d+) ticks; torch in the GUI process: (True|False)")
IMPORT = "import torch, torchvision"


def drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    keep = ("DISPLAY", "XAUTHORITY", "WAYLAND_DISPLAY", "PYTHONPATH")
    return {"HOME": str(home), "LANG": "C.UTF-8", **{k: os.environ[k] for k in keep if k in os.environ}, **extra}


def start_once(exe: str, home: Path, timeout: float, until: str) -> dict[str, float | bool | None]:
    env = clean_env(home, CNNBUILDER_REPORT_SHOWN="quit" if until == "shown" else "ready")
    t0 = time.time()
    proc = subprocess.run([exe], env=env, capture_output=True, text=True, timeout=timeout, cwd=home)
    shown = SHOWN.search(proc.stdout)
    if proc.returncode != 0 or shown is None:
        raise SystemExit(f"{exe}: no window (exit {proc.returncode})\n{proc.stdout}\n{proc.stderr}")
    out: dict[str, float | bool | None] = {"window": float(shown.group(1)) - t0, "ready": None, "stall": None,
                                           "torch_in_gui": None}
    if until == "ready":
        ready = READY.search(proc.stdout)
        if ready is None or ready.group(1) != "ready":
            raise SystemExit(f"{exe}: the training process did not load torch\n{proc.stdout}\n{proc.stderr}")
        out.update(ready=float(ready.group(2)) - t0, stall=float(ready.group(3)),
                   torch_in_gui=ready.group(5) == "True")
    return out


def import_once(python: str, home: Path, timeout: float) -> float:
    t0 = time.time()
    proc = subprocess.run([python, "-c", IMPORT], env=clean_env(home), capture_output=True, text=True,
                          timeout=timeout, cwd=home)
    if proc.returncode != 0:
        raise SystemExit(f"{python} -c {IMPORT!r} failed:\n{proc.stderr}")
    return time.time() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--app", action="append", required=True, metavar="LABEL=EXECUTABLE")
    ap.add_argument("--python", help="the Python whose `import torch, torchvision` is timed")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--until", choices=("ready", "shown"), default="ready")
    ap.add_argument("--drop-caches", action="store_true", help="drop the page cache before every run (root)")
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    if "DISPLAY" not in os.environ and "WAYLAND_DISPLAY" not in os.environ:
        raise SystemExit("no display: run under xvfb-run (see the docstring)")
    apps = [(label, os.path.abspath(exe)) for label, exe in (a.split("=", 1) for a in args.app)]
    for label, exe in apps:
        if not os.access(exe, os.X_OK):
            raise SystemExit(f"{label}: {exe} is not an executable")
    beside = Path(apps[0][1]).with_name("python")
    python = args.python or (str(beside) if beside.exists() else sys.executable)
    runs: dict[str, list[dict]] = {label: [] for label, _ in apps}
    imports: list[float] = []
    cold = False
    with tempfile.TemporaryDirectory(prefix="cnnb-startup-") as tmp:
        for r in range(args.runs):
            order: list[tuple[str, str | None]] = [*apps, ("import", None)]
            order = order if r % 2 == 0 else order[::-1]
            line = []
            for label, exe in order:
                if args.drop_caches:
                    cold = drop_caches()
                home = Path(tmp) / label
                home.mkdir(exist_ok=True)
                if exe is None:
                    imports.append(import_once(python, home, args.timeout))
                    line.append(f"{IMPORT} {imports[-1]:.2f} s")
                    continue
                got = start_once(exe, home, args.timeout, args.until)
                runs[label].append(got)
                text = f"{label}: window {got['window']:.2f} s"
                if got["ready"] is not None:
                    text += f", torch ready {got['ready']:.2f} s, longest stall {got['stall']:.0f} ms"
                line.append(text)
            print(f"round {r + 1}: " + "; ".join(line), flush=True)
    kind = "every run after dropping the page cache" if cold else "page cache as the machine had it"
    imp = statistics.median(imports[1:] or imports)
    print(f"\nstart to main window painted, next to `python -c \"{IMPORT}\"` ({kind}; medians of rounds 2..n, "
          f"round 1 in brackets):")
    print(f"{'app':<10} {'window':>14} {'torch import':>14} {'window/import':>14} {'torch ready':>14} "
          f"{'longest stall':>14} {'torch in GUI':>13}")
    for label, got in runs.items():
        rest = got[1:] or got
        window = statistics.median(g["window"] for g in rest)
        cells = [f"{window:.2f}s ({got[0]['window']:.2f})", f"{imp:.2f}s ({imports[0]:.2f})",
                 f"{window / imp:.2f} ({got[0]['window'] / imports[0]:.2f})"]
        if args.until == "ready":
            ready = statistics.median(g["ready"] for g in rest)
            stall = max(g["stall"] for g in got)
            cells += [f"{ready:.2f}s ({got[0]['ready']:.2f})", f"{stall:.0f} ms (max)",
                      "yes" if any(g["torch_in_gui"] for g in got) else "no"]
        print(f"{label:<10} " + " ".join(f"{c:>14}" for c in cells))
    print("goals: window/import < 0.33; longest stall <= 100 ms; torch in GUI: no")
    return 0


if __name__ == "__main__":
    sys.exit(main())

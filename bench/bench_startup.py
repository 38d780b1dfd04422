"""Start-up time to the main window: launch each app, time until it reports its window painted on screen.

    xvfb-run -a -s "-screen 0 1600x1000x24" python bench/bench_startup.py \\
        --app bundle=dist/cnnbuilder/cnnbuilder --app pip=build/venv-linux/bin/cnnbuilder --runs 7

Each app runs with an empty environment (a fresh HOME, DISPLAY only) and CNNBUILDER_REPORT_SHOWN=quit,
which makes it print the wall-clock time of its first painted expose and quit (cnnbuilder/qt/app.py).
Apps alternate within each round. Round 1 is the first start after the build or boot as far as the page
cache allows; with --drop-caches (root, where /proc/sys/vm/drop_caches is writable) every run starts cold.
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


def drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def start_once(exe: str, home: Path, timeout: float) -> float:
    env = {"HOME": str(home), "LANG": "C.UTF-8", "CNNBUILDER_REPORT_SHOWN": "quit",
           **{k: os.environ[k] for k in ("DISPLAY", "XAUTHORITY", "WAYLAND_DISPLAY") if k in os.environ}}
    t0 = time.time()
    proc = subprocess.run([exe], env=env, capture_output=True, text=True, timeout=timeout, cwd=home)
    match = SHOWN.search(proc.stdout)
    if proc.returncode != 0 or match is None:
        raise SystemExit(f"{exe}: no window (exit {proc.returncode})\n{proc.stdout}\n{proc.stderr}")
    return float(match.group(1)) - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--app", action="append", required=True, metavar="LABEL=EXECUTABLE")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--drop-caches", action="store_true", help="drop the page cache before every run (root)")
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    if "DISPLAY" not in os.environ and "WAYLAND_DISPLAY" not in os.environ:
        raise SystemExit("no display: run under xvfb-run (see the docstring)")
    apps = [(label, os.path.abspath(exe)) for label, exe in (a.split("=", 1) for a in args.app)]
    for label, exe in apps:
        if not os.access(exe, os.X_OK):
            raise SystemExit(f"{label}: {exe} is not an executable")
    times: dict[str, list[float]] = {label: [] for label, _ in apps}
    cold = False
    with tempfile.TemporaryDirectory(prefix="cnnb-startup-") as tmp:
        for r in range(args.runs):
            order = apps if r % 2 == 0 else apps[::-1]
            for label, exe in order:
                if args.drop_caches:
                    cold = drop_caches()
                home = Path(tmp) / label
                home.mkdir(exist_ok=True)
                s = start_once(exe, home, args.timeout)
                times[label].append(s)
                print(f"round {r + 1} {label}: {s:.2f} s", flush=True)
    kind = "every run after dropping the page cache" if cold else "page cache as the machine had it"
    print(f"\nstart to main window painted ({kind}):")
    print(f"{'app':<10} {'first':>7} {'median of the rest':>19} {'min':>7}")
    for label, ts in times.items():
        rest = ts[1:] or ts
        print(f"{label:<10} {ts[0]:>6.2f}s {statistics.median(rest):>18.2f}s {min(ts):>6.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training from the GUI versus headless, and how responsive the GUI stays while it trains.

The TrainingPanel (offscreen Qt, shown) trains the tutorial MNIST CNN twice per round: once with
the Curves tab shown (live plots) and once with the Feature maps tab shown (conv1's maps streaming,
the curves still fed); the app computes feature maps only while their tab is shown. The headless
engine trains the same model on the same data with the same settings in a fresh process per round,
as `cnnbuilder train` would (--in-process: in this one). The three run in a rotated order each
round. Images/s are timed over the same steps of each run, after warm-up, and the GUI thread's CPU
time is taken (--profile prints where it goes). A fourth run per round, Curves tab shown, has a
10 ms heartbeat QTimer that records the longest gap between its ticks: the GUI thread's longest
stall.

Goals: GUI images/s >= 0.9x headless; longest stall < 100 ms.

    python bench/bench_gui_training.py [--rounds 9] [--steps 500] [--data DIR] [--device auto] [--profile]

Uses real MNIST when found ($CNNBUILDER_DATASETS, ../shared/datasets or --data), else the built-in
shapes dataset.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WARM = 20


def find_data(arg: str | None) -> Path | None:
    from cnnbuilder.core.training.data import find_mnist

    return find_mnist(arg, os.environ.get("CNNBUILDER_DATASETS"), ROOT.parent / "shared" / "datasets")


def headless_rate(settings: dict, steps: int, bs: int) -> float:
    """Images/s of the headless engine over steps WARM..steps."""
    from cnnbuilder.core.project import load_project
    from cnnbuilder.core.training.config import TrainConfig
    from cnnbuilder.core.training.engine import TrainControl, Trainer
    from cnnbuilder.core.training.events import BatchMetrics, Failed

    graph = load_project(ROOT / "resources" / "examples" / "mnist_cnn.json").graph
    control = TrainControl()
    t0 = s0 = None
    for ev in Trainer(graph, TrainConfig.from_dict(settings), control=control).run():
        if isinstance(ev, Failed):
            sys.exit(f"headless run failed: {ev.message}")
        if isinstance(ev, BatchMetrics):
            now = time.perf_counter()
            if t0 is None and ev.step >= WARM:
                t0, s0 = now, ev.step
            elif t0 is not None and ev.step >= steps:
                control.stop()  # the rate is known: skip the test pass
                return (ev.step - s0) * bs / (now - t0)
    sys.exit("headless run ended early")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=9)  # 5 rounds swung 0.86-0.96x here: too noisy
    ap.add_argument("--steps", type=int, default=500, help="steps per run (timed from step 20)")
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--data", help="folder with MNIST in torchvision layout")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--profile", action="store_true", help="print where the GUI thread spends its time")
    ap.add_argument("--in-process", action="store_true", help="run the headless engine in this process too")
    ap.add_argument("--child", help=argparse.SUPPRESS)  # internal: one headless run, prints images/s
    args = ap.parse_args()
    if args.child:
        print(headless_rate(json.loads(args.child), args.steps, args.batch_size))
        return 0
    import cProfile
    import pstats

    profiler = cProfile.Profile() if args.profile else None

    from PySide6.QtCore import QEventLoop, QObject, QTimer, Slot
    from PySide6.QtWidgets import QApplication

    from cnnbuilder.core.project import load_project
    from cnnbuilder.core.training.events import BatchMetrics, Started
    from cnnbuilder.qt.document import Document
    from cnnbuilder.qt.training import TrainingPanel

    app = QApplication.instance() or QApplication(sys.argv)  # noqa: F841 - must outlive the widgets
    root = find_data(args.data)
    steps = args.steps
    bs = args.batch_size
    settings = {"epochs": 1, "batch_size": bs, "optimizer": "adam", "lr": 0.01, "val_split": 0.0, "seed": 0,
                "device": args.device, "train_limit": (steps + 20) * bs}
    if root is not None:
        settings.update(dataset="mnist", data_root=str(root))
        data_name = f"MNIST ({root})"
    else:
        settings.update(dataset="shapes", shapes_train=(steps + 20) * bs)
        data_name = "built-in shapes (MNIST not found)"
    project = load_project(ROOT / "resources" / "examples" / "mnist_cnn.json")
    project.training = dict(settings)

    # -- headless -----------------------------------------------------------------------------
    def headless() -> float:
        if args.in_process:
            return headless_rate(settings, steps, bs)
        # A fresh process, as `cnnbuilder train` runs: torch's thread pools and allocator state
        # are the engine's alone (run in this process, they drag on the GUI runs after them).
        out = subprocess.run([sys.executable, __file__, "--child", json.dumps(settings), "--steps", str(steps),
                              "--batch-size", str(bs)], capture_output=True, text=True, check=False)
        if out.returncode:
            sys.exit(f"headless run failed: {out.stderr.strip()[-2000:]}")
        return float(out.stdout.split()[-1])

    # -- GUI -----------------------------------------------------------------------------------
    panel = TrainingPanel(Document(project))
    panel.resize(1400, 800)
    panel.show()
    panel.document.set_selection(["n2"])  # conv1's 16 maps stream while their tab is shown

    class Probe(QObject):
        """Lives in the GUI thread, so the worker's events reach it queued, like the panel's."""

        def __init__(self):
            super().__init__()
            self.reset()

        def reset(self):
            self.t0 = self.s0 = None
            self.rate = None
            self.device = "?"

        @Slot(object)
        def on_event(self, ev):
            if isinstance(ev, Started):
                self.device = ev.device_name
            if isinstance(ev, BatchMetrics):
                now = time.perf_counter()
                if self.t0 is None and ev.step >= WARM:
                    self.t0, self.s0 = now, ev.step
                elif self.t0 is not None and self.rate is None and ev.step >= steps:
                    self.rate = (ev.step - self.s0) * bs / (now - self.t0)
                    panel._stop()

    probe = Probe()
    panel.worker.event.connect(probe.on_event)

    beat = {"last": 0.0, "max": 0.0, "on": False}

    def tick():
        now = time.perf_counter()
        if beat["on"] and beat["last"]:
            beat["max"] = max(beat["max"], now - beat["last"])
        beat["last"] = now

    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(tick)

    def gui(tab, with_heartbeat: bool = False) -> tuple[float, float, int, float]:
        panel.tabs.setCurrentWidget(tab)
        probe.reset()
        frames0 = panel.features.frames
        loop = QEventLoop()
        panel.running_changed.connect(lambda running: None if running else loop.quit())
        beat.update(last=0.0, max=0.0, on=with_heartbeat)
        if with_heartbeat:
            heartbeat.start()
        if not panel.start():
            sys.exit(f"the panel refused to start: {panel.error_label.text()}")
        if profiler:
            profiler.enable()  # cProfile sees only this (the GUI) thread
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        loop.exec()
        busy = (time.thread_time() - cpu0) / (time.perf_counter() - wall0)  # the GUI thread's share of a core
        if profiler:
            profiler.disable()
        beat["on"] = False
        heartbeat.stop()
        if probe.rate is None:
            sys.exit(f"GUI run ended early: {panel.error_label.text() or panel.status.text()}")
        return probe.rate, beat["max"] * 1000, panel.features.frames - frames0, busy

    print(f"data: {data_name}; model: tutorial MNIST CNN; batch {bs}; Adam lr 0.01; device {args.device}; "
          f"{steps} steps per run, timed from step {WARM}; {args.rounds} rounds, order rotated")
    stalls = []
    gui(panel.plots)  # warm-up: loads the data into the worker's cache, imports everything
    tabs = {"curves": panel.plots, "feature maps": panel.features}
    rates: dict[str, list[float]] = {"headless": [], **{name: [] for name in tabs}}
    busy: dict[str, list[float]] = {name: [] for name in tabs}
    for r in range(args.rounds):
        # Each round runs all three in a rotated order, so a drift in machine speed cancels out.
        order = ["headless", *tabs]
        order = order[r % 3:] + order[:r % 3]
        line = []
        for name in order:
            if name == "headless":
                rates[name].append(headless())
                line.append(f"headless {rates[name][-1]:7,.0f}")
            else:
                rate, _, frames, b = gui(tabs[name])
                rates[name].append(rate)
                busy[name].append(b)
                line.append(f"GUI/{name} {rate:7,.0f} (GUI thread {b:3.0%}, {frames} map frames)")
        # The heartbeat wakes the GUI thread 100 times a second, which itself costs the training
        # thread a few per cent on two cores: the stall is measured in a run of its own.
        _, stall, _, _ = gui(panel.plots, with_heartbeat=True)
        stalls.append(stall)
        ratio = "  ".join(f"{name} {rates[name][-1] / rates['headless'][-1]:.2f}x" for name in tabs)
        print(f"round {r + 1} img/s: {'   '.join(line)}   ratios: {ratio}   stall {stall:4.1f} ms", flush=True)
    panel.shutdown()
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    print(f"device: {probe.device}; plot refresh settled at {1000 / panel.plots.timer.interval():.1f} Hz "
          f"(paints take {panel.plots.view.paint_ms:.1f} ms)")
    hm = statistics.median(rates["headless"])
    print(f"median headless: {hm:,.0f} img/s")
    for name in tabs:
        ratios = [g / h for g, h in zip(rates[name], rates["headless"], strict=True)]
        gm = statistics.median(rates[name])
        print(f"GUI with the {name} tab shown: {gm:,.0f} img/s; median of per-round ratios "
              f"{statistics.median(ratios):.2f}x, ratio of medians {gm / hm:.2f}x (goal >= 0.9x); GUI thread busy "
              f"{statistics.median(busy[name]):.0%} of one core")
    print(f"longest GUI-thread stall over all rounds: {max(stalls):.1f} ms (median per round "
          f"{statistics.median(stalls):.1f} ms; goal < 100 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

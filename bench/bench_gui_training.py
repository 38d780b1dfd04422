"""Training from the GUI versus headless, and how responsive the GUI stays while it trains.

The TrainingPanel (offscreen Qt, shown, curves tab visible, feature maps of conv1 streaming) trains
the tutorial MNIST CNN; then the headless engine trains the same model on the same data with the
same settings, in the same process. Rounds alternate the two. Images/s are timed over the same
steps of each run, after warm-up. Throughout the GUI run a 10 ms heartbeat QTimer records the
longest gap between its ticks: the GUI thread's longest stall.

Goals: GUI images/s >= 0.9x headless; longest stall < 100 ms.

    python bench/bench_gui_training.py [--rounds 9] [--steps 300] [--data DIR] [--device auto]

Uses real MNIST when found ($CNNBUILDER_DATASETS, ../shared/datasets or --data), else the built-in
shapes dataset.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WARM = 20


def find_data(arg: str | None) -> Path | None:
    for cand in (arg, os.environ.get("CNNBUILDER_DATASETS"), ROOT.parent / "shared" / "datasets"):
        if cand and (Path(cand) / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
            return Path(cand)
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=9)  # 5 rounds swung 0.86-0.96x here: too noisy
    ap.add_argument("--steps", type=int, default=300, help="steps per run (timed from step 20)")
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--data", help="folder with MNIST in torchvision layout")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    from PySide6.QtCore import QEventLoop, QObject, QTimer, Slot
    from PySide6.QtWidgets import QApplication

    from cnnbuilder.core.project import load_project
    from cnnbuilder.core.training.config import TrainConfig
    from cnnbuilder.core.training.engine import TrainControl, Trainer
    from cnnbuilder.core.training.events import BatchMetrics, Failed, Started
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
    graph = project.graph

    # -- headless -----------------------------------------------------------------------------
    def headless() -> float:
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

    # -- GUI -----------------------------------------------------------------------------------
    panel = TrainingPanel(Document(project))
    panel.resize(1400, 800)
    panel.show()
    panel.tabs.setCurrentWidget(panel.plots)
    panel.document.set_selection(["n2"])  # conv1's 16 maps stream while training

    class Probe(QObject):
        """Lives in the GUI thread, so the worker's events reach it queued, like the panel's."""

        def __init__(self):
            super().__init__()
            self.reset()

        def reset(self):
            self.t0 = self.s0 = None
            self.rate = None
            self.device = "?"
            self.frames = 0

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
    heartbeat.start()

    def gui() -> tuple[float, float, int]:
        probe.reset()
        frames0 = panel.features.frames
        loop = QEventLoop()
        panel.running_changed.connect(lambda running: None if running else loop.quit())
        beat.update(last=0.0, max=0.0, on=True)
        if not panel.start():
            sys.exit(f"the panel refused to start: {panel.error_label.text()}")
        loop.exec()
        beat["on"] = False
        if probe.rate is None:
            sys.exit(f"GUI run ended early: {panel.error_label.text() or panel.status.text()}")
        return probe.rate, beat["max"] * 1000, panel.features.frames - frames0

    print(f"data: {data_name}; model: tutorial MNIST CNN; batch {bs}; Adam lr 0.01; device {args.device}; "
          f"{steps} steps per run, timed from step {WARM}; {args.rounds} rounds, alternating")
    gui_rates, head_rates, stalls = [], [], []
    gui()  # warm-up: loads the data into the worker's cache, imports everything
    for r in range(args.rounds):
        g, stall, frames = gui()
        h = headless()
        gui_rates.append(g)
        head_rates.append(h)
        stalls.append(stall)
        print(f"round {r + 1}: GUI {g:8,.0f} img/s (longest GUI-thread stall {stall:5.1f} ms, {frames} feature-map "
              f"frames)   headless {h:8,.0f} img/s   ratio {g / h:.2f}x", flush=True)
    panel.shutdown()
    gm, hm = statistics.median(gui_rates), statistics.median(head_rates)
    ratios = [g / h for g, h in zip(gui_rates, head_rates, strict=True)]
    print(f"device: {probe.device}; plot refresh settled at {1000 / panel.plots.timer.interval():.1f} Hz "
          f"(paints take {panel.plots.view.paint_ms:.1f} ms)")
    print(f"median: GUI {gm:,.0f} img/s, headless {hm:,.0f} img/s, ratio of medians {gm / hm:.2f}x, median of "
          f"per-round ratios {statistics.median(ratios):.2f}x (goal >= 0.9x)")
    print(f"longest GUI-thread stall over all rounds: {max(stalls):.1f} ms (median per round "
          f"{statistics.median(stalls):.1f} ms; goal < 100 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

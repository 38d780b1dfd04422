"""Run logs other tools read: a CSV of the epoch metrics (always) and TensorBoard event files (on request).

Each run writes into its own folder `<log dir>/<run name>/`: `metrics.csv` with one row per epoch,
and, with TensorBoard on, the `events.out.tfevents.*` files that `tensorboard --logdir <log dir>`
shows side by side with other runs. The writer is torch.utils.tensorboard's, which needs the
`tensorboard` package (`pip install cnnbuilder[tensorboard]`).
"""

from __future__ import annotations

import csv
import math
import os
import re
import time
from pathlib import Path

CSV_NAME = "metrics.csv"
CSV_COLUMNS = ("epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")
INSTALL_TENSORBOARD = "pip install 'cnnbuilder[tensorboard]'"


class RunLogError(Exception):
    """The run folder cannot be written, or TensorBoard logging is asked for but not installed."""


def tensorboard_missing(load: bool = True) -> str | None:
    """None when TensorBoard event files can be written, else the message to show.

    `load=False` only looks for the package without importing it (nor torch): the GUI's quick
    check before a run; the run itself checks again with everything loaded."""
    if not load:
        import importlib.util

        try:
            found = importlib.util.find_spec("tensorboard") is not None
        except (ImportError, ValueError):
            found = False
        return None if found else f"TensorBoard logging needs the tensorboard package: {INSTALL_TENSORBOARD}"
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        return f"TensorBoard logging needs the tensorboard package: {INSTALL_TENSORBOARD}"
    return None


def default_log_dir(project_path: str | os.PathLike | None) -> Path:
    """$CNNBUILDER_RUNS if set, else `runs` next to the project file, else the per-user data folder."""
    env = os.environ.get("CNNBUILDER_RUNS")
    if env:
        return Path(env)
    if project_path:
        return Path(project_path).resolve().parent / "runs"
    from platformdirs import user_data_dir

    return Path(user_data_dir("cnnbuilder", appauthor=False)) / "runs"


def run_name(project_name: str, when: float | None = None) -> str:
    """`<project>-YYYYmmdd-HHMMSS`: sorts by time, and says which model it was."""
    stem = re.sub(r"[^\w\-]+", "_", project_name or "").strip("_")[:60] or "run"
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(when))}"


def new_run_dir(log_dir: str | os.PathLike, name: str) -> Path:
    """A fresh folder `<log_dir>/<name>` (`-2`, `-3`, … when a run of that name exists)."""
    base = Path(log_dir)
    for k in range(1, 1000):
        path = base / (name if k == 1 else f"{name}-{k}")
        try:
            path.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            continue
        except OSError as exc:
            raise RunLogError(f"cannot create the run folder {path}: {exc.strerror or exc}") from None
        return path
    raise RunLogError(f"{base}: too many runs named {name}")


def _num(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else repr(float(v))


class RunLog:
    """Writes one run's metrics as they arrive; every write is flushed, so a killed run keeps its rows."""

    def __init__(self, run_dir: str | os.PathLike, tensorboard: bool = False):
        self.dir = Path(run_dir)
        self.csv_path = self.dir / CSV_NAME
        self._writer = None
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._csv_file = open(self.csv_path, "w", newline="", encoding="utf-8")  # closed in close()
        except OSError as exc:
            raise RunLogError(f"cannot write the run log {self.csv_path}: {exc.strerror or exc}") from None
        self._csv = csv.writer(self._csv_file)
        self._csv.writerow(CSV_COLUMNS)
        self._csv_file.flush()
        if tensorboard:
            missing = tensorboard_missing()
            if missing:
                self.close()
                raise RunLogError(missing)
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.dir), flush_secs=10)

    def history(self, h: dict[str, list[float]]) -> None:
        """The epochs a resumed run had already trained (their seconds are unknown)."""
        for i, epoch in enumerate(h.get("epoch", [])):
            val_loss, val_acc = h["val_loss"][i], h["val_acc"][i]
            self.epoch(int(epoch), int(h["epoch_step"][i]), h["train_loss"][i], h["train_acc"][i],
                       None if math.isnan(val_loss) else val_loss, None if math.isnan(val_acc) else val_acc,
                       h["epoch_lr"][i], None)

    def epoch(self, epoch: int, step: int, train_loss: float, train_acc: float, val_loss: float | None,
              val_acc: float | None, lr: float, seconds: float | None) -> None:
        self._csv.writerow([epoch, step, _num(train_loss), _num(train_acc), _num(val_loss), _num(val_acc), _num(lr),
                            _num(seconds)])
        self._csv_file.flush()
        w = self._writer
        if w is not None:
            for tag, value in (("train_loss", train_loss), ("train_acc", train_acc), ("val_loss", val_loss),
                               ("val_acc", val_acc), ("lr", lr)):
                if value is not None:
                    w.add_scalar(f"epoch/{tag}", value, epoch)
            w.flush()

    def steps(self, steps, losses, step: int, lr: float) -> None:
        """The raw per-step training loss, and the learning rate at `step` (TensorBoard only)."""
        w = self._writer
        if w is None:
            return
        for s, v in zip(steps.tolist(), losses.tolist(), strict=True):
            w.add_scalar("step/loss", v, s)
        w.add_scalar("step/lr", lr, step)

    def test(self, step: int, loss: float, acc: float) -> None:
        if self._writer is not None:
            self._writer.add_scalar("test/loss", loss, step)
            self._writer.add_scalar("test/acc", acc, step)
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if not self._csv_file.closed:
            self._csv_file.close()

"""The GUI's handle on the training process: the same signals a worker thread had, fed by a child
process that owns PyTorch (core/training/service.py), so this process never imports torch.

Everything that goes out is plain data (the graph as a dict, the settings as a dict, paths) and
everything that comes back is the engine's plain event dataclasses, read on a background thread
that only unpickles and hands them to the GUI thread as queued signals. Stop, pause and the
feature-map block go through the run's `RemoteControl`, which the service applies between two
batches. The child starts once the window is on screen (or at the first Train, if sooner) and
loads torch while the user edits (`state` "loading", then "ready"); if it dies (killed, out of
memory, a crash in a native library) the run in flight ends with a message, `process_ended` says
why, and the next request starts a new one.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication

from ...core.training import service
from ...core.training.events import TERMINAL, Failed
from ...core.training.service import FeatureRequest, RemoteControl, ServiceProcess, TrainJob, unanswered_features

__all__ = ["FeatureRequest", "RemoteControl", "TrainJob", "TrainingWorker"]

HARMLESS = frozenset({"detect_devices", "forget"})  # requests a child may still owe when it is handed on


class TrainingWorker(QObject):
    event = Signal(object)  # a core training Event
    devices_found = Signal(list)  # [(setting, label), ...]; setting None: a note, not a choice
    action_done = Signal(str, bool)  # a save/export result for the user: (message, ok)
    run_saved = Signal(object, str)  # (RunRecord, runs folder) once an ended run is on disk
    state_changed = Signal(str, str)  # (loading | ready | failed | down, message when failed)
    process_ended = Signal(str, bool)  # (what happened, whether a run was lost) when the child died
    notice = Signal(str)  # something the user may want to know (a damaged message was skipped, ...)

    _message = Signal(object, object)  # (ServiceProcess, message), from the reader thread

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._proc: ServiceProcess | None = None
        self._closed = False
        self.state = "down"  # no child yet (or it died): the next request starts one
        self.trained_code: str | None = None  # code of the model the child keeps (feature maps, saving, ONNX)
        self._callbacks: dict[int, Callable[[bool, Any], None]] = {}
        self._tags = itertools.count(1)
        self._open_runs: set[int] = set()
        self._deferring = False  # start(defer=True) until the child is spawned
        self._queued: list[tuple[str, tuple]] = []  # requests made meanwhile, sent once it is
        self._message.connect(self._on_message, Qt.QueuedConnection)

    # -- the child ----------------------------------------------------------------------------------
    def start(self, defer: bool = False) -> None:
        """Have a child loading torch. `defer`: spawn it from the event loop (the window first)."""
        if self._proc is not None or self._closed:
            return
        spare = service.take_spare()
        if spare is not None:
            self._adopt(spare)
            self.forget()  # whatever it kept belonged to its previous owner
            return
        if defer:
            self._deferring = True
            self._set_state("loading")
            QTimer.singleShot(0, self._spawn_when_shown)
        else:
            self._ensure()

    def _spawn_when_shown(self, tries: int = 0) -> None:
        # Once a window is on screen: on a busy machine the child's start competes with the first paint.
        if self._proc is not None or self._closed:
            return
        windows = [w for w in QGuiApplication.topLevelWindows() if w.isVisible()]
        if windows and not any(w.isExposed() for w in windows) and tries < 50:
            QTimer.singleShot(20, lambda: self._spawn_when_shown(tries + 1))
        else:
            self._ensure()

    def _ensure(self) -> ServiceProcess | None:
        if self._proc is None and not self._closed:
            self._deferring = False
            self._adopt(ServiceProcess())
            queued, self._queued = self._queued, []
            for kind, args in queued:
                self._proc.request(kind, *args)
        return self._proc

    def _adopt(self, proc: ServiceProcess) -> None:
        self._proc = proc
        proc.handler = lambda msg, proc=proc: self._message.emit(proc, msg)
        if proc.ready is None:
            self._set_state("loading")
        else:
            self._set_state("ready" if proc.ready else "failed", proc.ready_message)

    def _set_state(self, state: str, message: str = "") -> None:
        self.state = state
        self.state_changed.emit(state, message)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def load_seconds(self) -> float | None:
        return self._proc.info.get("seconds") if self._proc is not None else None

    def is_finished(self) -> bool:
        """Shut down, and no child works for this panel any more."""
        return self._closed and self._proc is None

    def has_model_for(self, graph) -> bool:
        """Whether the model the child keeps is the one `graph` builds (its trained weights apply)."""
        from ...core.codegen import CodegenError, generate

        if self.trained_code is None:
            return False
        try:
            return generate(graph).code == self.trained_code
        except CodegenError:
            return False

    # -- requests (same names as the slots of the old worker thread) --------------------------------
    def _request(self, kind: str, *args, urgent: bool = False) -> bool:
        """Send a request, starting a child if there is none; while start(defer=True) waits for the
        window, requests that are not `urgent` (what the user just asked for) wait with it."""
        if self._deferring and not urgent and not self._closed:
            self._queued.append((kind, args))
            return True
        proc = self._ensure()
        if proc is None:
            return False
        proc.request(kind, *args)
        return True

    def train(self, job: TrainJob) -> None:
        proc = self._ensure()
        if proc is None:
            return
        control = job.control
        state = control.attach(job.run_id, proc.send) if isinstance(control, RemoteControl) else {}
        self._open_runs.add(job.run_id)
        proc.request("train", dataclasses.replace(job, control=None), state)

    def detect_devices(self) -> None:
        self._request("detect_devices")

    def forget(self) -> None:
        """Drop the last run's model: it belongs to a project that is no longer open."""
        self.trained_code = None
        self._request("forget")

    def feature_maps(self, req: FeatureRequest) -> None:
        self._request("feature_maps", req)

    def look(self, req) -> None:
        """A Look inside request (core/inspect/look.py) between runs; during one it goes through the
        run's control instead, answered with the live weights."""
        self._request("look", req, urgent=True)

    def test_images(self, req) -> None:
        """Test images for the mistakes gallery (core.training.inspect_run.ImagesRequest)."""
        self._request("test_images", req, urgent=True)

    def augment_preview(self, req) -> None:
        """Training images after the chosen augmentation (core.training.inspect_run.PreviewRequest)."""
        self._request("augment_preview", req)

    def save_checkpoint(self, path: str) -> None:
        self._request("save_checkpoint", path)

    def export_run(self, runs_dir: str, record, directory: str) -> None:
        self._request("export_run", runs_dir, record, directory)

    def export_onnx(self, graph: dict, path: str, weights: str | None, trained: bool, title: str,
                    done: Callable[[bool, str], None]) -> None:
        """ONNX export in the child; `done(ok, message)` is called on the GUI thread."""
        tag = self._tag(done)
        if not self._request("export_onnx", tag, graph, path, weights, trained, title, urgent=True):
            self._callbacks.pop(tag)(False, "the training process has been shut down")

    def call(self, target: str, *args, done: Callable[[bool, Any], None] | None = None) -> None:
        """Run `module:function(*args)` in the child (tools and tests); `done(ok, result)` follows."""
        tag = self._tag(done or (lambda ok, value: None))
        if not self._request("call", tag, target, args, urgent=True):
            self._callbacks.pop(tag)(False, "the training process has been shut down")

    def _tag(self, done: Callable[[bool, Any], None]) -> int:
        tag = next(self._tags)
        self._callbacks[tag] = done
        return tag

    # -- shutting down --------------------------------------------------------------------------------
    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """End the child (it finishes its current request: a stopped run is still recorded), or
        terminate it after `timeout_ms`. Returns whether it finished its work in time."""
        self._closed = True
        self._queued.clear()
        proc, self._proc = self._proc, None
        if proc is None:
            return True
        proc.handler = None
        timeout_s = max(0, timeout_ms) / 1000
        if service.KEEP_SPARE and proc.alive and (set(proc.pending_kinds()) <= HARMLESS or proc.wait_idle(timeout_s)) \
                and service.park(proc):
            return True
        return proc.stop(timeout_s)

    # -- messages (GUI thread) --------------------------------------------------------------------------
    def _on_message(self, proc: ServiceProcess, msg: tuple) -> None:
        if proc is not self._proc:
            return  # from a child this panel no longer talks to
        kind = msg[0]
        if kind == "event":
            ev = msg[1]
            if isinstance(ev, TERMINAL):
                self._open_runs.discard(ev.run_id)
            self.event.emit(ev)
        elif kind == "devices":
            self.devices_found.emit(msg[1])
        elif kind == "action":
            self.action_done.emit(msg[1], msg[2])
        elif kind == "run_saved":
            self.run_saved.emit(msg[1], msg[2])
        elif kind == "model":
            self.trained_code = msg[1]
        elif kind == "reply":
            done = self._callbacks.pop(msg[1], None)
            if done is not None:
                done(msg[2], msg[3])
        elif kind == "ready":
            self._set_state("ready" if msg[1] else "failed", msg[2])
        elif kind == "notice":
            self.notice.emit(msg[1])
        elif kind == "damaged":
            self.notice.emit(f"skipped a damaged message from the training process ({msg[1]})")
        elif kind == "exit":
            self._on_exit(msg[1], msg[2])

    def _on_exit(self, description: str, lost: list) -> None:
        self._proc = None
        self.trained_code = None
        lost_run = False
        text = f"The training process {description}"
        for _seq, kind, args in lost:
            if kind == "train":
                job = args[0]
                if job.run_id in self._open_runs:
                    lost_run = True
                    self._open_runs.discard(job.run_id)
                    self.event.emit(Failed(job.run_id, f"{text}: the run was lost. Train starts a new process.",
                                           "crash"))
            elif kind == "feature_maps":
                self.event.emit(unanswered_features(args[0], f"{text}: pick the block again"))
            elif kind in ("save_checkpoint", "export_run"):
                self.action_done.emit(f"{text} before it could write the files: train again to save", False)
            elif kind in ("export_onnx", "call"):
                done = self._callbacks.pop(args[0], None)
                if done is not None:
                    done(False, f"{text}; nothing was written")
        for run_id in list(self._open_runs):  # runs whose request was answered but whose end never came
            self._open_runs.discard(run_id)
            lost_run = True
            self.event.emit(Failed(run_id, f"{text}: the run was lost. Train starts a new process.", "crash"))
        self._set_state("down")
        self.process_ended.emit(f"{text}. The next Train starts a new one.", lost_run)

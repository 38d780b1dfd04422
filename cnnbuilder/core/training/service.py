"""The training service: a child process that owns PyTorch, so the editor's process never imports it.

Importing torch and torchvision takes seconds, and even in a background thread its extension
modules hold the GIL long enough to freeze a window for over a second. So the GUI starts this
service with multiprocessing's "spawn" method (a fresh interpreter; in the PyInstaller bundle the
launcher's `multiprocessing.freeze_support()` turns the re-run executable into it) and talks to it
over two one-way pipes with small pickled tuples:

    GUI -> service   ("request", seq, kind, args, env)   one job for the main loop, in order
                     ("control", run_id, op, arg)        stop/pause/resume/checkpoint/feature block,
                                                         applied at once by the reader thread
                     ("quit",)
    service -> GUI   ("ready", ok, message, info)        torch is loaded (or why it cannot be)
                     ("event", Event)                    the engine's plain events (core/training/events.py)
                     ("devices", [(setting, label)])     ("action", message, ok)
                     ("run_saved", RunRecord, folder)    ("model", code or None): the model kept for
                     ("reply", tag, ok, value)           feature maps / saving / ONNX changed
                     ("notice", message)                 ("done", seq): a request has been answered

The service's main thread imports torch first and then serves requests one at a time; a reader
thread takes requests off the pipe while a run is busy, so Stop and Pause act between two batches.
Nothing but the main thread imports torch (no import races; the GUI thread once deadlocked inside
torch._C._get_operation_overload when a worker thread made the first torch import).
When the GUI process goes away, the pipe ends and so does the service: no orphans.

`ServiceProcess` is the GUI's end (no Qt here: callbacks; the Qt proxy is qt/training/worker.py).
The GUI unpickles only with `SafeUnpickler`: numpy arrays, cnnbuilder's own dataclasses and plain
Python values; anything else, or a damaged message, is reported and skipped.
"""

from __future__ import annotations

import atexit
import dataclasses
import io
import multiprocessing
import multiprocessing.util  # before our exit hook is registered: ours must run before its join of children
import os
import pickle
import pickletools
import queue
import signal
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import runs  # what requests and answers carry (RunRecord): imported before any reader thread runs
from .engine import TrainControl
from .events import TERMINAL, Event, Failed, FeatureMaps, first_line

ENV_PREFIX = "CNNBUILDER_"  # the GUI's settings the service must see as the GUI does at each request
PROTOCOL = 4  # pickle protocol of the service's messages (5's buffer opcodes are refused: see decode)
QUIT_GRACE_S = 30.0  # after the GUI has gone, how long a busy main loop may take to notice before exiting anyway


# -- requests -------------------------------------------------------------------------------------------
@dataclass
class TrainJob:
    run_id: int
    graph: dict[str, Any]  # graph_to_dict snapshot
    config: dict[str, Any]
    control: TrainControl = field(default_factory=TrainControl)
    resume: str | None = None
    log_dir: str | None = None  # the run writes <log_dir>/<log_name>/metrics.csv (and TensorBoard files)
    log_name: str = "run"
    # Where and as what the ended run is recorded (core/runs.py); no folder: not recorded.
    runs_dir: str | None = None
    run_key: str = ""
    run_name: str = ""
    project: str = ""
    project_file: str | None = None  # a relative init_weights setting is relative to its folder


@dataclass
class FeatureRequest:
    tag: int  # echoed back as the event's run_id so the panel can drop stale answers
    graph: dict[str, Any]
    config: dict[str, Any]
    node_id: str
    weights: tuple[str, str] | None = None  # (runs folder, run id) whose weights to use, when they fit
    run_name: str = ""


class RemoteControl(TrainControl):
    """A TrainControl for a run in the service: it keeps its own state (so the GUI can read
    `feature_node`, `stopped`, `paused`) and forwards every switch once the job has been sent."""

    def __init__(self) -> None:
        super().__init__()
        self._send: Callable[[tuple], None] | None = None
        self._run_id: int | None = None
        self._early_checkpoints: list[str] = []

    def attach(self, run_id: int, send: Callable[[tuple], None]) -> dict[str, Any]:
        """Called as the job goes out: the state so far travels with it, later changes as messages."""
        self._run_id, self._send = run_id, send
        state = {"stop": self.stopped, "pause": self.paused, "feature_node": self.feature_node,
                 "checkpoints": list(self._early_checkpoints)}
        self._early_checkpoints.clear()
        return state

    def _forward(self, op: str, arg: Any = None) -> None:
        if self._send is not None:
            self._send(("control", self._run_id, op, arg))

    def stop(self) -> None:
        super().stop()
        self._forward("stop")

    def pause(self) -> None:
        super().pause()
        self._forward("pause")

    def resume(self) -> None:
        super().resume()
        self._forward("resume")

    def request_checkpoint(self, path) -> None:  # written in the service, not queued here
        if self._send is None:
            self._early_checkpoints.append(str(path))
        self._forward("checkpoint", str(path))

    def set_feature_node(self, node_id: str | None, now: bool = True) -> None:
        self._feature_node = node_id  # no local event: nothing here waits on it
        self._forward("feature", (node_id, now))

    def request_look(self, request) -> None:
        self._forward("look", request)  # answered by the run between two batches


def _apply_control(control: TrainControl, op: str, arg: Any) -> None:
    if op == "stop":
        control.stop()
    elif op == "pause":
        control.pause()
    elif op == "resume":
        control.resume()
    elif op == "checkpoint" and isinstance(arg, str):
        control.request_checkpoint(arg)
    elif op == "feature" and isinstance(arg, tuple) and len(arg) == 2:
        control.set_feature_node(arg[0], bool(arg[1]))
    elif op == "look" and type(arg).__name__ == "LookRequest":
        control.request_look(arg)
    else:
        raise ValueError(f"unknown control {op!r}")


# -- the service (child process) -----------------------------------------------------------------------
class Service:
    """What the child process does with each request. `send(message)` goes to the GUI."""

    def __init__(self, send: Callable[[tuple], None], unavailable: str = ""):
        self.send = send
        self.unavailable = unavailable  # why torch could not be loaded: what every torch request answers
        self.trainer = None  # the last run's Trainer: its model serves feature maps, saving, exporting
        self._bundle = None  # the last loaded data, reused when the next run wants the same images

    def handle(self, kind: str, args: tuple) -> None:
        handler = getattr(self, "do_" + kind, None)
        if handler is None:
            raise ValueError(f"unknown request {kind!r}")
        if self.unavailable and kind not in ("call", "forget"):
            self.refuse(kind, args, self.unavailable)
            return
        handler(*args)

    def refuse(self, kind: str, args: tuple, message: str) -> None:
        """Answer a request that cannot be served, the way its answer is awaited."""
        if kind == "train":
            self._event(Failed(args[0].run_id, message, "error"))
        elif kind == "feature_maps":
            self._event(unanswered_features(args[0], message))
        elif kind in ("test_images", "augment_preview"):
            from .events import AugmentPreview, TestImages

            empty = np.zeros((0, 1, 1, 1), np.uint8)
            self._event(TestImages(args[0].tag, np.zeros(0, np.int64), empty, message) if kind == "test_images"
                        else AugmentPreview(args[0].tag, empty, message))
        elif kind == "look":
            from ..inspect.look import LookResult

            self._event(LookResult(args[0].tag, args[0].kind, message=message))
        elif kind in ("save_checkpoint", "export_run"):
            self._action(message, False)
        elif kind == "export_onnx":
            self.send(("reply", args[0], False, message))
        elif kind == "detect_devices":
            self.send(("devices", [("cpu", "CPU")]))

    def _event(self, ev: Event) -> None:
        self.send(("event", ev))

    def _action(self, message: str, ok: bool) -> None:
        self.send(("action", message, ok))

    def _keep(self, trainer) -> None:
        self.trainer = trainer
        self.send(("model", None if trainer is None else trainer.code))

    def do_train(self, job: TrainJob) -> None:
        from ..project import graph_from_dict
        from .config import TrainConfig
        from .engine import Trainer
        from .events import Cancelled, Finished

        try:
            graph = graph_from_dict(job.graph)
            cfg = TrainConfig.from_dict(job.config)
            trainer = Trainer(graph, cfg, control=job.control, run_id=job.run_id, resume=job.resume,
                              bundle=self._bundle, log_dir=job.log_dir, run_name=job.log_name,
                              project_file=job.project_file)
        except Exception as exc:  # noqa: BLE001 - a bad snapshot must not end the service
            self._event(Failed(job.run_id, f"cannot start training: {exc}", "error", traceback.format_exc()))
            return
        t0 = time.perf_counter()
        ended = False
        try:
            for ev in trainer.run():
                if isinstance(ev, (Finished, Cancelled)) and job.runs_dir and trainer.model is not None:
                    # Recorded before the panel hears the run ended: its run list is complete by then.
                    self._record(job, trainer, "finished" if isinstance(ev, Finished) else "stopped",
                                 time.perf_counter() - t0)
                if isinstance(ev, TERMINAL):  # the kept model is known before the panel hears the end
                    ended = True
                    self._end(trainer)
                self._event(ev)
        except Exception as exc:  # noqa: BLE001 - the engine reports its own failures; this is a bug
            if not ended:
                ended = True
                self._event(Failed(job.run_id, f"training stopped by an internal error: {type(exc).__name__}: "
                                               f"{first_line(exc)[:300]}", "error", traceback.format_exc()))
        if not ended:
            self._end(trainer)

    def _end(self, trainer) -> None:
        if trainer.model is not None and trainer is not self.trainer:  # one that failed early keeps the last
            self._keep(trainer)
        if trainer.bundle is not None:
            self._bundle = trainer.bundle

    def _record(self, job: TrainJob, trainer, status: str, seconds: float) -> None:
        try:
            record = runs.record_from_trainer(trainer, run_id=job.run_key, name=job.run_name, project=job.project,
                                              created=runs.now_iso(), seconds=seconds, status=status)
            runs.RunStore(job.runs_dir).write(record, runs.weights_bytes(trainer.model))
        except Exception as exc:  # noqa: BLE001 - a full disk must not end the service
            self._action(f"could not record the run: {exc}", False)
            return
        self.send(("run_saved", record, job.runs_dir))

    def do_forget(self) -> None:
        """Drop the last run's model: it belongs to a project that is no longer open."""
        if self.trainer is not None:
            self._keep(None)

    def do_detect_devices(self) -> None:
        try:
            from .devices import available_devices, device_notes

            # A note (setting None) says why a GPU the machine has is not in the list.
            found = available_devices() + [(None, note) for note in device_notes()]
        except Exception:  # noqa: BLE001 - a broken driver still leaves the CPU
            found = [("auto", "Auto (CPU)"), ("cpu", "CPU")]
        self.send(("devices", found))

    def do_feature_maps(self, req: FeatureRequest) -> None:
        """The block's output for the probe image, with the last run's weights when the model is
        still the one that was trained, else with freshly initialised weights (and says so)."""
        from ..project import graph_from_dict
        from .config import TrainConfig
        from .data import data_for
        from .engine import feature_maps_for

        try:
            graph = graph_from_dict(req.graph)
            cfg = TrainConfig.from_dict(req.config)
            model = None
            note = "untrained weights: train to see what the blocks learn"
            same = self._trained(graph)
            if req.weights is not None:
                store = runs.RunStore(req.weights[0])
                record = runs.read_run(store.run_dir(req.weights[1]))
                if not runs.model_changed(record, graph):
                    model = runs.build_model(store, record)
                    note = f"weights of {req.run_name or record.name}"
                else:
                    note = f"untrained weights: the model was edited after {req.run_name or record.name}"
            elif same:
                model = self.trainer.model
                note = f"weights after step {self.trainer.progress.step}"
            self._bundle = data_for(cfg, self._bundle)
            ev = feature_maps_for(graph, cfg, req.node_id, self._bundle, model=model)
            ev = dataclasses.replace(ev, run_id=req.tag, message=ev.message or note)
        except Exception as exc:  # noqa: BLE001 - shown in the feature-map view, not raised
            ev = unanswered_features(req, first_line(exc) or type(exc).__name__)
        self._event(ev)

    def do_look(self, req) -> None:
        """A Look inside request between runs, with the last run's model when the graph is still the
        one it trained (core/inspect/look.py answers; it never raises)."""
        from ..inspect.look import PREDICT, look
        from ..project import graph_from_dict
        from .config import TrainConfig
        from .data import data_for

        if req.kind == PREDICT:
            try:  # cached for the next request, as feature maps do
                self._bundle = data_for(TrainConfig.from_dict(req.config), self._bundle)
            except Exception:  # noqa: BLE001 - look() reports the same error in its own words
                pass
        try:
            same = self._trained(graph_from_dict(req.graph))
        except Exception:  # noqa: BLE001 - an unreadable graph: look() says so
            same = False
        t = self.trainer
        if same:
            self._event(look(req, t.model, self._bundle, f"the last run's weights (step {t.progress.step:,})"))
        else:
            self._event(look(req, None, self._bundle, ""))

    def _trained(self, graph) -> bool:
        """Whether the kept model is the one `graph` builds, so its trained weights apply."""
        from ..codegen import generate

        if self.trainer is None or self.trainer.model is None:
            return False
        try:
            return generate(graph).code == self.trainer.code
        except Exception:  # noqa: BLE001 - an invalid graph: the request's answer says so
            return False

    def do_test_images(self, req) -> None:
        """Test images for the mistakes gallery (core.training.inspect_run.ImagesRequest)."""
        from .inspect_run import serve_images

        ev, self._bundle = serve_images(req, self._bundle)
        self._event(ev)

    def do_augment_preview(self, req) -> None:
        """Training images after the chosen augmentation (core.training.inspect_run.PreviewRequest)."""
        from .inspect_run import serve_preview

        ev, self._bundle = serve_preview(req, self._bundle)
        self._event(ev)

    def do_save_checkpoint(self, path: str) -> None:
        if self.trainer is None:
            self._action("nothing to save: train first", False)
            return
        try:
            written = self.trainer.save_checkpoint(path)
        except Exception as exc:  # noqa: BLE001 - a message in the panel; the run's state stays for a retry
            self._action(save_message(exc, f"cannot write the checkpoint {path}"), False)
        else:
            self._action(f"saved checkpoint {written}", True)

    def do_export_run(self, runs_dir: str, record, directory: str) -> None:
        """Write the run's own code and weights (never the canvas's current code)."""
        try:
            paths = runs.export_run(runs.RunStore(runs_dir), record, directory)
        except Exception as exc:  # noqa: BLE001
            self._action(save_message(exc, f"cannot export the weights to {directory}"), False)
        else:
            self._action(f"exported {record.name}: " + ", ".join(p.name for p in paths) + f" to {directory}", True)

    def do_export_onnx(self, tag: int, graph: dict, path: str, weights: str | None, trained: bool,
                       title: str) -> None:
        """ONNX export with the kept model's weights (`trained`), a weights file, or untrained ones."""
        from ..codegen import CodegenError, generate
        from ..export.onnx import OnnxExportError, export_onnx
        from ..project import graph_from_dict
        from .checkpoint import plain_state_dict

        try:
            g = graph_from_dict(graph)
            state = None
            if trained:
                try:
                    same = self.trainer is not None and self.trainer.model is not None and \
                        generate(g).code == self.trainer.code
                except CodegenError:
                    same = False
                if not same:
                    self.send(("reply", tag, False, "the trained model is no longer available (the training "
                                                    "process was restarted or the project changed): export again"))
                    return
                state = plain_state_dict(self.trainer.model)
            report = export_onnx(g, path, weights=weights, state_dict=state, title=title)
        except OnnxExportError as exc:
            self.send(("reply", tag, False, str(exc)))
        except Exception as exc:  # noqa: BLE001 - a message, not a dead service
            self.send(("reply", tag, False, f"{type(exc).__name__}: {first_line(exc)[:300]}"))
        else:
            message = report.message()
            self.send(("reply", tag, True, message[0].upper() + message[1:]))

    def do_call(self, tag: int, target: str, args: tuple) -> None:
        """Run `module:function(*args)` here and reply with its result (for tools and tests that must
        act inside the training process, e.g. to simulate a full disk where the files are written)."""
        import importlib

        try:
            module, _, name = target.partition(":")
            fn = importlib.import_module(module)
            for part in name.split("."):
                fn = getattr(fn, part)
            value = fn(*args)
        except Exception as exc:  # noqa: BLE001
            self.send(("reply", tag, False, f"{type(exc).__name__}: {first_line(exc)}"))
        else:
            self.send(("reply", tag, True, value))


def unanswered_features(req: FeatureRequest, message: str) -> FeatureMaps:
    from .featuremaps import no_maps

    return FeatureMaps(req.tag, req.node_id, 0, no_maps(), 0, 0, message)


def save_message(exc: Exception, what: str) -> str:
    """One line: the core's own message for the errors it expects, else what failed and why."""
    from .checkpoint import CheckpointError, SaveError

    if isinstance(exc, (SaveError, CheckpointError)):
        return str(exc)
    return f"{what}: {type(exc).__name__}: {first_line(exc)[:200]}"


class _Sender:
    """Sends from several threads (main loop, reader) without interleaving two messages."""

    def __init__(self, conn):
        self.conn = conn
        self.lock = threading.Lock()
        self.broken = False

    def __call__(self, message: tuple) -> None:
        data = pickle.dumps(message, protocol=PROTOCOL)
        with self.lock:
            if self.broken:
                return
            try:
                self.conn.send_bytes(data)
            except OSError:  # the GUI has gone; the reader sees the same and ends the service
                self.broken = True

    def raw(self, data: bytes) -> None:
        """Bytes as one message, unchecked (tests: what the GUI does with a damaged message)."""
        with self.lock:
            self.conn.send_bytes(data)


CURRENT: _Sender | None = None  # in the service process: its way to the GUI


def _apply_env(env: dict[str, str]) -> None:
    for key in [k for k in os.environ if k.startswith(ENV_PREFIX) and k not in env]:
        del os.environ[key]
    os.environ.update(env)


def _read_requests(conn, inbox: queue.Queue, controls: dict[int, TrainControl], send: _Sender) -> None:
    """The service's reader thread: requests to the main loop in order, controls applied at once."""
    try:
        while True:
            data = conn.recv_bytes()
            try:
                msg = pickle.loads(data)
                kind = msg[0]
                if kind == "quit":
                    break
                if kind == "control":
                    _, run_id, op, arg = msg
                    control = controls.get(run_id)
                    if control is not None:
                        _apply_control(control, op, arg)
                    continue
                if kind != "request":
                    raise ValueError(f"unknown message {kind!r}")
                _, seq, name, args, env = msg
                if not isinstance(seq, int) or not isinstance(name, str) or not isinstance(args, tuple) \
                        or not isinstance(env, dict):
                    raise ValueError("malformed request")
                if name == "train":
                    job, state = args
                    control = TrainControl()  # registered now: a Stop may come before the main loop gets to it
                    if state.get("feature_node"):
                        control.set_feature_node(state["feature_node"])
                    for path in state.get("checkpoints", ()):
                        control.request_checkpoint(path)
                    if state.get("pause"):
                        control.pause()
                    if state.get("stop"):
                        control.stop()
                    job.control = control
                    controls[job.run_id] = control
                    args = (job,)
                inbox.put((seq, name, args, env))
            except Exception as exc:  # noqa: BLE001 - a damaged request is reported, not fatal
                send(("notice", f"the training process ignored a damaged request ({type(exc).__name__}: "
                                f"{first_line(exc)[:200]})"))
    except (EOFError, OSError):
        pass  # the GUI process has gone (or closed its end): stop everything
    finally:
        for control in list(controls.values()):
            control.stop()
        inbox.put(None)
    # The main loop ends after its current request; one stuck in a long data load must not outlive the GUI.
    time.sleep(QUIT_GRACE_S)
    os._exit(0)


def serve(requests, events) -> None:
    """The child process's entry point (multiprocessing target): load torch, then serve requests."""
    if hasattr(signal, "SIGINT"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C in the terminal is for the GUI, which ends us
    global CURRENT
    send = CURRENT = _Sender(events)
    inbox: queue.Queue = queue.Queue()
    controls: dict[int, TrainControl] = {}
    reader = threading.Thread(target=_read_requests, args=(requests, inbox, controls, send),
                              name="cnnbuilder-service-reader", daemon=True)
    reader.start()
    t0 = time.perf_counter()
    try:
        import torch
        import torchvision.transforms.v2  # noqa: F401 - the data pipeline's; its import registers operators

        send(("ready", True, "", {"torch": str(torch.__version__), "seconds": time.perf_counter() - t0,
                                  "pid": os.getpid()}))
        unavailable = ""
    except BaseException as exc:  # noqa: BLE001 - ImportError, a broken DLL, ...: say why, answer every request
        unavailable = f"PyTorch could not be loaded: {type(exc).__name__}: {first_line(exc)[:300]}"
        send(("ready", False, unavailable, {"pid": os.getpid()}))
    service = Service(send, unavailable)
    while True:
        item = inbox.get()
        if item is None:
            break
        seq, name, args, env = item
        _apply_env(env)
        try:
            service.handle(name, args)
        except Exception as exc:  # noqa: BLE001 - a bug in one request must not end the service
            send(("notice", f"the training process failed a request ({name}): {type(exc).__name__}: "
                            f"{first_line(exc)[:300]}"))
            traceback.print_exc()
        finally:
            if name == "train":
                controls.pop(args[0].run_id, None)
            send(("done", seq))
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # noqa: BLE001, S110 - a closed console: nothing to flush
        pass


# -- the GUI's end ------------------------------------------------------------------------------------------
_SAFE_BUILTINS = frozenset({"set", "frozenset", "complex", "slice", "range", "bytearray", "object", "tuple", "list",
                            "dict", "int", "float", "str", "bytes", "bool"})
_SAFE_MODULES = {"collections": {"OrderedDict"}, "copyreg": {"_reconstructor"}, "datetime": {"datetime", "date",
                 "timedelta", "timezone"}, "pathlib": {"Path", "PosixPath", "WindowsPath", "PurePosixPath",
                                                       "PureWindowsPath"}}


class SafeUnpickler(pickle.Unpickler):
    """Unpickles only numpy arrays and scalars, cnnbuilder's core dataclasses and plain values: a
    damaged or foreign message can never import a module (torch included) or run code in the GUI."""

    def find_class(self, module: str, name: str):
        top = module.split(".")[0]
        if (module == "builtins" and name in _SAFE_BUILTINS) or name in _SAFE_MODULES.get(module, ()) or \
                (top == "numpy" and module in sys.modules) or \
                (module.startswith("cnnbuilder.core.") and module in sys.modules):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a message")


# Protocol 5's out-of-band buffer opcodes: never in what the service sends (protocol 4), and in a
# damaged stream they make CPython print "deallocated bytearray object has exported buffers" through
# sys.excepthook (the GUI's error dialog) instead of raising.
_REFUSED_OPS = frozenset({"BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER"})


def decode(data: bytes) -> tuple:
    """A message from the service, checked for shape; ValueError/UnpicklingError when damaged."""
    for op, _arg, _pos in pickletools.genops(data):
        if op.name in _REFUSED_OPS:
            raise pickle.UnpicklingError(f"opcode {op.name} is not allowed in a message")
    msg = SafeUnpickler(io.BytesIO(data)).load()
    if not isinstance(msg, tuple) or not msg or not isinstance(msg[0], str):
        raise ValueError("not a message")
    kind, n = msg[0], len(msg)
    ok = {
        "ready": n == 4 and isinstance(msg[1], bool) and isinstance(msg[2], str) and isinstance(msg[3], dict),
        "event": n == 2 and isinstance(msg[1], Event) and isinstance(msg[1].run_id, int),
        "devices": n == 2 and isinstance(msg[1], list) and all(isinstance(d, tuple) and len(d) == 2 and
                                                                isinstance(d[1], str) for d in msg[1]),
        "action": n == 3 and isinstance(msg[1], str) and isinstance(msg[2], bool),
        "run_saved": n == 3 and isinstance(msg[1], runs.RunRecord) and isinstance(msg[2], str),
        "model": n == 2 and (msg[1] is None or isinstance(msg[1], str)),
        "reply": n == 4 and isinstance(msg[1], int) and isinstance(msg[2], bool),
        "notice": n == 2 and isinstance(msg[1], str),
        "done": n == 2 and isinstance(msg[1], int),
    }.get(kind, False)
    if not ok:
        raise ValueError(f"unexpected message {kind[:40]!r}")
    return msg


def describe_exit(code: int | None) -> str:
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        if name == "SIGKILL":
            return "was killed (SIGKILL: often the system running out of memory)"
        return f"crashed ({name})"
    return f"exited with code {code}"


class ServiceProcess:
    """One service child and the GUI's end of its pipes. `handler(message)` is called on a reader
    thread for every message (damaged ones become ("damaged", text)), and once with
    ("exit", description, [(seq, kind, args), ...unanswered requests]) when the child has ended
    without being asked to. Requests are pickled by the caller and written by a writer thread, so
    a child that is slow to read never blocks the caller."""

    def __init__(self, handler: Callable[[tuple], None] | None = None):
        self.handler = handler
        self.ready: bool | None = None  # None while loading torch; then the child's answer
        self.ready_message = ""
        self.info: dict[str, Any] = {}
        self._seq = 0
        self._pending: dict[int, tuple[str, tuple]] = {}
        self._cond = threading.Condition()
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()
        self._stopping = False
        self._ended = False
        ctx = multiprocessing.get_context("spawn")
        req_r, self._req_w = ctx.Pipe(duplex=False)
        self._ev_r, ev_w = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=serve, args=(req_r, ev_w), name="cnnbuilder-training")
        # "spawn" runs the parent's main script again in the child unless told otherwise: the service
        # needs nothing from it (its target is importable by name), and a script without an
        # `if __name__ == "__main__"` guard would start a second GUI. A bare __main__ while starting
        # makes multiprocessing leave it alone (frozen bundles: freeze_support() in the launcher).
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            self.process.start()
        finally:
            if main is not None:
                sys.modules["__main__"] = main
        req_r.close()  # the child's ends: without closing them here, its death would never read as EOF
        ev_w.close()
        _LIVE.add(self)
        self._reader = threading.Thread(target=self._read, name="cnnbuilder-service-events", daemon=True)
        self._writer = threading.Thread(target=self._write, name="cnnbuilder-service-requests", daemon=True)
        self._reader.start()
        self._writer.start()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return not self._ended and self.process.is_alive()

    # -- sending ---------------------------------------------------------------------------------------
    def request(self, kind: str, *args) -> int:
        """Queue a request for the child's main loop; returns its sequence number."""
        with self._cond:
            self._seq += 1
            seq = self._seq
            self._pending[seq] = (kind, args)
        env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
        self.send(("request", seq, kind, args, env))
        return seq

    def send(self, message: tuple) -> None:
        self._outbox.put(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    def _write(self) -> None:
        while True:
            data = self._outbox.get()
            if data is None:
                return
            try:
                self._req_w.send_bytes(data)
            except OSError:
                return  # the child has gone: the reader reports it

    # -- receiving -------------------------------------------------------------------------------------
    def _read(self) -> None:
        while True:
            try:
                data = self._ev_r.recv_bytes()
            except (EOFError, OSError):
                break
            try:
                msg = decode(data)
            except Exception as exc:  # noqa: BLE001 - damaged: reported, and the next message is read
                self._deliver(("damaged", f"{type(exc).__name__}: {first_line(exc)[:200]}"))
                continue
            if msg[0] == "ready":
                self.ready, self.ready_message, self.info = msg[1], msg[2], msg[3]
            elif msg[0] == "done":
                with self._cond:
                    self._pending.pop(msg[1], None)
                    self._cond.notify_all()
            self._deliver(msg)
        self.process.join(5)
        with self._cond:
            self._ended = True
            lost = sorted((seq, kind, args) for seq, (kind, args) in self._pending.items())
            self._pending.clear()
            self._cond.notify_all()
        self._outbox.put(None)
        _LIVE.discard(self)
        if not self._stopping:
            self._deliver(("exit", describe_exit(self.process.exitcode), lost))

    def _deliver(self, msg: tuple) -> None:
        handler = self.handler
        if handler is not None:
            try:
                handler(msg)
            except Exception:  # noqa: BLE001 - a broken receiver must not stop the reader
                traceback.print_exc()

    # -- waiting and ending ----------------------------------------------------------------------------
    def pending_kinds(self) -> list[str]:
        with self._cond:
            return [kind for kind, _ in self._pending.values()]

    def wait_idle(self, timeout_s: float) -> bool:
        """Until every request has been answered (or the child has ended); False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._pending and not self._ended:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Ask the child to finish its current request and end; terminate it if it has not within
        the timeout (then kill), or at once while it is still loading torch. Returns whether it
        ended by itself (a child terminated while loading had nothing to finish: True)."""
        self._stopping = True
        if self._ended and not self.process.is_alive():
            return True
        loading = self.ready is None
        if loading:  # still importing torch: nothing to finish, and the import would not notice a quit
            timeout_s = 0.0
        else:
            self.send(("quit",))
        self.process.join(max(0.0, timeout_s))
        clean = not self.process.is_alive()
        if not clean:
            self.process.terminate()
            self.process.join(2)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(2)
        self._outbox.put(None)
        _LIVE.discard(self)
        return clean or loading


_LIVE: set[ServiceProcess] = set()  # every child started, until it ends: for the exit hook
_SPARES: list[ServiceProcess] = []
KEEP_SPARE = False  # tests: a closed panel's idle child serves the next panel instead of ending (torch loads once)
MAX_SPARES = 2


def take_spare() -> ServiceProcess | None:
    while _SPARES:
        proc = _SPARES.pop()
        if proc.alive:
            return proc
    return None


def park(proc: ServiceProcess) -> bool:
    """Keep an idle child for the next owner (only with KEEP_SPARE); False: the caller ends it."""
    if not KEEP_SPARE or not proc.alive or proc.ready is False or len(_SPARES) >= MAX_SPARES:
        return False
    proc.handler = None
    _SPARES.append(proc)
    return True


def end_spares() -> None:
    while _SPARES:
        _SPARES.pop().stop(2.0)


@atexit.register
def _end_children() -> None:
    # Before multiprocessing's own exit hook, which would wait for a non-daemon child forever.
    for proc in list(_LIVE):
        proc.stop(1.0)

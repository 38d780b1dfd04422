"""The training thread: a QObject moved to a QThread, running the core engine's generator.

Everything that goes in is plain data (the graph as a dict, the settings as a dict, paths) and
everything that comes out is the engine's plain event dataclasses. Stop and pause go through the
run's `TrainControl` (threading.Events), because a queued "stop" slot could never run while this
thread is busy in the training loop. Between runs the same thread answers one-off requests
(feature maps with the last weights, saving, exporting, listing devices), so the GUI thread never
imports or runs torch itself.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from ...core.training.engine import TrainControl


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


@dataclass
class FeatureRequest:
    tag: int  # echoed back as the event's run_id so the panel can drop stale answers
    graph: dict[str, Any]
    config: dict[str, Any]
    node_id: str
    weights: tuple[str, str] | None = None  # (runs folder, run id) whose weights to use, when they fit
    run_name: str = ""


class TrainingWorker(QObject):
    event = Signal(object)  # a core training Event
    devices_found = Signal(list)  # [(setting, label), ...]; setting None: a note, not a choice
    action_done = Signal(str, bool)  # a save/export result for the user: (message, ok)
    run_saved = Signal(object, str)  # (RunRecord, runs folder) once an ended run is on disk

    def __init__(self) -> None:
        super().__init__()
        self.trainer = None  # the last run's Trainer: its model serves feature maps, saving, exporting
        self._bundle = None  # the last loaded data, reused when the next run wants the same images

    @Slot(object)
    def train(self, job: TrainJob) -> None:
        from ...core.project import graph_from_dict
        from ...core.training.config import TrainConfig
        from ...core.training.engine import Trainer
        from ...core.training.events import Failed

        try:
            graph = graph_from_dict(job.graph)
            cfg = TrainConfig.from_dict(job.config)
            trainer = Trainer(graph, cfg, control=job.control, run_id=job.run_id, resume=job.resume,
                              bundle=self._bundle, log_dir=job.log_dir, run_name=job.log_name)
        except Exception as exc:  # noqa: BLE001 - a bad snapshot must not kill the thread
            self.event.emit(Failed(job.run_id, f"cannot start training: {exc}", "error", traceback.format_exc()))
            return
        import time

        from ...core.training.events import Cancelled, Finished

        t0 = time.perf_counter()
        for ev in trainer.run():
            if isinstance(ev, (Finished, Cancelled)) and job.runs_dir and trainer.model is not None:
                # Recorded before the panel hears the run ended: its run list is complete by then.
                self._record(job, trainer, "finished" if isinstance(ev, Finished) else "stopped",
                             time.perf_counter() - t0)
            self.event.emit(ev)
        if trainer.model is not None:  # a run that failed before building its model keeps the last one's
            self.trainer = trainer
        if trainer.bundle is not None:
            self._bundle = trainer.bundle

    def _record(self, job: TrainJob, trainer, status: str, seconds: float) -> None:
        from ...core import runs

        try:
            record = runs.record_from_trainer(trainer, run_id=job.run_key, name=job.run_name, project=job.project,
                                              created=runs.now_iso(), seconds=seconds, status=status)
            runs.RunStore(job.runs_dir).write(record, runs.weights_bytes(trainer.model))
        except Exception as exc:  # noqa: BLE001 - a full disk must not kill the thread
            self.action_done.emit(f"could not record the run: {exc}", False)
            return
        self.run_saved.emit(record, job.runs_dir)

    @Slot()
    def forget(self) -> None:
        """Drop the last run's model: it belongs to a project that is no longer open."""
        self.trainer = None

    @Slot()
    def detect_devices(self) -> None:
        try:
            from ...core.training.devices import available_devices, device_notes

            # A note (setting None) says why a GPU the machine has is not in the list.
            self.devices_found.emit(available_devices() + [(None, note) for note in device_notes()])
        except Exception:  # noqa: BLE001 - a broken driver still leaves the CPU
            self.devices_found.emit([("auto", "Auto (CPU)"), ("cpu", "CPU")])

    @Slot(object)
    def feature_maps(self, req: FeatureRequest) -> None:
        """The block's output for the probe image, with the last run's weights when the model is
        still the one that was trained, else with freshly initialised weights (and says so)."""
        import dataclasses

        from ...core.codegen import generate
        from ...core.project import graph_from_dict
        from ...core.training.config import TrainConfig
        from ...core.training.data import load_data
        from ...core.training.engine import feature_maps_for
        from ...core.training.events import FeatureMaps

        try:
            graph = graph_from_dict(req.graph)
            cfg = TrainConfig.from_dict(req.config)
            model = None
            note = "untrained weights: train to see what the blocks learn"
            try:
                same = self.trainer is not None and self.trainer.model is not None and \
                    generate(graph).code == self.trainer.code
            except Exception:  # noqa: BLE001 - an invalid graph: feature_maps_for says so
                same = False
            if req.weights is not None:
                from ...core import runs

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
            if self._bundle is None or self._bundle.key != cfg.data_key():
                self._bundle = load_data(cfg)
            ev = feature_maps_for(graph, cfg, req.node_id, self._bundle, model=model)
            ev = dataclasses.replace(ev, run_id=req.tag, message=ev.message or note)
        except Exception as exc:  # noqa: BLE001 - shown in the feature-map view, not raised
            from ...core.training.events import first_line
            from ...core.training.featuremaps import no_maps

            ev = FeatureMaps(req.tag, req.node_id, 0, no_maps(), 0, 0, first_line(exc) or type(exc).__name__)
        self.event.emit(ev)

    @Slot(object)
    def test_images(self, req) -> None:
        """Test images for the mistakes gallery (core.training.inspect_run.ImagesRequest)."""
        from ...core.training.inspect_run import serve_images

        ev, self._bundle = serve_images(req, self._bundle)
        self.event.emit(ev)

    @Slot(object)
    def augment_preview(self, req) -> None:
        """Training images after the chosen augmentation (core.training.inspect_run.PreviewRequest)."""
        from ...core.training.inspect_run import serve_preview

        ev, self._bundle = serve_preview(req, self._bundle)
        self.event.emit(ev)

    @Slot(str)
    def save_checkpoint(self, path: str) -> None:
        if self.trainer is None:
            self.action_done.emit("nothing to save: train first", False)
            return
        try:
            written = self.trainer.save_checkpoint(path)
        except Exception as exc:  # noqa: BLE001 - a message in the panel; the run's state stays for a retry
            self.action_done.emit(_save_message(exc, f"cannot write the checkpoint {path}"), False)
        else:
            self.action_done.emit(f"saved checkpoint {written}", True)

    @Slot(str, object, str)
    def export_run(self, runs_dir: str, record, directory: str) -> None:
        """Write the run's own code and weights (never the canvas's current code)."""
        from ...core import runs

        try:
            paths = runs.export_run(runs.RunStore(runs_dir), record, directory)
        except Exception as exc:  # noqa: BLE001
            self.action_done.emit(_save_message(exc, f"cannot export the weights to {directory}"), False)
        else:
            self.action_done.emit(f"exported {record.name}: " + ", ".join(p.name for p in paths) + f" to {directory}",
                                  True)


def _save_message(exc: Exception, what: str) -> str:
    """One line: the core's own message for the errors it expects, else what failed and why."""
    from ...core.training.checkpoint import CheckpointError, SaveError
    from ...core.training.events import first_line

    if isinstance(exc, (SaveError, CheckpointError)):
        return str(exc)
    return f"{what}: {type(exc).__name__}: {first_line(exc)[:200]}"

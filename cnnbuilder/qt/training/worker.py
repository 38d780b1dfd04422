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


@dataclass
class FeatureRequest:
    tag: int  # echoed back as the event's run_id so the panel can drop stale answers
    graph: dict[str, Any]
    config: dict[str, Any]
    node_id: str


class TrainingWorker(QObject):
    event = Signal(object)  # a core training Event
    devices_found = Signal(list)  # [(setting, label), ...]; setting None: a note, not a choice
    action_done = Signal(str, bool)  # a save/export result for the user: (message, ok)

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
                              bundle=self._bundle)
        except Exception as exc:  # noqa: BLE001 - a bad snapshot must not kill the thread
            self.event.emit(Failed(job.run_id, f"cannot start training: {exc}", "error", traceback.format_exc()))
            return
        self.trainer = trainer
        for ev in trainer.run():
            self.event.emit(ev)
        if trainer.bundle is not None:
            self._bundle = trainer.bundle

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
            if same:
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

    @Slot(str)
    def save_checkpoint(self, path: str) -> None:
        if self.trainer is None:
            self.action_done.emit("nothing to save: train first", False)
            return
        try:
            written = self.trainer.save_checkpoint(path)
        except Exception as exc:  # noqa: BLE001
            self.action_done.emit(f"could not save the checkpoint: {exc}", False)
        else:
            self.action_done.emit(f"saved checkpoint {written}", True)

    @Slot(str, str)
    def export_weights(self, directory: str, title: str) -> None:
        if self.trainer is None:
            self.action_done.emit("nothing to export: train first", False)
            return
        try:
            paths = self.trainer.export_weights(directory, stem="model", title=title)
        except Exception as exc:  # noqa: BLE001
            self.action_done.emit(f"could not export the weights: {exc}", False)
        else:
            self.action_done.emit("exported " + ", ".join(p.name for p in paths) + f" to {directory}", True)

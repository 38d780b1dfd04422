"""Run records: what one training run was and produced, kept with the project it belongs to.

A run is immutable once written: the settings, the exact code its model was built from (with the
graph snapshot it came from), its curves, its final metrics and confusion matrix, and its weights.
Views and exports read a run, never "whatever the panel holds now", so code and weights that do not
belong together can never be exported.

On disk (see docs/project-format.md): a folder beside the project file, `<stem>.runs/` for
`<stem>.json`, with one sub-folder per run holding `run.json` and `weights.safetensors`. The
weights are written first and `run.json` last, both atomically, so a run folder without `run.json`
is an interrupted write and is ignored. An unsaved project keeps its runs in the user data folder
(`scratch_folder`) until it is first saved, when they move beside the file.

torch is imported only by the functions that need tensors.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .fileio import atomic_write, atomic_write_text
from .project import ProjectError, display_path, graph_from_dict, read_limited

FORMAT = "cnnbuilder-run"
VERSION = 1
RUN_FILE = "run.json"
WEIGHTS_FILE = "weights.safetensors"
MAX_RUN_BYTES = 64 * 1024 * 1024
MAX_INT = 2**53  # counts beyond any real run, and beyond what a float or int64 holds exactly
MAX_PREDICTIONS = 100_000  # test images up to which a record keeps each one's prediction (≈ 2 MB of JSON)
ENV_DATA_DIR = "CNNBUILDER_DATA_DIR"
STATUSES = ("finished", "stopped")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
HISTORY_GROUPS = (("step", "loss"), ("lr_step", "lr"),
                  ("epoch", "epoch_step", "train_loss", "train_acc", "val_loss", "val_acc", "epoch_lr"))


class RunError(Exception):
    """A run cannot be read, written or exported; the message names the file and the field."""


@dataclass(frozen=True)
class RunRecord:
    id: str  # also the run's folder name
    name: str
    created: str  # ISO 8601, UTC
    project: str  # the project's name when the run was made
    status: str  # finished | stopped
    config: dict[str, Any]  # TrainConfig.to_dict()
    code: str  # the generated code the model was built from, exactly as exported
    graph: dict[str, Any]  # graph_to_dict snapshot the code came from
    history: dict[str, list]  # the engine's curves (None where a value is missing, e.g. no validation)
    epochs: int  # epochs completed
    step: int  # optimiser steps completed
    params: int  # trainable parameters
    seconds: float  # wall time
    test_acc: float | None = None
    test_loss: float | None = None
    class_names: tuple[str, ...] = ()
    confusion: tuple[tuple[int, ...], ...] | None = None  # rows true, columns predicted
    precision: tuple[float | None, ...] = ()
    recall: tuple[float | None, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # fields from a newer writer, kept on rewrite
    # Per test image: true class, predicted class, its probability (the mistakes gallery); None
    # for runs recorded before it was kept, or with more than MAX_PREDICTIONS test images.
    predictions: Any = field(default=None, compare=False)  # training.inspect_run.TestPredictions

    @property
    def dataset(self) -> str:
        from .training.config import DATASETS

        key = self.config.get("dataset")
        return DATASETS.get(key, str(key)) if isinstance(key, str) else "?"

    @property
    def best_val_acc(self) -> float | None:
        vals = [v for v in self.history.get("val_acc", []) if isinstance(v, (int, float)) and math.isfinite(v)]
        return max(vals) if vals else None

    @property
    def date(self) -> datetime | None:
        try:
            return datetime.fromisoformat(self.created).astimezone()
        except (ValueError, OverflowError, OSError):
            return None

    def renamed(self, name: str) -> RunRecord:
        return replace(self, name=clean_name(name))

    def to_dict(self) -> dict[str, Any]:
        data = {
            **self.extra,
            "format": FORMAT, "version": VERSION, "id": self.id, "name": self.name, "created": self.created,
            "project": self.project, "status": self.status, "config": self.config,
            "epochs": self.epochs, "step": self.step, "params": self.params, "seconds": _num(self.seconds),
            "test_acc": _num(self.test_acc), "test_loss": _num(self.test_loss),
            "class_names": list(self.class_names),
            "confusion": None if self.confusion is None else [list(r) for r in self.confusion],
            "precision": [_num(v) for v in self.precision], "recall": [_num(v) for v in self.recall],
            "history": {k: [_num(v) for v in vs] for k, vs in self.history.items()},
            "code": self.code, "graph": self.graph,
        }
        if self.predictions is not None:
            tp = self.predictions
            data["test_predictions"] = {"true": tp.true.tolist(), "pred": tp.pred.tolist(),
                                        "prob": [round(float(v), 4) for v in tp.prob]}
        return data


def _num(v):
    """JSON has no NaN: a missing or non-finite number is null."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def clean_name(name: str) -> str:
    text = "".join(ch for ch in str(name) if ch.isprintable()).strip()
    return text[:120] or "Run"


def new_id(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


# -- reading ------------------------------------------------------------------------------------
def record_from_dict(data: Any, where: str) -> RunRecord:
    """A RunRecord from parsed JSON; RunError names the field when anything is off."""
    if not isinstance(data, dict):
        raise RunError(f"{where}: not a run record (expected a JSON object)")
    if data.get("format") != FORMAT:
        raise RunError(f"{where}: not a cnnbuilder run record")
    version = data.get("version")
    if not _is_int(version) or version < 1:
        raise RunError(f"{where}: field 'version' must be a positive whole number")
    if version > VERSION:
        raise RunError(f"{where}: written by a newer cnnbuilder (run version {version})")

    def get(key, kinds, optional=False):
        if key not in data or (optional and data[key] is None):
            if optional:
                return None
            raise RunError(f"{where}: field '{key}' is missing")
        v = data[key]
        if kinds is int:
            ok = _is_int(v) and 0 <= v <= MAX_INT
        elif kinds is float:
            ok = _finite(v)
        else:
            ok = isinstance(v, kinds)
        if not ok:
            raise RunError(f"{where}: field '{key}' has the wrong type")
        return v

    run_id = get("id", str)
    if not _ID.match(run_id):
        raise RunError(f"{where}: field 'id' is not a run id")
    code = get("code", str)
    graph = get("graph", dict)
    try:
        graph_from_dict(graph, f"{where}: graph")
    except ProjectError as exc:
        raise RunError(str(exc)) from None
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise RunError(f"{where}: field 'graph' is not a valid graph ({exc})") from None
    status = get("status", str)
    if status not in STATUSES:
        raise RunError(f"{where}: field 'status' must be one of {', '.join(STATUSES)}")
    config = get("config", dict)
    history = _history(get("history", dict), where)
    names = get("class_names", list)
    if not all(isinstance(n, str) for n in names):
        raise RunError(f"{where}: field 'class_names' must list texts")
    names = [clean_name(n) for n in names]  # shown in tables: no control characters or lone surrogates
    created = get("created", str)
    try:
        datetime.fromisoformat(created).astimezone()
    except (ValueError, OverflowError, OSError):
        raise RunError(f"{where}: field 'created' is not a date and time") from None
    k = len(names)
    confusion = data.get("confusion")
    if confusion is not None:
        if not (isinstance(confusion, list) and len(confusion) == k and
                all(isinstance(r, list) and len(r) == k and all(_is_int(c) and 0 <= c <= MAX_INT for c in r)
                    for r in confusion)):
            raise RunError(f"{where}: field 'confusion' must be a {k}×{k} table of counts")
        confusion = tuple(tuple(r) for r in confusion)
    per_class = {}
    for key in ("precision", "recall"):
        vals = get(key, list)
        allowed = (k,) if confusion is not None else (0, k)  # the evaluation shows one row per class
        if len(vals) not in allowed or not all(v is None or _finite(v) for v in vals):
            raise RunError(f"{where}: field '{key}' must hold one number per class")
        per_class[key] = tuple(None if v is None else float(v) for v in vals)
    known = {"format", "version", "id", "name", "created", "project", "status", "config", "epochs", "step", "params",
             "seconds", "test_acc", "test_loss", "class_names", "confusion", "precision", "recall", "history",
             "code", "graph", "test_predictions"}
    return RunRecord(
        id=run_id, name=clean_name(get("name", str)), created=created, project=clean_name(get("project", str)),
        status=status, config=config, code=code, graph=graph, history=history, epochs=get("epochs", int),
        step=get("step", int), params=get("params", int), seconds=float(get("seconds", float)),
        test_acc=_opt_float(get("test_acc", float, optional=True)),
        test_loss=_opt_float(get("test_loss", float, optional=True)),
        class_names=tuple(names), confusion=confusion, precision=per_class["precision"], recall=per_class["recall"],
        extra={key: v for key, v in data.items() if key not in known},
        predictions=_predictions(data.get("test_predictions"), k, where))


def _predictions(data, k: int, where: str):
    """The stored per-test-image predictions, checked (None when the record has none)."""
    if data is None:
        return None
    from .training.inspect_run import predictions

    bad = RunError(f"{where}: field 'test_predictions' must hold lists 'true', 'pred' (class numbers below {k}) "
                   "and 'prob' (0..1) of one length")
    if not isinstance(data, dict):
        raise bad
    cols = [data.get(key) for key in ("true", "pred", "prob")]
    if not all(isinstance(c, list) for c in cols) or len({len(c) for c in cols}) != 1:
        raise bad
    if not all(_is_int(v) and 0 <= v < k for c in cols[:2] for v in c) or \
            not all(_is_num(v) and 0 <= v <= 1 for v in cols[2]):
        raise bad
    return predictions(*cols)


def _history(h: dict, where: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for group in HISTORY_GROUPS:
        lengths = set()
        for key in group:
            vals = h.get(key, [])
            if not isinstance(vals, list) or not all(v is None or _finite(v) for v in vals):
                raise RunError(f"{where}: field 'history.{key}' must be a list of numbers")
            out[key] = [None if v is None else float(v) for v in vals]
            lengths.add(len(vals))
        if len(lengths) > 1:
            raise RunError(f"{where}: the curves in 'history' ({', '.join(group)}) differ in length")
    return out


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite(v) -> bool:
    """A number that converts to a finite float (a 400-digit integer does not)."""
    if not _is_num(v):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


def _opt_float(v):
    return None if v is None else float(v)


def read_run(folder: Path) -> RunRecord:
    path = Path(folder) / RUN_FILE
    where = display_path(path)
    raw = read_limited(path, MAX_RUN_BYTES, where, "a run record", RunError)
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise RunError(f"{where}: not a text file (invalid UTF-8 at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise RunError(f"{where}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise RunError(f"{where}: nested too deeply") from None
    record = record_from_dict(data, where)
    if record.id != Path(folder).name:
        raise RunError(f"{where}: the run id {record.id!r} does not match its folder")
    return record


# -- the store ------------------------------------------------------------------------------------
def runs_folder(project_path: str | os.PathLike) -> Path:
    """Where the runs of a saved project live: `model.runs/` beside `model.json`."""
    p = Path(project_path)
    return p.with_name(p.stem + ".runs")


def data_dir() -> Path:
    override = os.environ.get(ENV_DATA_DIR)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("cnnbuilder", appauthor=False))


def scratch_folder() -> Path:
    """A fresh folder in the user data dir for the runs of a project that has no file yet."""
    return data_dir() / "unsaved-runs" / uuid.uuid4().hex


def is_scratch(folder: str | os.PathLike) -> bool:
    return Path(folder).parent == data_dir() / "unsaved-runs"


class RunStore:
    """The runs in one folder. Loading skips damaged runs with a message; writing is atomic."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def load(self) -> tuple[list[RunRecord], list[str]]:
        """(runs oldest first, one message per run folder that could not be read)."""
        runs: list[RunRecord] = []
        problems: list[str] = []
        try:
            entries = sorted(self.folder.iterdir()) if self.folder.is_dir() else []
        except OSError as exc:
            return [], [f"{display_path(self.folder)}: cannot list the runs ({exc.strerror or exc})"]
        for entry in entries:
            if not entry.is_dir() or not _ID.match(entry.name):
                continue
            if not (entry / RUN_FILE).exists():
                continue  # an interrupted write: weights without their record
            try:
                runs.append(read_run(entry))
            except RunError as exc:
                problems.append(f"skipped a damaged run: {exc}")
        runs.sort(key=lambda r: (r.created, r.id))
        return runs, problems

    def run_dir(self, run_id: str) -> Path:
        if not _ID.match(run_id):
            raise RunError(f"{run_id!r} is not a run id")
        return self.folder / run_id

    def weights_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / WEIGHTS_FILE

    def has_weights(self, run_id: str) -> bool:
        return self.weights_path(run_id).is_file()

    def write(self, record: RunRecord, weights: bytes | None = None) -> Path:
        """Write the weights (if given) and then the record, each atomically."""
        d = self.run_dir(record.id)
        try:
            d.mkdir(parents=True, exist_ok=True)
            if weights is not None:
                atomic_write(d / WEIGHTS_FILE, lambda f: f.write(weights))
            text = json.dumps(record.to_dict(), indent=1, ensure_ascii=False, allow_nan=False)
            atomic_write_text(d / RUN_FILE, text + "\n")
        except OSError as exc:
            raise RunError(f"{display_path(d)}: cannot write the run ({exc.strerror or exc})") from None
        return d

    def rename(self, record: RunRecord, name: str) -> RunRecord:
        renamed = record.renamed(name)
        self.write(renamed)
        return renamed

    def delete(self, run_id: str) -> None:
        d = self.run_dir(run_id)
        try:
            shutil.rmtree(d)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise RunError(f"{display_path(d)}: cannot delete the run ({exc.strerror or exc})") from None

    def move_to(self, folder: str | os.PathLike, copy: bool = False) -> RunStore:
        """Move (or copy) every run into `folder` (Save As); runs already there are kept. Returns the
        store of the new folder."""
        target = Path(folder)
        if target == self.folder:
            return self
        try:
            if not self.folder.is_dir():
                return RunStore(target)
            target.mkdir(parents=True, exist_ok=True)
            for entry in sorted(self.folder.iterdir()):
                if not entry.is_dir() or not _ID.match(entry.name) or (target / entry.name).exists():
                    continue
                if copy:
                    shutil.copytree(entry, target / entry.name)
                else:
                    shutil.move(str(entry), str(target / entry.name))
            if not copy:
                shutil.rmtree(self.folder, ignore_errors=True)
        except OSError as exc:
            raise RunError(f"cannot move the runs to {display_path(target)} ({exc.strerror or exc})") from None
        return RunStore(target)


# -- making, loading and exporting runs (torch) -------------------------------------------------
def record_from_trainer(trainer, *, run_id: str, name: str, project: str, created: str, seconds: float,
                        status: str) -> RunRecord:
    """The record of a Trainer whose run has ended (Finished: status "finished"; Cancelled: "stopped")."""
    from .codegen import generate
    from .project import graph_to_dict

    if trainer.model is None:
        raise RunError("the run ended before its model was built")
    res = trainer.result
    code = generate(trainer.graph, title=project).code  # the trained code, with the project's name in its docstring
    params = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    history = {k: [_num(v) for v in vs] for k, vs in trainer.history.items()}
    done = trainer.progress.epoch
    kw: dict[str, Any] = {}
    if res is not None:
        kw = {"test_acc": float(res.test_acc), "test_loss": _num(res.test_loss),
              "class_names": tuple(res.class_names),
              "confusion": tuple(tuple(int(c) for c in row) for row in res.confusion.tolist()),
              "precision": tuple(_num(v) for v in res.precision), "recall": tuple(_num(v) for v in res.recall)}
        if res.test_pred is not None and len(res.test_pred) <= MAX_PREDICTIONS:
            from .training.inspect_run import predictions

            kw["predictions"] = predictions(res.test_true, res.test_pred, res.test_prob)
    return RunRecord(id=run_id, name=clean_name(name), created=created, project=project, status=status,
                     config=trainer.config.to_dict(), code=code, graph=graph_to_dict(trainer.graph),
                     history=history, epochs=int(done), step=int(trainer.progress.step), params=int(params),
                     seconds=float(seconds), **kw)


def weights_bytes(model) -> bytes:
    from safetensors.torch import save

    from .training.checkpoint import plain_state_dict

    return save(plain_state_dict(model), metadata={"format": "pt", "generator": "cnnbuilder"})


def load_state(store: RunStore, record: RunRecord) -> dict:
    """The run's state_dict (CPU tensors); RunError if the weights are missing or damaged."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = store.weights_path(record.id)
    where = display_path(path)
    if not path.is_file():
        raise RunError(f"{where}: the weights of run '{record.name}' are missing")
    try:
        return load_file(str(path))  # memory-mapped, and never runs code
    except (SafetensorError, ValueError, RuntimeError, OSError) as exc:
        raise RunError(f"{where}: damaged weights ({str(exc).splitlines()[0][:200] if str(exc) else exc})") from None


def build_model(store: RunStore, record: RunRecord):
    """The run's model, from its own code and weights, in eval mode (CPU)."""
    from .codegen import generate, instantiate

    graph = graph_from_dict(record.graph, "run graph")
    model = instantiate(generate(graph))
    try:
        model.load_state_dict(load_state(store, record))
    except RuntimeError as exc:
        raise RunError(f"the weights of run '{record.name}' do not fit its model ({str(exc).splitlines()[0]})") \
            from None
    return model.eval()


def model_changed(record: RunRecord, graph) -> bool:
    """Whether `graph` builds a different model than the one this run trained (positions and the
    project's name do not count; block names do, since they name the weights)."""
    from .codegen import CodegenError, generate

    try:
        now = generate(graph).code
    except CodegenError:
        return True
    try:
        then = generate(graph_from_dict(record.graph, "run graph")).code
    except (ProjectError, CodegenError):
        return True
    return now != then


def export_run(store: RunStore, record: RunRecord, directory: str | os.PathLike, stem: str = "model") -> list[Path]:
    """Write the run's own code (stem.py) with its weights (stem.pt state_dict, stem.safetensors)."""
    from .training.checkpoint import atomic_torch_save, atomic_write_checked

    state = load_state(store, record)
    directory = Path(directory)
    code = record.code.encode("utf-8")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        raw = store.weights_path(record.id).read_bytes()
        # Through the checked writer: a full disk or a folder in the way is one line naming the file.
        py = atomic_write_checked(directory / f"{stem}.py", lambda f: f.write(code), "code")
        pt = atomic_torch_save(state, directory / f"{stem}.pt", "weights")
        st = atomic_write_checked(directory / f"{stem}.safetensors", lambda f: f.write(raw), "weights")
    except OSError as exc:
        raise RunError(f"{display_path(directory)}: cannot export ({exc.strerror or exc})") from None
    return [py, pt, st]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")

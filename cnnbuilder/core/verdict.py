"""One verdict on a project: can its model run, and does it fit the training data chosen for it?

Two levels, so every view can say the same thing:

- an *error*: the model cannot run (shape inference failed: a block without input, a kernel
  larger than its input, ...). The block is red, no code is generated, nothing trains.
- a *warning*: the model is valid but does not fit the chosen data yet (Input 3×32×32 for
  1×28×28 images, 10 outputs for 100 classes), or the data itself has a problem (a missing image
  folder, a class without images). The block is amber, its shape and the code stay live, and a
  run waits until the fit is fixed (a note such as an empty class does not hold it up).

The canvas, the Summary, the status bar, the code panel, the Training panel's banner and
`cnnbuilder validate` all read one `Verdict`, so they agree. Each fit warning carries the
one-click fixes that cure it, as plain data (a parameter edit, or training settings to set). An
error whose cause is arithmetic carries the step that goes wrong (`detail`), computed here once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .blocks import fmt_shape
from .fileio import describe_error
from .graph import Graph
from .inspect.formulas import error_arithmetic
from .shapes import Analysis, analyze
from .training.config import DATASETS, TrainConfig, shapes_fitting
from .training.data import DataError, DataMeta, check_fit, dataset_meta

ERROR, WARNING = "error", "warning"
# What a warning is about: the model against the data (holds a run back), the data itself
# (cannot be loaded: holds a run back), or a note on the data (train anyway, but know).
FIT, DATA, NOTE = "fit", "data", "note"


@dataclass(frozen=True)
class Fix:
    """One click that cures a warning: set a block's parameter (an undoable model edit), or set
    some training settings (a data edit)."""

    label: str
    node_id: str | None = None
    param: str | None = None
    value: Any = None
    settings: dict[str, Any] | None = None


@dataclass(frozen=True)
class Issue:
    level: str  # ERROR or WARNING
    message: str
    node_id: str | None = None
    kind: str = FIT  # for warnings: FIT, DATA or NOTE
    fixes: tuple[Fix, ...] = ()
    # for an error whose cause is arithmetic: the step that goes wrong, with the block's numbers
    # (`H: ⌊(3 − 5 + 0)/1⌋ + 1 = −1: the kernel is larger than the padded input`); kept apart from
    # the message so the message stays short where space is short (the block's own shape line)
    detail: str = ""

    @property
    def text(self) -> str:
        """The message with its arithmetic, on one line."""
        return f"{self.message} ({self.detail})" if self.detail else self.message

    @property
    def holds_training(self) -> bool:
        return self.level == ERROR or self.kind != NOTE


@dataclass(frozen=True)
class Verdict:
    analysis: Analysis
    errors: tuple[Issue, ...]  # the model's own problems (blocks that only wait on another are not counted)
    warnings: tuple[Issue, ...]
    dataset: str = ""  # the chosen dataset's display name
    meta: DataMeta | None = field(default=None, compare=False)  # None when the data cannot be described

    @property
    def ok(self) -> bool:
        """The model can run (it may still not fit the data)."""
        return not self.errors

    @property
    def ready(self) -> bool:
        """The model can train on the chosen data now."""
        return self.ok and not any(w.holds_training for w in self.warnings)

    def node_warning(self, node_id: str) -> str | None:
        """The warnings about one block, joined; None when it has none."""
        texts = [w.message for w in self.warnings if w.node_id == node_id]
        return "; ".join(texts) if texts else None

    def error_details(self) -> dict[str, str]:
        """The arithmetic step that goes wrong, per block whose error is arithmetic."""
        return {e.node_id: e.detail for e in self.errors if e.detail and e.node_id is not None}

    def node_warnings(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for w in self.warnings:
            if w.node_id is not None:
                out[w.node_id] = f"{out[w.node_id]}; {w.message}" if w.node_id in out else w.message
        return out

    def parts(self) -> list[tuple[str, str]]:
        """The headline as (level, text) pieces, e.g. [("ok", "✓ valid"), ("warning", "⚠ 1 warning")]."""
        out = [(ERROR, f"✗ {_count(len(self.errors), 'error')}") if self.errors else ("ok", "✓ valid")]
        if self.warnings:
            out.append((WARNING, f"⚠ {_count(len(self.warnings), 'warning')}"))
        return out

    def headline(self) -> str:
        """'✓ valid', '✓ valid · ⚠ 1 warning', '✗ 2 errors' ..."""
        return " · ".join(text for _, text in self.parts())


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class MetaCache:
    """`dataset_meta` with folder scans remembered per (folder, resize): a scan lists files, so it
    runs once per folder, not once per edit. A folder that cannot be read is asked again each
    time (the user may be fixing it); `forget()` after its content may have changed."""

    def __init__(self) -> None:
        self._scans: dict[tuple, DataMeta] = {}

    def get(self, cfg: TrainConfig) -> DataMeta:
        if cfg.dataset != "folder":
            return dataset_meta(cfg)
        key = (cfg.data_root, cfg.resize)
        if key not in self._scans:
            self._scans[key] = dataset_meta(cfg)
        return self._scans[key]

    def forget(self) -> None:
        self._scans.clear()


def judge(graph: Graph, settings: dict[str, Any] | TrainConfig | None = None, analysis: Analysis | None = None,
          metas: MetaCache | None = None) -> Verdict:
    """The verdict on `graph` trained with `settings` (a project's training dict, or a config).
    `analysis` and `metas` let a caller reuse what it already has."""
    a = analysis if analysis is not None else analyze(graph)
    cfg = settings if isinstance(settings, TrainConfig) else TrainConfig.from_dict(settings)
    errors = []
    for p in a.root_problems:
        nid = p.node_id if p.node_id in graph else None
        detail = error_arithmetic(graph, nid, a) if nid is not None else None
        errors.append(Issue(ERROR, p.message, nid, detail=detail or ""))
    warnings: list[Issue] = []
    try:
        meta = (metas or MetaCache()).get(cfg)
    except DataError as exc:  # its message says what to do
        meta = None
        warnings.append(Issue(WARNING, str(exc), None, DATA))
    except OSError as exc:  # e.g. the folder vanished mid-scan
        meta = None
        warnings.append(Issue(WARNING, f"cannot read the {DATASETS[cfg.dataset]} data ({describe_error(exc)})",
                              None, DATA))
    if meta is not None:
        for m in check_fit(graph, a, meta):
            warnings.append(Issue(WARNING, m.message, m.node_id, FIT, _fixes(graph, a, cfg, m)))
        warnings.extend(Issue(WARNING, w, None, NOTE) for w in meta.warnings)
    return Verdict(a, tuple(errors), tuple(warnings), DATASETS[cfg.dataset], meta)


def _fixes(graph: Graph, a: Analysis, cfg: TrainConfig, m) -> tuple[Fix, ...]:
    if m.param == "shape":
        fixes = [Fix(f"Set Input to {fmt_shape(m.value)}", m.node_id, "shape", list(m.value))]
        now = cfg.to_dict()
        alt = shapes_fitting(a.input_shape, now) if cfg.dataset == "shapes" else now
        if alt != now:  # the built-in shapes can be drawn at the model's size instead
            c, s = alt["shapes_channels"], alt["shapes_size"]
            fixes.append(Fix(f"Make the shapes {c}×{s}×{s}", settings={"shapes_channels": c, "shapes_size": s}))
        return tuple(fixes)
    if m.param == "out_features":
        return (Fix(f"Set {graph.node(m.node_id).label} to {m.value} outputs", m.node_id, "out_features", m.value),)
    return ()

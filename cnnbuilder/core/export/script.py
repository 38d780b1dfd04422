"""Project -> a standalone training script that needs only torch and torchvision.

The script trains as the app trains: the model comes from the one code generator
(`codegen.generate`), and the data split, normalisation statistics, data order, augmentation and
RNG state are copied from the app's own functions (`_source.definitions`), so the same seed gives
the same run. It runs unchanged under torchrun (DistributedDataParallel) and writes checkpoints
in the app's format. `script_parts` returns the parts separately for the notebook exporter.
"""

from __future__ import annotations

import ast
import pprint
import re
from dataclasses import dataclass
from pathlib import Path

from ... import __version__
from ..codegen import CodegenError, class_identifier, generate
from ..project import Project, graph_to_dict
from ..shapes import analyze
from ..training import augment, checkpoint, data, engine, node_weights, synthetic
from ..training.config import DATASETS, TrainConfig, resolve_project_path
from . import _source, _template

MODEL_CLASS = "Net"
_TORCHVISION = {"mnist": ("MNIST", "mnist"), "fashion-mnist": ("FashionMNIST", "mnist"),
                "cifar10": ("CIFAR10", "cifar"), "cifar100": ("CIFAR100", "cifar"), "svhn": ("SVHN", "svhn")}


class ExportError(Exception):
    """The project cannot be exported as a training script; the message says why."""


@dataclass(frozen=True)
class Part:
    name: str  # setup, data, model, train (the notebook's cells follow these)
    title: str
    code: str


def _config(project: Project, config: TrainConfig | None) -> TrainConfig:
    cfg = config if config is not None else TrainConfig.from_dict(project.training)
    try:
        return cfg.check()
    except ValueError as exc:
        raise ExportError(f"training setting {exc}") from None


def _check_fit(project: Project, cfg: TrainConfig, analysis) -> tuple[str, ...]:
    """The dataset's class names; refuses a model that cannot train on the dataset."""
    if cfg.dataset == "folder":
        # The folder may live on another machine: the script checks it when it runs.
        k = analysis.output_shape[0] if len(analysis.output_shape or ()) == 1 else 0
        if k < 2:
            raise ExportError(f"the model's output is {analysis.output_shape}: a classifier must end in one value "
                              "per class (Flatten, then Linear)")
        return tuple(f"class {i}" for i in range(k))
    meta = data.dataset_meta(cfg)
    problems = data.check_fit(project.graph, analysis, meta)
    if problems:
        raise ExportError("the model does not fit the data: " + "; ".join(m.message for m in problems))
    return meta.class_names


def _literal(name: str, value, comment: str = "") -> str:
    """`NAME = value` as a readable Python literal: one entry per line, lists of dicts one dict a line."""
    head = f"# {comment}\n" if comment else ""

    def fmt(v, indent: int) -> str:
        text = pprint.pformat(v, width=max(40, 118 - indent), sort_dicts=False, compact=True)
        return text.replace("\n", "\n" + " " * indent)

    if not isinstance(value, dict) or len(repr(value)) + len(name) < 110:
        return f"{head}{name} = {fmt(value, len(name) + 3)}"
    lines = [f"{head}{name} = {{"]
    for k, v in value.items():
        if k == "nodes" and isinstance(v, list):
            lines.append(f"    {k!r}: [")
            lines += [f"        {fmt(i, 8)}," for i in v]
            lines.append("    ],")
        else:
            lines.append(f"    {k!r}: {fmt(v, 6 + len(repr(k)))},")
    lines.append("}")
    return "\n".join(lines)


def _top_level_names(code: str) -> set[str]:
    """What a piece of the script defines or imports at its top level."""
    names: set[str] = set()
    for node in ast.parse(code).body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def _model_class(project: Project, analysis, avoid: set[str]) -> tuple[str, str, dict]:
    """(the model's classes, the class name, block id -> (module path, label, type) of its modules)."""
    try:  # a group's class must not take a name the script uses (a group named "Run" or "Data")
        gen = generate(project.graph, class_name=MODEL_CLASS, title=project.name, analysis=analysis, avoid=avoid)
    except CodegenError as exc:
        raise ExportError(str(exc)) from None
    lines = gen.code.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("class "))
    end = next(i for i, line in enumerate(lines) if line.startswith('if __name__ == "__main__":'))
    g = project.graph
    modules = {nid: (path, g.node(nid).label, g.node(nid).type) for nid, path in gen.attr_of.items()
               if g.node(nid).spec.module}
    return "\n".join(lines[start:end]).rstrip() + "\n", gen.class_name, modules


def _title(project: Project) -> str:
    return re.sub(r"[^\w \-.,()/+]", "", project.name).strip()[:80] or "model"


def _stem(project: Project) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", project.name).strip("_").lower()[:40] or "model"


def script_parts(project: Project, config: TrainConfig | None = None, filename: str = "train.py") -> list[Part]:
    """The script in parts: its description (doc), setup, data, model, train (checkpoints included)."""
    cfg = _config(project, config)
    filename = re.sub(r"[^\w.+-]", "_", filename)[:80] or "train.py"  # it is quoted in the docstring
    analysis = analyze(project.graph)
    if not analysis.ok:
        first = [p.message if p.node_id is None else f"{project.graph.node(p.node_id).label}: {p.message}"
                 for p in analysis.problems[:3]]
        raise ExportError("the model has problems; fix them first: " + "; ".join(first))
    if not analysis.total_params:
        raise ExportError("the model has no trainable parameters (add a Conv2d or Linear block)")
    classes = _check_fit(project, cfg, analysis)
    cls = class_identifier(MODEL_CLASS)
    title, stem = _title(project), _stem(project)
    settings = cfg.to_dict()  # all of them: the script's checkpoints carry the app's whole config
    conv = any(n.type in ("Conv2d", "ConvTranspose2d") for n in project.graph)
    channels_last = cfg.channels_last == "on" or (cfg.channels_last == "auto" and conv
                                                  and len(analysis.input_shape) == 3)
    extra = "import torchvision\n" if cfg.dataset in _TORCHVISION else ""
    # Fine-tuning: the weights file as the app resolves it (relative to the project's folder).
    init = resolve_project_path(cfg.init_weights, project.path) if cfg.init_weights else ""

    doc = f'''Train {title}: generated by cnnbuilder {__version__}.

It trains the model designed in cnnbuilder with the project's training settings ({DATASETS[cfg.dataset]},
{cfg.optimizer}, {cfg.epochs} epoch(s), batch {cfg.batch_size}, seed {cfg.seed}) and needs only torch and torchvision:

    python {filename} --epochs 5 --out runs/{stem}
    torchrun --nproc_per_node=4 {filename} --out runs/{stem}    # 4 processes (one per GPU), DDP

Under torchrun every process trains on its own share of each batch: --batch-size is per process,
so N processes step with batches of N x --batch-size. Only rank 0 prints and writes files. After
every epoch it writes --out/checkpoint.pt (continue with --resume, or in cnnbuilder with "Resume
from checkpoint...") and a line of --out/metrics.csv; at the end the test accuracy and the weights
(--out/model.pt, a state_dict for {cls}).
'''
    if init:
        doc += f"""
Fine-tuning: training starts from the weights in {Path(init).name} (--init-weights; '' trains from
random values), as in cnnbuilder; a tensor that no longer fits the model keeps its random values.
"""
    constants = "\n".join([
        f"TITLE = {title!r}",
        f"DATASET = {DATASETS[cfg.dataset]!r}",
        f"OUT_DIR = {'runs/' + stem!r}",
        _literal("SETTINGS", settings, "The project's training settings; the command-line flags override a few."),
        _literal("CLASSES", classes),
        f"INPUT_SHAPE = {tuple(analysis.input_shape)!r}",
        f"CHANNELS_LAST = {channels_last!r}  # convolutions run faster with channels-last tensors",
    ] + ([_literal("INIT_WEIGHTS", init, "Training starts from these weights (--init-weights).")] if init else []))
    args = _template.ARGS
    if init:
        args = _insert(args, _template.INIT_ARG_BEFORE, _template.INIT_ARG)
    setup = _join([_template.IMPORTS.format(extra_imports=extra) + "\n" + constants, args])

    if cfg.dataset == "shapes":
        reader = _template.READ_SHAPES + "\n\n" + _source.definitions(
            synthetic, ["_CHUNK", "make_shapes", "_render", "_box", "_circle", "_square", "_triangle", "_plus",
                        "_ring", "_diamond", "_hbars", "_vbars", "_star", "_x", "_SDF"])
    elif cfg.dataset == "folder":
        reader = _template.READ_FOLDER
    else:
        name, kind = _TORCHVISION[cfg.dataset]
        split = 'split="train" if train else "test"' if cfg.dataset == "svhn" else "train=train"
        reader = _template.READ_TORCHVISION.format(label=DATASETS[cfg.dataset], cls=name, split_arg=split,
                                                   convert=_template.CONVERT[kind])
    shared = _source.definitions(data, ["STAT_SAMPLES", "split_indices", "channel_stats"])
    kernels = _source.definitions(augment, ["_LUMA", "random_crop", "hflip", "rotate", "_per_image", "_gray",
                                            "_blend", "adjust_brightness", "adjust_contrast", "adjust_saturation",
                                            "adjust_hue", "apply_augmentation", "batch_generator", "epoch_permutation"])
    data_code = _join([
        "# -- data: cnnbuilder's split, statistics, data order and augmentation " + "-" * 29,
        shared, _template.DATA, reader, "# -- augmentation (each image its own random parameters) " + "-" * 42,
        kernels, _template.AUGMENT,
    ])
    train_code = _insert(_template.TRAIN, _template.INIT_APPLY_BEFORE, _template.INIT_APPLY) if init \
        else _template.TRAIN
    train = _join([
        "# -- training " + "-" * 86,
        _source.definitions(engine, ["batches_per_epoch"]), train_code,
        "# -- checkpoints " + "-" * 83,
        _template.CHECKPOINT,
        _source.definitions(checkpoint, ["CHECKSUM", "digest", "_feed", "rng_state", "set_rng_state"]),
        _literal("GRAPH", graph_to_dict(project.graph),
                 "The cnnbuilder graph the model was generated from, stored in every checkpoint."),
    ])
    avoid = set().union(*(_top_level_names(c) for c in (setup, data_code, train, _template.MAIN,
                                                         _template.BUILD_MODEL.format(cls=MODEL_CLASS))))
    fine_tuning = [_source.definitions(node_weights, ["FORMAT", "Applied", "copy_blocks"]),
                   _template.START_FROM] if init else []
    avoid |= _top_level_names("\n".join(fine_tuning))  # the fine-tuning helpers are top-level names too
    model_code, cls, modules = _model_class(project, analysis, avoid)
    model = _join([
        "# -- the model, as cnnbuilder generates it " + "-" * 57,
        f"# Input: N×{'×'.join(map(str, analysis.input_shape))}. Output: N×"
        f"{'×'.join(map(str, analysis.output_shape))}. Trainable parameters: {analysis.total_params:,}.",
        model_code, _template.BUILD_MODEL.format(cls=cls),
    ] + ([
        "# -- fine-tuning: start from a cnnbuilder weights file " + "-" * 44,
        _literal("BLOCK_MODULES", modules, "Each block's module in the model: the weights file is keyed by block."),
        *fine_tuning,
    ] if fine_tuning else []))
    return [Part("doc", "About", doc),
            Part("setup", "Setup: imports, settings and command-line options", setup),
            Part("data", "Data", data_code),
            Part("model", "Model", model),
            Part("train", "Training", train)]


def _insert(text: str, before: str, added: str) -> str:
    """`added` put in `text` right before the line that starts with `before` (which must be there once)."""
    if text.count(before) != 1:
        raise LookupError(f"the script template has no single {before.strip()!r}")
    return text.replace(before, added + before)


def _join(chunks: list[str]) -> str:
    """Top-level chunks separated by exactly two blank lines, as PEP 8 wants; a chunk of comments
    only stays with the code below it."""
    out = ""
    for c in (c.strip("\n") for c in chunks if c.strip()):
        out += c + ("\n\n" if all(line.startswith("#") for line in c.splitlines()) else "\n\n\n")
    return out.rstrip("\n") + "\n"


def generate_script(project: Project, config: TrainConfig | None = None, filename: str = "train.py") -> str:
    doc, *parts = script_parts(project, config, filename)
    return _join([f'"""{doc.code}"""'] + [p.code for p in parts] + [_template.MAIN])

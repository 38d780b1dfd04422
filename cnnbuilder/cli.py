"""`cnnbuilder` command line: the GUI by default, and headless summary/validate/export/predict/explain/import/
layers/devices/train."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__

EXIT_OK, EXIT_INVALID, EXIT_UNREADABLE = 0, 1, 2


def _load(path: str):
    from .core.project import ProjectError, load_project

    try:
        return load_project(path)
    except ProjectError as exc:
        print(f"cnnbuilder: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_UNREADABLE) from None


def cmd_summary(args) -> int:
    from .core.inspect.formulas import all_arithmetic
    from .core.inspect.receptive import receptive_fields
    from .core.shapes import analyze, fmt_outputs
    from .core.stats import human, human_bytes

    project = _load(args.file)
    g = project.graph
    a = analyze(g)
    order = a.order or [n.id for n in g]
    fields = receptive_fields(g, a)
    if args.json:
        arith = all_arithmetic(g, a)
        nodes = []
        for nid in order:
            n, info = g.node(nid), a.nodes[nid]
            f = fields.get(nid)
            nodes.append({
                "id": nid, "name": n.name, "type": n.type,
                "output_shape": list(info.shape) if info.shape is not None else None,
                **({"output_shapes": [list(s) for s in info.outputs]} if len(info.outputs) > 1 else {}),
                "params": info.stats.params, "macs": info.stats.macs, "memory_bytes": info.stats.memory,
                "error": info.error,
                "receptive_field": _finite_pair(f.size) if f else None, "jump": _finite_pair(f.jump) if f else None,
                "field_exact": f.exact if f and f.size else None,
                "arithmetic": arith[nid].lines() if nid in arith else None,
            })
        out = {"file": args.file, "name": project.name, "nodes": nodes,
               "problems": [{"id": p.node_id, "message": p.message} for p in a.problems if p.node_id is None],
               "total_params": a.total_params, "total_macs": a.total_macs, "total_flops": 2 * a.total_macs,
               "total_memory_bytes": a.total_memory, "valid": a.ok}
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return EXIT_OK if a.ok else EXIT_INVALID
    rows = [("block", "type", "output", "params", "MACs", "memory", "field")]
    for nid in order:
        n, info = g.node(nid), a.nodes[nid]
        shape = fmt_outputs(info) if info.shape is not None else "—"
        rows.append((n.label, n.type, shape, f"{info.stats.params:,}", f"{info.stats.macs:,}",
                     human_bytes(info.stats.memory) if info.shape is not None else "",
                     fields[nid].text if nid in fields else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(f"{project.name} ({args.file})")
    for k, r in enumerate(rows):
        print("  ".join(c.ljust(widths[i]) if i < 3 or i == 6 else c.rjust(widths[i])
                        for i, c in enumerate(r)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))
    print(f"total: {a.total_params:,} trainable parameters, {human(a.total_macs)}MACs "
          f"({human(2 * a.total_macs)}FLOPs), {human_bytes(a.total_memory)} activations per sample")
    print("field: receptive field in input pixels and jump (input pixels between neighbouring outputs); "
          "≈ marks a bound")
    if args.formulas:
        arith = all_arithmetic(g, a)
        for nid in order:
            if nid in arith:
                n = g.node(nid)
                print(f"\n{n.label} ({n.type})")
                for line in arith[nid].lines():
                    print(f"  {line}")
    _print_problems(g, a)
    return EXIT_OK if a.ok else EXIT_INVALID


def _finite_pair(pair):
    import math

    if pair is None:
        return None
    return [v if math.isfinite(v) else None for v in pair]  # JSON has no Infinity


def _print_problems(g, a) -> None:
    from .core.inspect.formulas import error_arithmetic

    for p in a.root_problems:
        if p.node_id is None:
            print(f"error: {p.message}")
        else:
            n = g.node(p.node_id)
            print(f"error in {n.label} ({n.type}): {p.message}")
            where = error_arithmetic(g, p.node_id, a)
            if where:
                print(f"  {where}")


def cmd_validate(args) -> int:
    """The app's verdict: errors make the file invalid (exit 1); warnings (the model does not fit
    the training data its settings choose) are printed, and the model is still valid."""
    from .core.verdict import judge

    project = _load(args.file)
    v = judge(project.graph, _training_config(project))
    a = v.analysis
    if a.ok:
        print(f"{args.file}: valid ({len(project.graph)} blocks, output {'×'.join(map(str, a.output_shape))})"
              + (f"; {v.headline()[len('✓ valid · '):]} against {v.dataset}" if v.warnings else ""))
    else:
        print(f"{args.file}: invalid")
        _print_problems(project.graph, a)
    for w in v.warnings:
        if w.node_id is None:
            print(f"warning: {w.message}")
        else:
            n = project.graph.node(w.node_id)
            print(f"warning in {n.label} ({n.type}): {w.message}")
    return EXIT_OK if a.ok else EXIT_INVALID


def _export_code(project, args) -> tuple[str, str]:
    from .core.codegen import generate

    gen = generate(project.graph, class_name=args.class_name, title=project.name)
    return gen.code, f"class {gen.class_name}"


def _training_config(project):
    from .core.training.config import TrainConfig

    cfg = TrainConfig.from_dict(project.training)
    for note in cfg.notes:
        print(f"cnnbuilder: warning: project file: {note}", file=sys.stderr)
    return cfg


def _export_script(project, args) -> tuple[str, str]:
    from .core.export import generate_script

    name = Path(args.output).name if args.output not in (None, "-") else "train.py"
    return generate_script(project, _training_config(project), filename=name), "training script"


def _export_notebook(project, args) -> tuple[str, str]:
    from .core.export import notebook_text

    return notebook_text(project, _training_config(project)), "notebook"


# --format choices: each returns (text to write, what it is); --script is short for --format script.
EXPORT_FORMATS = {"py": _export_code, "script": _export_script, "ipynb": _export_notebook}


def cmd_export(args) -> int:
    from .core.codegen import CodegenError
    from .core.export import ExportError
    from .core.fileio import atomic_write_text

    fmt = "script" if args.script else args.format
    if args.script and args.format not in ("py", "script"):
        print(f"cnnbuilder: --script and --format {args.format} contradict each other", file=sys.stderr)
        return EXIT_INVALID
    if fmt == "onnx":
        return cmd_export_onnx(args)
    if args.weights:
        print(f"cnnbuilder: --weights goes with --format onnx (the {fmt} export holds no weights)", file=sys.stderr)
        return EXIT_INVALID
    project = _load(args.file)
    try:
        text, what = EXPORT_FORMATS[fmt](project, args)
    except (CodegenError, ExportError) as exc:
        print(f"cnnbuilder: {args.file}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        try:
            atomic_write_text(Path(args.output), text)
        except OSError as exc:
            print(f"cnnbuilder: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_UNREADABLE
        print(f"wrote {args.output} ({what})")
    return EXIT_OK


def cmd_export_onnx(args) -> int:
    from .core.export.onnx import OnnxExportError, export_onnx, onnx_missing

    if (missing := onnx_missing()) is not None:
        print(f"cnnbuilder: {missing}", file=sys.stderr)
        return EXIT_UNREADABLE
    if args.output in (None, "-"):
        print("cnnbuilder: ONNX export needs a file: -o model.onnx", file=sys.stderr)
        return EXIT_INVALID
    project = _load(args.file)
    try:
        report = export_onnx(project.graph, args.output, weights=args.weights, title=project.name)
    except OnnxExportError as exc:
        print(f"cnnbuilder: {args.file}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(report.message())
    return EXIT_OK


def _inspection(args):
    """(project, loaded model, preprocessing) for predict/explain, or an exit code after one line."""
    import os

    from .core.inspect.images import ImageError, preprocessing_for
    from .core.inspect.predict import ModelError, build
    from .core.shapes import analyze
    from .core.training.config import ConfigError, TrainConfig, shapes_fitting
    from .core.training.data import DataError

    if (args.mean is None) != (args.std is None):
        return _fail("--mean and --std go together", EXIT_INVALID)
    project = _load(args.file)
    a = analyze(project.graph)
    if a.ok and (a.output_shape is None or len(a.output_shape) != 1):
        return _fail(f"{args.file}: predictions need a model that ends in one score per class (its output is "
                     f"{'×'.join(map(str, a.output_shape or ()))})", EXIT_INVALID)
    if a.ok and (a.input_shape is None or len(a.input_shape) != 3):
        return _fail(f"{args.file}: the model takes {'×'.join(map(str, a.input_shape or ()))} inputs, not "
                     "images (C×H×W)", EXIT_INVALID)
    if os.path.isdir(args.weights):
        return _fail(f"{args.weights}: is a folder, not a weights file", EXIT_UNREADABLE)
    if not os.path.isfile(args.weights):
        return _fail(f"{args.weights}: no such weights file", EXIT_UNREADABLE)
    try:
        loaded = build(project.graph, weights=args.weights)
    except ModelError as exc:
        if exc.unreadable:
            return _fail(str(exc), EXIT_UNREADABLE)
        return _fail(f"{args.file}: {exc}" if "fix them first" in str(exc) else str(exc), EXIT_INVALID)
    a = loaded.analysis
    # The run's settings: a checkpoint carries its own; else the project's (shapes drawn at the
    # Input's size, as the editor opens an example).
    settings = loaded.config if loaded.config is not None else shapes_fitting(a.input_shape, project.training)
    cfg = TrainConfig.from_dict(settings)
    try:
        prep = preprocessing_for(cfg, a.input_shape, mean=args.mean, std=args.std)
    except DataError as exc:
        return _fail(f"cannot normalise the images as training did, which needs the training images' mean and "
                     f"std: {exc}. Give them with --mean and --std.", EXIT_UNREADABLE)
    except (ImageError, ConfigError) as exc:
        return _fail(str(exc), EXIT_INVALID)
    if prep.class_names and len(prep.class_names) != a.output_shape[0]:
        print(f"cnnbuilder: warning: the model gives {a.output_shape[0]} scores but {cfg.dataset} has "
              f"{len(prep.class_names)} classes; classes are shown by number", file=sys.stderr)
        from dataclasses import replace

        prep = replace(prep, class_names=())
    return project, loaded, prep


def _fail(message: str, code: int) -> int:
    print(f"cnnbuilder: {message}", file=sys.stderr)
    return code


def cmd_predict(args) -> int:
    from .core.inspect.explain import explain_image
    from .core.inspect.images import ImageError

    if args.top < 1:
        return _fail("--top must be at least 1", EXIT_INVALID)
    setup = _inspection(args)
    if isinstance(setup, int):
        return setup
    project, loaded, prep = setup
    results, failed = [], False
    for path in args.images:
        try:
            e = explain_image(loaded, prep, path, method=None, top=args.top)
        except ImageError as exc:
            failed = True
            print(f"cnnbuilder: {exc}", file=sys.stderr)
            results.append({"image": path, "error": str(exc), "notes": [], "top": []})
            continue
        results.append({"image": path, "error": None, "notes": list(e.image.notes),
                        "top": [{"class": r.index, "name": r.name, "probability": r.probability}
                                for r in e.prediction.top]})
    if args.json:
        print(json.dumps({"project": args.file, "weights": args.weights, "output": loaded.output,
                          "classes": loaded.analysis.output_shape[0], "images": results}, indent=2,
                         ensure_ascii=False))
    else:
        for r in results:
            if r["error"]:
                continue
            best = r["top"][0]
            print(f"{r['image']}: {best['name']} ({best['probability']:.1%})")
            if r["notes"]:
                print(f"  {'; '.join(r['notes'])}")
            width = max(len(t["name"]) for t in r["top"])
            for k, t in enumerate(r["top"], start=1):
                print(f"  {k:>2}. {t['name']:<{width}}  {t['probability']:>6.1%}")
    return EXIT_UNREADABLE if failed else EXIT_OK


def _class_index(text: str | None, names: tuple[str, ...], k: int):
    """--target as a number or a class name; None when not given."""
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    if text in names:
        return names.index(text)
    shown = ", ".join(names[:20]) + (", …" if len(names) > 20 else "")
    raise ValueError(f"--target {text!r} is neither a class number (0–{k - 1}) nor a class name"
                     + (f" ({shown})" if names else ""))


def cmd_explain(args) -> int:
    from .core.inspect.explain import METHODS, ExplainError, explain_image, overlay, save_npy, save_png
    from .core.inspect.images import ImageError
    from .core.inspect.predict import ModelError

    if not args.output and not args.npy:
        return _fail("say where the result goes: -o overlay.png and/or --npy map.npy", EXIT_INVALID)
    if not 0 <= args.opacity <= 1:
        return _fail("--opacity must be between 0 and 1", EXIT_INVALID)
    if args.method != "gradcam" and args.block:
        return _fail(f"--block goes with --method gradcam ({args.method} looks at the input)", EXIT_INVALID)
    if args.samples < 1 or not 0 <= args.noise <= 10:
        return _fail("--samples must be at least 1 and --noise between 0 and 10", EXIT_INVALID)
    setup = _inspection(args)
    if isinstance(setup, int):
        return setup
    project, loaded, prep = setup
    try:
        target = _class_index(args.target, prep.class_names, loaded.analysis.output_shape[0])
    except ValueError as exc:
        return _fail(str(exc), EXIT_INVALID)
    options = {"samples": args.samples, "noise": args.noise} if args.method == "smoothgrad" else {}
    try:
        e = explain_image(loaded, prep, args.image, method=args.method, block=args.block, target=target, **options)
    except ImageError as exc:
        return _fail(str(exc), EXIT_UNREADABLE)
    except (ExplainError, ModelError) as exc:
        return _fail(str(exc), EXIT_INVALID)
    att = e.attribution
    where = f" at {project.graph.node(att.node_id).label}" if att.node_id else ""
    best = e.prediction.top[0]
    what = (f"{METHODS[att.method]}{where} for class {att.target} '{e.target_name}' (model output "
            f"{att.score:.4g}); predicted: {best.name} {best.probability:.1%}")
    try:
        if args.output:
            save_png(overlay(e.image.display, att.map, args.opacity), args.output)
            print(f"wrote {args.output}: {what}")
        if args.npy:
            save_npy(att.map, args.npy)
            print(f"wrote {args.npy}: the raw map, float32 {att.map.shape[0]}×{att.map.shape[1]}"
                  + ("" if args.output else f"; {what}"))
    except ExplainError as exc:
        return _fail(str(exc), EXIT_UNREADABLE)
    for note in e.image.notes + ((att.note,) if att.note else ()):
        print(f"note: {note}")
    return EXIT_OK


def _add_inspection_args(p) -> None:
    p.add_argument("--weights", required=True, metavar="W",
                   help="trained weights: model.pt, model.safetensors (train --export-weights, File > Export) "
                        "or a checkpoint")
    p.add_argument("--mean", type=float, nargs="+", metavar="M",
                   help="the training images' per-channel mean (default: computed from the training data, as "
                        "training does)")
    p.add_argument("--std", type=float, nargs="+", metavar="S", help="the training images' per-channel std")


def cmd_import(args) -> int:
    """A PyTorch module as a project (exit 2 when it cannot be imported, with the reason on stderr)."""
    from .core.importer import ImportRefused, import_model, parse_input
    from .core.project import save_project

    try:
        extra = json.loads(args.args) if args.args is not None else None
    except ValueError as exc:
        return _fail(f"--args is not JSON ({exc}); e.g. --args '{{\"num_classes\": 10}}'", EXIT_UNREADABLE)
    if args.timeout <= 0:
        return _fail("--timeout must be a positive number of seconds", EXIT_UNREADABLE)
    try:
        shape = parse_input(args.input) if args.input is not None else None
        result = import_model(args.source, args=extra, input_shape=shape, weights_to=args.weights,
                              timeout=args.timeout, state_dict=args.state_dict)
    except ImportRefused as exc:
        return _fail(f"cannot import: {exc}", EXIT_UNREADABLE)
    try:
        save_project(result.project, args.output)
    except OSError as exc:
        return _fail(f"cannot write {args.output}: {exc.strerror or exc}", EXIT_UNREADABLE)
    g = result.project.graph
    n = len(g.groups)
    grouped = f" in {n} group{'s' if n != 1 else ''}" if n else ""
    print(f"wrote {args.output} ({len(g)} blocks{grouped}" + (f"; weights in {args.weights}" if result.weights else "")
          + ")")
    for note in result.notes:
        print(f"note: {note}")
    return EXIT_OK


def cmd_layers(args) -> int:
    from .core.blocks import by_category

    for cat, specs in by_category().items():
        print(f"{cat}:")
        for spec in specs:
            params = ", ".join(
                p.name + ("" if p.inferred else f"={p.default!r}") for p in spec.params
            )
            print(f"  {spec.type:<18} {spec.doc}")
            if params:
                print(f"  {'':<18} ({params})")
    return EXIT_OK


def cmd_devices(args) -> int:
    from .core.training.devices import available_devices, device_notes

    for key, label in available_devices():
        print(f"{key:<8} {label}")
    for note in device_notes():
        print(f"note: {note}")
    return EXIT_OK


def cmd_gui(args) -> int:
    try:
        from .qt.app import run
    except ImportError as exc:  # PySide6 missing or broken: say so plainly
        print(f"cnnbuilder: cannot start the GUI ({exc}); the summary/validate/export commands still work",
              file=sys.stderr)
        return EXIT_UNREADABLE
    return run(args.file)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnbuilder", description=__doc__)
    parser.add_argument("--version", action="version", version=f"cnnbuilder {__version__}")
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("gui", help="open the visual editor (the default)")
    p.add_argument("file", nargs="?", help="project to open")
    p.set_defaults(func=cmd_gui)

    p = sub.add_parser("summary", help="per-block output shape, parameters and MACs")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--formulas", action="store_true",
                   help="also show how each block's output size, parameters and MACs come out")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("validate", help="exit 0 if the project is valid, 1 if not, 2 if unreadable")
    p.add_argument("file")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("export", help="write the model as PyTorch code, a training script, a notebook or ONNX")
    p.add_argument("file")
    p.add_argument("-o", "--output", help="the file to write (default, except for onnx: standard output)")
    p.add_argument("--format", choices=(*EXPORT_FORMATS, "onnx"), default="py",
                   help="py: the model class (default); script: a standalone training script (torch and "
                        "torchvision only, runs under torchrun); ipynb: that script as a Jupyter notebook; "
                        "onnx: the model with weights, verified with onnxruntime (pip install 'cnnbuilder[onnx]')")
    p.add_argument("--script", action="store_true", help="the same as --format script")
    p.add_argument("--class-name", default="Net", help="name of the nn.Module class (default: Net)")
    p.add_argument("--weights", metavar="W", help="for onnx: model.pt, model.safetensors or a checkpoint "
                                                  "(default: untrained weights)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("predict", help="the top classes a trained model gives for image files",
                       description="Images are converted as the training data were (grayscale or colour, resized "
                                   "to the Input's size, normalised with the training images' mean and std).")
    p.add_argument("file", help="the project (.json)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    _add_inspection_args(p)
    p.add_argument("--top", type=int, default=5, metavar="K", help="how many classes to show (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("explain", help="where a trained model looks: Grad-CAM or saliency over an image",
                       description="Writes the map blended onto the image as a PNG (-o) and/or the raw map as a "
                                   "float32 array of the image's height×width (--npy), at the model's input size.")
    p.add_argument("file", help="the project (.json)")
    p.add_argument("image")
    _add_inspection_args(p)
    p.add_argument("--method", choices=("gradcam", "saliency", "smoothgrad"), default="gradcam",
                   help="gradcam (default): which regions of a block's feature map speak for the class; "
                        "saliency: which pixels change the score most; smoothgrad: saliency averaged over noisy "
                        "copies")
    p.add_argument("--block", metavar="NAME", help="for gradcam: the block to look at (default: the last "
                                                   "convolution)")
    p.add_argument("--target", metavar="CLASS", help="class number or name to explain (default: the predicted one)")
    p.add_argument("-o", "--output", metavar="PNG", help="write the overlay here")
    p.add_argument("--npy", metavar="FILE", help="write the raw map here (numpy .npy, float32 H×W)")
    p.add_argument("--opacity", type=float, default=0.5, help="of the map over the image, 0-1 (default 0.5)")
    p.add_argument("--samples", type=int, default=25, help="smoothgrad: noisy copies (default 25)")
    p.add_argument("--noise", type=float, default=0.15,
                   help="smoothgrad: noise standard deviation as a fraction of the value range (default 0.15)")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("import", help="a PyTorch module (file.py:Class or torchvision:NAME) as a project",
                       description="Traces the module with torch.fx in a separate process (importing a file runs "
                                   "its code) and maps it onto blocks; its submodules become groups. Anything no "
                                   "block can represent is refused with the file and line. See docs/import.md.")
    p.add_argument("source", help="path/to/file.py:ClassName or torchvision:NAME (e.g. torchvision:resnet18)")
    p.add_argument("-o", "--output", required=True, metavar="PROJECT", help="the project file to write (.json)")
    p.add_argument("--args", metavar="JSON",
                   help="constructor arguments as a JSON object, e.g. '{\"num_classes\": 10}'")
    p.add_argument("--input", metavar="CxHxW", help="one sample's shape, e.g. 3x224x224 (default for torchvision; "
                                                    "otherwise needed unless the module says)")
    p.add_argument("--weights", metavar="FILE", help="also write the module's weights here, per block; the "
                                                     "project's training then starts from them (fine-tuning)")
    p.add_argument("--state-dict", metavar="FILE", help="load this state_dict into the module first (e.g. "
                                                        "torchvision weights already on disk)")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S",
                   help="seconds the module may take to build and trace (default 60)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("layers", help="list the block types and their parameters")
    p.set_defaults(func=cmd_layers)

    p = sub.add_parser("devices", help="list the devices training can use (for train --device)")
    p.set_defaults(func=cmd_devices)

    from .core.training.cli import add_train_parser

    add_train_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    known = {"gui", "summary", "validate", "export", "predict", "explain", "import", "layers", "devices", "train",
             "-h", "--help", "--version"}
    if not argv or argv[0] not in known:
        argv = ["gui", *argv]  # `cnnbuilder` and `cnnbuilder model.json` open the editor
    args = parser.parse_args(argv)
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = TerminalSafe(out), TerminalSafe(err)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    finally:
        sys.stdout, sys.stderr = out, err


class TerminalSafe:
    """Everything the CLI prints passes through here: block names, ids and paths come from files,
    so escape sequences in them must not rewrite the user's screen, and lone surrogates (from
    undecodable file names) must not raise UnicodeEncodeError. Each such character is written
    as a \\uXXXX escape, which keeps --json output valid JSON."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        from .core.graph import TERMINAL_UNSAFE

        safe = TERMINAL_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
        self._stream.write(safe.encode(self.encoding or "utf-8", "backslashreplace").decode(self.encoding or "utf-8"))
        return len(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


if __name__ == "__main__":
    sys.exit(main())

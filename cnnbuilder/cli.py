"""`cnnbuilder` command line: the GUI by default, and headless summary/validate/export/layers/devices/train."""

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
    from .core.shapes import analyze, fmt_outputs
    from .core.stats import human, human_bytes

    project = _load(args.file)
    g = project.graph
    a = analyze(g)
    order = a.order or [n.id for n in g]
    if args.json:
        nodes = []
        for nid in order:
            n, info = g.node(nid), a.nodes[nid]
            nodes.append({
                "id": nid, "name": n.name, "type": n.type,
                "output_shape": list(info.shape) if info.shape is not None else None,
                **({"output_shapes": [list(s) for s in info.outputs]} if len(info.outputs) > 1 else {}),
                "params": info.stats.params, "macs": info.stats.macs, "memory_bytes": info.stats.memory,
                "error": info.error,
            })
        out = {"file": args.file, "name": project.name, "nodes": nodes,
               "problems": [{"id": p.node_id, "message": p.message} for p in a.problems if p.node_id is None],
               "total_params": a.total_params, "total_macs": a.total_macs, "total_flops": 2 * a.total_macs,
               "total_memory_bytes": a.total_memory, "valid": a.ok}
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return EXIT_OK if a.ok else EXIT_INVALID
    rows = [("block", "type", "output", "params", "MACs", "memory")]
    for nid in order:
        n, info = g.node(nid), a.nodes[nid]
        shape = fmt_outputs(info) if info.shape is not None else "—"
        rows.append((n.label, n.type, shape, f"{info.stats.params:,}", f"{info.stats.macs:,}",
                     human_bytes(info.stats.memory) if info.shape is not None else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(f"{project.name} ({args.file})")
    for k, r in enumerate(rows):
        print("  ".join(c.ljust(widths[i]) if i < 3 else c.rjust(widths[i]) for i, c in enumerate(r)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))
    print(f"total: {a.total_params:,} trainable parameters, {human(a.total_macs)}MACs "
          f"({human(2 * a.total_macs)}FLOPs), {human_bytes(a.total_memory)} activations per sample")
    _print_problems(g, a)
    return EXIT_OK if a.ok else EXIT_INVALID


def _print_problems(g, a) -> None:
    for p in a.root_problems:
        if p.node_id is None:
            print(f"error: {p.message}")
        else:
            n = g.node(p.node_id)
            print(f"error in {n.label} ({n.type}): {p.message}")


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
    known = {"gui", "summary", "validate", "export", "layers", "devices", "train", "-h", "--help", "--version"}
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

"""Copy functions out of cnnbuilder's own modules into generated files, so that an exported
script computes what the app computes from one source instead of a hand-kept duplicate."""

from __future__ import annotations

import ast
import functools
import inspect
import re

# torch is imported lazily inside the app's functions (the editor never pays for it); a script
# imports it once at the top.
_LAZY_IMPORT = re.compile(r"^[ \t]+import torch(\.nn\.functional as F)?\n", re.M)
_BLANK_AFTER_DEF = re.compile(r"(^def [^\n]*:\n)\n+", re.M)


def definitions(module, names: tuple[str, ...] | list[str]) -> str:
    """The source of the named top-level functions and assignments of `module`, in module order,
    separated by two blank lines, without the lazy torch imports."""
    return _definitions(module, tuple(names))


@functools.lru_cache(maxsize=64)  # a module's source does not change while the app runs
def _definitions(module, names: tuple[str, ...]) -> str:
    src = inspect.getsource(module)
    tree = ast.parse(src)
    lines = src.splitlines(keepends=True)
    wanted = set(names)
    parts: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            name = node.name
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
        else:
            continue
        if name in wanted:
            wanted.discard(name)
            # top-level statements start at column 0 and end at the end of their last line
            # (from the first decorator: a dataclass copied without @dataclass is not one)
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            parts.append((name, "".join(lines[first - 1:node.end_lineno]).rstrip("\n")))
    if wanted:  # a renamed function in the app must fail the export tests, not ship a broken script
        raise LookupError(f"{module.__name__} has no {', '.join(sorted(wanted))}")
    out: list[str] = []
    previous_def = False
    for _name, seg in parts:
        is_def = seg.startswith(("def ", "class ", "@"))
        if out:
            out.append("\n\n\n" if (is_def or previous_def) else "\n")
        out.append(seg)
        previous_def = is_def
    text = "".join(out) + "\n"
    text = _LAZY_IMPORT.sub("", text)
    return _BLANK_AFTER_DEF.sub(r"\1", text)

"""Fuzz: random sequences of edits with hostile names, Save, Save As and Open through the main
window, with failures of random types injected into the serializer, the writer (also half way
through a write) and the loader. Whatever happens: no exception escapes, a failed save keeps the
project modified and its file name, and every file on disk holds either its old or its new
content, never part of one, with no temporary files left beside it.

CNNB_FUZZ=long runs many more examples."""

from __future__ import annotations

import dataclasses
import os
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnbuilder.core import fileio
from cnnbuilder.core.commands import Rename, SetParam
from cnnbuilder.core.project import dumps
from cnnbuilder.qt import document as document_module

from .helpers import node_by_name

LONG = os.environ.get("CNNB_FUZZ") == "long"
EXAMPLES = int(os.environ.get("CNNB_EXAMPLES", 400 if LONG else 25))

ERRORS = [OSError, PermissionError, IsADirectoryError, FileNotFoundError, ValueError, TypeError, KeyError,
          AttributeError, RuntimeError, RecursionError, MemoryError, ZeroDivisionError, OverflowError,
          UnicodeEncodeError, NotImplementedError, AssertionError]


def _make(kind: type[BaseException]) -> BaseException:
    if kind is UnicodeEncodeError:
        return UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
    if issubclass(kind, OSError):
        return kind(28, "No space left on device")
    return kind("injected")


hostile_char = st.one_of(
    st.characters(),  # any code point but surrogates
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),  # lone surrogates
    st.characters(max_codepoint=0x1F),  # control characters, NUL included
    st.sampled_from(["\u202e", "\ufeff", "\u0301", "\U0001F600", "/", "\\", "\"", "\n"]),
)
hostile_text = st.one_of(st.text(hostile_char, max_size=40), st.builds(lambda c, n: c * n, hostile_char,
                                                                          st.integers(1000, 100_000)))
failure = st.one_of(st.none(), st.tuples(st.sampled_from(["serialize", "midwrite", "fsync", "replace"]),
                                         st.sampled_from(ERRORS), st.floats(0, 1)))
load_failure = st.one_of(st.none(), st.sampled_from(ERRORS))
op = st.one_of(
    st.tuples(st.just("rename_block"), hostile_text),
    st.tuples(st.just("rename_project"), hostile_text),
    st.tuples(st.just("save"), failure),
    st.tuples(st.just("save_as"), st.sampled_from(["a.json", "b.json", "folder.json", "no/such/c.json"]), failure),
    st.tuples(st.just("open"), st.sampled_from(["a.json", "b.json", "junk.json", "folder.json", "missing.json"]),
              load_failure, st.binary(max_size=300)),
)


def _inject(stack: ExitStack, fail) -> None:
    if fail is None:
        return
    site, kind, frac = fail
    exc = _make(kind)

    def raise_(*args, **kwargs):
        raise exc

    if site == "serialize":
        stack.enter_context(mock.patch.object(document_module, "dumps", raise_))
    elif site == "midwrite":
        def half(path, text, force=False):
            data = text.encode("utf-8", "surrogatepass")
            cut = int(len(data) * frac)

            def write(f):
                f.write(data[:cut])
                raise exc

            fileio.atomic_write(path, write, force=force)

        stack.enter_context(mock.patch.object(document_module, "atomic_write_text", half))
    else:
        stack.enter_context(mock.patch.object(fileio.os, site, raise_))


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(ops=st.lists(op, min_size=1, max_size=6))
def test_save_and_open_never_raise_and_never_leave_partial_files(window, tmp_path_factory, ops):
    d: Path = tmp_path_factory.mktemp("fuzz")
    (d / "folder.json").mkdir()
    (d / "junk.json").write_bytes(b"")
    on_disk: dict[Path, bytes] = {}  # what each file we wrote should hold
    doc = window.document
    doc.set_project(doc.project)  # a clean start for each example
    doc.project.path = None
    for step in ops:
        kind = step[0]
        if kind == "rename_block":
            nid = node_by_name(doc.graph, "fc1") if doc.graph.find("fc1") else next(iter(doc.graph)).id
            doc.push(Rename(nid, step[1]))  # may be refused (too long): that is fine
        elif kind == "rename_project":
            doc.project.name = step[1]
            fc = next((n for n in doc.graph if n.type == "Linear"), None)
            if fc is not None:
                doc.push(SetParam(fc.id, "out_features", fc.params["out_features"] % 50 + 1))
        elif kind in ("save", "save_as"):
            fail = step[-1]
            if kind == "save":
                target = doc.path
                window.answers["save_path"] = None  # an untitled project: Save As is cancelled
            else:
                target = d / step[1]
                window.answers["save_path"] = str(target)
            was_modified, old_path, errors = doc.is_modified(), doc.path, len(window.errors)
            existed = target is not None and target.exists()
            try:
                # An untitled project takes its file's name when first saved (issue 9).
                named = dataclasses.replace(doc.project, name=target.stem) \
                    if target is not None and doc.project.name == "Untitled" else doc.project
                expected = dumps(named).encode("utf-8")
            except UnicodeEncodeError:
                expected = None  # a lone surrogate in a name: this save must fail, and say so
            with ExitStack() as stack:
                _inject(stack, fail)
                ok = window.save() if kind == "save" else window.save_as()
            if ok:
                assert fail is None and expected is not None
                assert not doc.is_modified() and doc.path == target and target.read_bytes() == expected
                on_disk[target] = expected
            else:
                assert doc.is_modified() == was_modified and doc.path == old_path
                if target is not None:
                    assert len(window.errors) == errors + 1 and str(target) in window.errors[-1][1]
                    assert target.exists() == existed  # a failed save creates nothing
        else:
            _, name, load_fail, junk = step
            path = d / name
            if name == "junk.json":
                path.write_bytes(junk)
            before, errors = dumps(doc.project), len(window.errors)
            with ExitStack() as stack:
                if load_fail is not None:
                    exc = _make(load_fail)
                    stack.enter_context(mock.patch.object(document_module, "load_project",
                                                          mock.Mock(side_effect=exc)))
                ok = window.open_path(path)
            if not ok:
                assert dumps(doc.project) == before and len(window.errors) == errors + 1
                assert str(path) in window.errors[-1][1]
        for path, content in on_disk.items():
            assert path.read_bytes() == content  # old or new, never partial
        leftovers = [p.name for p in d.iterdir() if p.name.endswith((".tmp", ".bak"))]
        assert leftovers == []
    doc.undo_stack.setClean()

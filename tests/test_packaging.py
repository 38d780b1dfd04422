"""packaging/ without building (the build itself is packaging/smoke.sh, run by hand): the spec's data
lists match what pip installs, nothing cnnbuilder imports is excluded, the launcher runs the CLI."""

from __future__ import annotations

import ast
import fnmatch
import os
import shutil
import subprocess
import sys
from configparser import ConfigParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnbuilder import __version__

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "packaging"))
import bundle  # noqa: E402
import check_excludes  # noqa: E402

sys.path.remove(str(ROOT / "packaging"))


def test_bundle_data_is_what_pip_installs():
    """Every resource file pyproject's package-data installs is in the bundle, at the same place."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    src = pyproject["tool"]["setuptools"]["package-dir"]["cnnbuilder.resources"]
    wanted = set()
    for package, patterns in pyproject["tool"]["setuptools"]["package-data"].items():
        sub = package.removeprefix("cnnbuilder.resources").lstrip(".").replace(".", "/")
        for pattern in patterns:
            for path in (ROOT / src / sub).glob(pattern):
                wanted.add((str(path), f"cnnbuilder/resources/{sub}"))
    listed = set(bundle.data_files())
    assert wanted and listed == wanted
    assert all(Path(p).is_file() for p, _ in listed)
    assert any(p.endswith("mnist_cnn.json") for p, _ in listed) and any(p.endswith("app.svg") for p, _ in listed)


def test_pip_installs_every_package_of_the_source_tree():
    """pyproject lists cnnbuilder's packages by name: a new one left off installs without it (and the
    bundle, built from a pip install, lacks it; cnnbuilder.core.importer once did)."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "cnnbuilder").rglob("__init__.py")
             if "__pycache__" not in p.parts}
    assert found and found <= listed, sorted(found - listed)


def test_data_glob_that_matches_nothing_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="resources/examples"):
        bundle.data_files(tmp_path)


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def test_nothing_cnnbuilder_imports_is_excluded():
    imported = set().union(*(_imports(p) for p in (ROOT / "cnnbuilder").rglob("*.py")))
    assert "torch" in imported and "PySide6.QtWidgets" in imported  # the scan sees real imports
    clashes = {name for name in imported for ex in bundle.EXCLUDES if name == ex or name.startswith(ex + ".")}
    assert not clashes, f"cnnbuilder imports modules the bundle leaves out: {clashes}"
    for mod in bundle.HIDDEN_IMPORTS:
        assert not any(mod == ex or mod.startswith(ex + ".") for ex in bundle.EXCLUDES)


def test_dropped_files_are_only_what_the_patterns_say():
    assert bundle.dropped("torch/include/ATen/Tensor.h") == "torch/include/*"
    assert bundle.dropped("PySide6\\Qt\\translations\\qt_de.qm") == "PySide6/Qt/translations/*"
    assert bundle.dropped("PySide6/QtCore.pyi") == "*.pyi"
    for kept in ("torch/lib/libtorch_cpu.so", "PySide6/Qt/plugins/platforms/libqxcb.so", "torch/bin/torch_shm_manager",
                 "PySide6/Qt/lib/libQt6Widgets.so.6", "base_library.zip"):
        assert bundle.dropped(kept) is None, kept
    for _, dest in bundle.DATA:
        assert bundle.dropped(f"{dest}/file") is None
    saved: dict[str, int] = {}
    toc = [("torch/include/a.h", __file__, "DATA"), ("cnnbuilder/resources/icons/app.svg", __file__, "DATA")]
    assert bundle.filter_toc(toc, saved) == toc[1:]
    assert saved == {"torch/include/*": Path(__file__).stat().st_size}


@settings(max_examples=int(os.environ.get("CNNB_EXAMPLES", 80)), deadline=None)
@given(st.lists(st.text(st.characters(blacklist_characters="/\\\x00"), min_size=1, max_size=12), min_size=1,
                max_size=5))
def test_the_apps_own_files_are_never_dropped(parts):
    for _, dest in bundle.DATA:
        assert bundle.dropped("/".join([dest, *parts])) is None


def test_spec_and_scripts_parse():
    ast.parse((ROOT / "packaging" / "cnnbuilder.spec").read_text(encoding="utf-8"))
    for name in ("smoke.sh", "install-desktop-entry.sh"):
        script = ROOT / "packaging" / name
        assert os.access(script, os.X_OK), f"{name} is not executable"
        if shutil.which("bash"):
            subprocess.run(["bash", "-n", str(script)], check=True)
    out = subprocess.run([sys.executable, str(ROOT / "packaging" / "build.py"), "--help"], check=True,
                         capture_output=True, text=True).stdout
    assert "--cpu" in out and "--torch-index" in out


def test_launcher_runs_the_cli():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, str(bundle.LAUNCHER), "--version"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == f"cnnbuilder {__version__}"
    out = subprocess.run([sys.executable, str(bundle.LAUNCHER), "summary", "/no/such.json"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_desktop_entry(tmp_path):
    text = bundle.desktop_entry()
    parser = ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read_string(text)
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application" and entry["Exec"].split()[0] == "cnnbuilder"
    assert entry["Icon"] == bundle.NAME and entry["Categories"].endswith(";")
    assert bundle.ICON_SVG.is_file() and 256 in bundle.ICON_SIZES
    if shutil.which("desktop-file-validate"):
        path = tmp_path / "cnnbuilder.desktop"
        path.write_text(text)
        out = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True)
        assert out.returncode == 0 and not out.stdout.strip(), out.stdout


def test_excludes_and_drops_say_why():
    assert all(why.strip() for why in bundle.EXCLUDES.values())
    assert all(why.strip() for why in bundle.DROP_FILES.values())
    assert not any(fnmatch.fnmatch("cnnbuilder/cli.py", pat) for pat in bundle.DROP_FILES)


def test_exclusion_check_blocks_exactly_the_excluded_modules():
    block = check_excludes.Block()
    for name in ("triton", "triton.language", "pyqtgraph.opengl.items"):
        with pytest.raises(ModuleNotFoundError, match="left out of the bundle"):
            block.find_spec(name)
    for name in ("torch", "torch.testing._internal", "tritonclient", "pyqtgraph.openglx", "PySide6.QtWidgets"):
        assert block.find_spec(name) is None, name

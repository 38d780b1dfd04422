import subprocess
import sys


def test_core_imports_neither_qt_nor_pyqtgraph_nor_torch():
    code = (
        "import sys, cnnbuilder.core.graph, cnnbuilder.core.shapes, cnnbuilder.core.codegen, "
        "cnnbuilder.core.project, cnnbuilder.core.commands, cnnbuilder.core.stats, cnnbuilder.cli\n"
        "bad = [m for m in ('PySide6', 'pyqtgraph', 'torch') if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"core pulled in: {out.stdout}"


def test_every_core_module_is_qt_free():
    """All of cnnbuilder.core, found by walking the package (a new module is covered without a list)."""
    code = (
        "import sys, pkgutil, importlib, cnnbuilder.core as core\n"
        "names = [m.name for m in pkgutil.walk_packages(core.__path__, 'cnnbuilder.core.')]\n"
        "for n in names: importlib.import_module(n)\n"
        "bad = [m for m in ('PySide6', 'pyqtgraph') if m in sys.modules]\n"
        "print(len(names), ','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    count, _, bad = out.stdout.strip().partition(" ")
    assert int(count) >= 25 and bad == "", f"core pulled in: {bad}"


def test_the_guis_tensorboard_check_loads_neither_tensorboard_nor_torch():
    code = (
        "import sys\n"
        "from cnnbuilder.core.training.runlog import tensorboard_missing\n"
        "tensorboard_missing(load=False)\n"
        "print(','.join(m for m in ('tensorboard', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"the check pulled in: {out.stdout}"

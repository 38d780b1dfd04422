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

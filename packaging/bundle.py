"""What goes into the PyInstaller bundle and what stays out: read by cnnbuilder.spec at build time and
by tests/test_packaging.py without PyInstaller, so the lists below are plain data.

Every exclusion here is something cnnbuilder never runs; build.py reports the size each one saves.
"""

from __future__ import annotations

import fnmatch
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NAME = "cnnbuilder"
LAUNCHER = HERE / "launcher.py"
BUNDLE_ID = "org.cnnbuilder.cnnbuilder"  # macOS CFBundleIdentifier
ICON_SVG = REPO / "resources" / "icons" / "app.svg"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)  # the hicolor theme's usual sizes

# The app's own data, as pyproject's package-data installs it: (source glob, folder in the bundle).
DATA = [
    ("resources/examples/*.json", "cnnbuilder/resources/examples"),
    ("resources/icons/*.svg", "cnnbuilder/resources/icons"),
]

# importlib.resources.files("cnnbuilder.resources") imports the package by name, which PyInstaller's
# import scan cannot see.
HIDDEN_IMPORTS = ["cnnbuilder.resources"]

# Native libraries loaded by path (torch.ops.load_library) rather than imported, which PyInstaller's hooks
# miss: torchvision's ops (nms, roi_align, ...) and image decoders, _C_stable.so and image_stable.so since
# torchvision 0.2x (the contrib hook still looks for _C). Package: file patterns.
EXTRA_BINARIES = {"torchvision": ["*.so", "*.pyd", "*.dylib"]}

# Python modules left out, with why. None of them is imported by cnnbuilder or by what torch, torchvision,
# PySide6 and pyqtgraph import when cnnbuilder uses them; tests/test_packaging.py checks cnnbuilder's side.
EXCLUDES = {
    "triton": "torch.compile's GPU kernel compiler; cnnbuilder never compiles models",
    "torch.utils.cpp_extension": "building C++/CUDA extensions needs a compiler toolchain",
    "setuptools": "only torch.utils.cpp_extension uses it",
    "pip": "installing packages is not the app's job",
    "tkinter": "another GUI toolkit",
    "PySide6.QtTest": "Qt's test helpers; pyqtgraph imports them only if present",
    "pyqtgraph.examples": "pyqtgraph's demo programs",
    "pyqtgraph.opengl": "3-D plots; need PyOpenGL, which is not installed",
    "pyqtgraph.jupyter": "notebook widgets",
    "IPython": "interactive shells some libraries offer to use",
}

# Collected files dropped by their path in the bundle (fnmatch patterns; `*` matches across folders).
DROP_FILES = {
    "torch/include/*": "C++ headers for building extensions (the torch hook drops only .h/.hpp/.cuh)",
    "torch/share/*": "CMake files for building extensions",
    "PySide6/Qt/translations/*": "Qt's own translations; cnnbuilder installs no QTranslator",
    "*.pyi": "type stubs",
}

PLATFORM = {"win32": "windows", "darwin": "macos"}.get(sys.platform, "linux")


def data_files(repo: Path = REPO) -> list[tuple[str, str]]:
    """(file, destination folder) pairs for PyInstaller's Analysis(datas=...)."""
    out = []
    for pattern, dest in DATA:
        matches = sorted(repo.glob(pattern))
        if not matches:
            raise FileNotFoundError(f"packaging/bundle.py: nothing matches {pattern} under {repo}")
        out += [(str(p), dest) for p in matches]
    return out


def dropped(dest: str) -> str | None:
    """The DROP_FILES pattern that removes this bundle path, if any."""
    dest = dest.replace("\\", "/")
    return next((pat for pat in DROP_FILES if fnmatch.fnmatch(dest, pat)), None)


def filter_toc(toc, saved: dict[str, int]):
    """The TOC less the dropped files; adds each dropped file's size to saved[pattern]."""
    kept = []
    for entry in toc:
        pattern = dropped(entry[0])
        if pattern is None:
            kept.append(entry)
        else:
            try:
                saved[pattern] = saved.get(pattern, 0) + Path(entry[1]).stat().st_size
            except OSError:
                saved.setdefault(pattern, 0)
    return kept


def icon_png(size: int, folder: Path) -> Path:
    return folder / f"{NAME}-{size}.png"


def desktop_entry(exec_path: str = NAME, icon: str = NAME) -> str:
    """The freedesktop .desktop entry (Linux menus, AppImage)."""
    return "\n".join([
        "[Desktop Entry]",
        "Type=Application",
        "Name=cnnbuilder",
        "GenericName=Neural network designer",
        "Comment=Build convolutional neural networks visually, get PyTorch code, train them",
        f"Exec={exec_path} %f",
        f"Icon={icon}",
        "Terminal=false",
        "Categories=Science;ArtificialIntelligence;",
        "MimeType=application/json;",
        "Keywords=CNN;PyTorch;deep learning;neural network;",
        "StartupWMClass=cnnbuilder",
        "",
    ])

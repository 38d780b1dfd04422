"""Build the cnnbuilder app bundle for this OS: a clean virtualenv, PyInstaller, a release archive.

    python3 packaging/build.py              # torch as pip resolves it (Linux: the CUDA build from PyPI)
    python3 packaging/build.py --cpu        # PyTorch's CPU-only wheels: a much smaller download

Writes dist/cnnbuilder/ (the one-folder app; dist/cnnbuilder.app on macOS), the archive
dist/cnnbuilder-<version>-<os>-<arch>-<cpu|cudaX.Y>.tar.gz (.zip on Windows and macOS), on Linux a .desktop
entry and icons inside the bundle plus an AppImage when appimagetool is on PATH, and
build/build-report.json (times, sizes, what the exclusions saved). See packaging/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bundle as B  # noqa: E402

DIST = B.REPO / "dist"
BUILD = B.REPO / "build"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def log(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


def run(cmd: list, **kw) -> None:
    log(" ".join(map(str, cmd)))
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def du(path: Path) -> int:
    """Bytes in a file or folder, symlinks not followed."""
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_symlink() or p.is_file())


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def version() -> str:
    text = (B.REPO / "cnnbuilder" / "__init__.py").read_text(encoding="utf-8")
    return re.search(r'__version__ = "([^"]+)"', text).group(1)


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if B.PLATFORM == "windows" else "bin/python")


def make_venv(venv: Path, torch_index: str | None, reuse: bool) -> Path:
    py = venv_python(venv)
    if reuse and py.exists():
        log(f"reusing {venv}")
    else:
        if venv.exists():
            shutil.rmtree(venv)
        run([sys.executable, "-m", "venv", venv])
        if torch_index:  # first, so that installing cnnbuilder finds torch satisfied
            run([py, "-m", "pip", "install", "torch", "torchvision", "--index-url", torch_index])
    for stale in ("lib", "bdist." + sysconfig.get_platform()):  # setuptools' leftovers from an earlier install
        shutil.rmtree(BUILD / stale, ignore_errors=True)
    # Not editable: the bundle must hold its own copy of cnnbuilder, not a link to this checkout.
    run([py, "-m", "pip", "install", "--upgrade", f"{B.REPO}[bundle]"])
    if reuse:  # the same version number: make pip take this checkout's code anyway
        run([py, "-m", "pip", "install", "--no-deps", "--force-reinstall", B.REPO])
    return py


def site_packages(py: Path) -> Path:
    out = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         check=True, capture_output=True, text=True)
    return Path(out.stdout.strip())


def excluded_sizes(site: Path, dropped: dict[str, int]) -> dict[str, dict]:
    """What each exclusion keeps out: a module's size in the build venv, a dropped file pattern's
    collected files."""
    out = {}
    for mod, why in B.EXCLUDES.items():
        base = site.joinpath(*mod.split("."))
        size = du(base) if base.exists() else du(base.with_suffix(".py")) if base.with_suffix(".py").exists() else 0
        out[mod] = {"bytes": size, "why": why}
    for pattern, size in dropped.items():
        out[pattern] = {"bytes": size, "why": B.DROP_FILES[pattern]}
    return out


def linux_extras(app_dir: Path, icons: Path) -> None:
    """A .desktop entry and the icon at the hicolor sizes inside the bundle, and install-desktop-entry.sh
    that puts both where menus look (~/.local/share)."""
    share = app_dir / "share"
    for size in B.ICON_SIZES:
        dest = share / "icons" / "hicolor" / f"{size}x{size}" / "apps"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(B.icon_png(size, icons), dest / f"{B.NAME}.png")
    scalable = share / "icons" / "hicolor" / "scalable" / "apps"
    scalable.mkdir(parents=True, exist_ok=True)
    shutil.copy2(B.ICON_SVG, scalable / f"{B.NAME}.svg")
    (share / "applications").mkdir(parents=True, exist_ok=True)
    (share / "applications" / f"{B.NAME}.desktop").write_text(B.desktop_entry(), encoding="utf-8")
    script = app_dir / "install-desktop-entry.sh"
    shutil.copy2(B.HERE / "install-desktop-entry.sh", script)
    script.chmod(0o755)


def appimage(app_dir: Path, icons: Path, out: Path) -> str:
    """An AppDir around the bundle (hard links, no copy) and, when appimagetool is installed, the AppImage."""
    appdir = BUILD / "AppDir"
    if appdir.exists():
        shutil.rmtree(appdir)
    shutil.copytree(app_dir, appdir / "usr" / "lib" / B.NAME, copy_function=os.link, symlinks=True)
    (appdir / "AppRun").write_text(
        '#!/bin/sh\nHERE="$(dirname "$(readlink -f "$0")")"\n'
        f'exec "$HERE/usr/lib/{B.NAME}/{B.NAME}" "$@"\n', encoding="utf-8")
    (appdir / "AppRun").chmod(0o755)
    (appdir / f"{B.NAME}.desktop").write_text(B.desktop_entry(), encoding="utf-8")
    shutil.copy2(B.icon_png(256, icons), appdir / f"{B.NAME}.png")
    (appdir / ".DirIcon").symlink_to(f"{B.NAME}.png")
    tool = shutil.which("appimagetool") or shutil.which("appimagetool-x86_64.AppImage")
    if tool is None:
        return (f"AppDir built in {appdir}; no AppImage: appimagetool is not on PATH (it is neither packaged "
                "by Debian nor on PyPI; see packaging/README.md)")
    run([tool, "--no-appstream", appdir, out], env={**os.environ, "ARCH": platform.machine()})
    return f"AppImage {out} ({mib(out.stat().st_size)})"


def archive(target: Path, name: str) -> Path:
    if B.PLATFORM == "linux":
        out = DIST / f"{name}.tar.gz"
        with tarfile.open(out, "w:gz", compresslevel=6) as tar:  # keeps the symlinks PyInstaller makes
            tar.add(target, arcname=name)
        return out
    out = DIST / f"{name}.zip"
    if B.PLATFORM == "macos":  # ditto keeps the .app's symlinks and extended attributes; zipfile does not
        run(["ditto", "-c", "-k", "--keepParent", target, out])
    else:
        shutil.make_archive(str(out.with_suffix("")), "zip", target.parent, target.name)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--torch-index", metavar="URL",
                    help="install torch and torchvision from this index first, e.g. a CUDA build's "
                         "(https://download.pytorch.org/whl/cu128); default: as pip resolves them from PyPI")
    ap.add_argument("--cpu", dest="torch_index", action="store_const", const=CPU_INDEX,
                    help=f"PyTorch's CPU-only wheels (--torch-index {CPU_INDEX}): the small download")
    ap.add_argument("--reuse-venv", action="store_true",
                    help="keep build/venv-<os> from an earlier build instead of starting clean (faster reruns)")
    ap.add_argument("--no-archive", action="store_true", help="skip the release archive")
    args = ap.parse_args(argv)

    t0 = time.monotonic()
    times: dict[str, float] = {}
    venv = BUILD / f"venv-{B.PLATFORM}"
    py = make_venv(venv, args.torch_index, args.reuse_venv)
    times["virtualenv"] = time.monotonic() - t0

    t = time.monotonic()
    run([py, B.HERE / "check_excludes.py"], env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}, cwd=BUILD)
    times["exclusion check"] = time.monotonic() - t

    t = time.monotonic()
    icons = BUILD / "icons"
    run([py, B.HERE / "qt_tools.py", "icons", icons])
    drop_report = BUILD / "dropped.json"
    env = {**os.environ, "CNNB_ICON_DIR": str(icons), "CNNB_DROP_REPORT": str(drop_report)}
    env.pop("PYTHONPATH", None)  # analyse the venv's installed cnnbuilder, nothing else
    # cwd: not the checkout, whose cnnbuilder/ would shadow the installed one during the analysis.
    run([py, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN", "--distpath", DIST,
         "--workpath", BUILD / "pyinstaller", B.HERE / "cnnbuilder.spec"], env=env, cwd=BUILD)
    app_dir = DIST / B.NAME
    target = DIST / f"{B.NAME}.app" if B.PLATFORM == "macos" else app_dir
    notes = []
    if B.PLATFORM == "linux":
        linux_extras(app_dir, icons)
        arch = platform.machine()
        notes.append(appimage(app_dir, icons, DIST / f"{B.NAME}-{version()}-{arch}.AppImage"))
    times["pyinstaller"] = time.monotonic() - t

    torch_info = subprocess.run([str(py), "-c", "import torch; print(torch.__version__, torch.version.cuda)"],
                                check=True, capture_output=True, text=True).stdout.split()
    cuda = None if torch_info[1] == "None" else torch_info[1]
    flavour = "" if B.PLATFORM == "macos" else f"-cuda{cuda}" if cuda else "-cpu"  # macOS torch: CPU + MPS
    name = f"{B.NAME}-{version()}-{B.PLATFORM}-{platform.machine().lower()}{flavour}"
    out = None
    if not args.no_archive:
        t = time.monotonic()
        out = archive(target, name)
        times["archive"] = time.monotonic() - t
    times["total"] = time.monotonic() - t0

    dropped = json.loads(drop_report.read_text()) if drop_report.exists() else {}
    report = {
        "platform": B.PLATFORM, "machine": platform.machine(), "python": platform.python_version(),
        "torch": torch_info[0], "torch_cuda": cuda,
        "seconds": {k: round(v, 1) for k, v in times.items()},
        "bundle": str(target), "bundle_bytes": du(target),
        "archive": str(out) if out else None, "archive_bytes": out.stat().st_size if out else None,
        "excluded": excluded_sizes(site_packages(py), dropped), "notes": notes,
    }
    (BUILD / "build-report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    log(f"torch {report['torch']} (CUDA {report['torch_cuda'] or 'none'})")
    log(f"bundle {target}: {mib(report['bundle_bytes'])}")
    if out:
        log(f"archive {out}: {mib(report['archive_bytes'])}")
    for what, info in sorted(report["excluded"].items(), key=lambda kv: -kv[1]["bytes"]):
        log(f"  left out {what}: {mib(info['bytes'])} ({info['why']})")
    for note in notes:
        log(note)
    log("times: " + ", ".join(f"{k} {v:.0f} s" for k, v in report["seconds"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Release smoke test (by hand, not in CI: the build takes many minutes and gigabytes). Builds the bundle
# from a clean virtualenv, then runs the *bundled* executable with an empty environment (no PATH, no
# PYTHONPATH, a fresh HOME) from a scratch folder: --version, summary, export, a 20-step train on the
# built-in dataset, the GUI under Xvfb for 10 s with a screenshot, and the GUI's training process
# (spawned from the bundle) loading torch. Any failure stops it with non-zero.
#
#   packaging/smoke.sh                 # build (clean venv), then test
#   packaging/smoke.sh --cpu           # arguments go to build.py
#   SMOKE_SKIP_BUILD=1 packaging/smoke.sh   # test the bundle already in dist/
#   SMOKE_GUI_WAIT=600 ...                  # seconds to wait for the window (default 240: a busy 2-core box)
#
# Linux only (needs xvfb-run: apt-get install xvfb libxcb-cursor0 libxkbcommon-x11-0 libegl1).
# Leaves its files in build/smoke/ (gui.png is the screenshot).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
exe="$repo/dist/cnnbuilder/cnnbuilder"
out="$repo/build/smoke"
step() { printf '\n== %s\n' "$*"; }
fail() { printf 'SMOKE FAILED: %s\n' "$*" >&2; exit 1; }

if [ -z "${SMOKE_SKIP_BUILD:-}" ]; then
    step "build"
    python3 "$repo/packaging/build.py" "$@"
fi
[ -x "$exe" ] || fail "no bundle at $exe"
command -v xvfb-run >/dev/null || fail "xvfb-run is missing: apt-get install xvfb"

rm -rf "$out" && mkdir -p "$out/home" "$out/cwd"
cd "$out/cwd"  # another folder: nothing may come from the checkout
examples="$(find "$repo/dist/cnnbuilder" -path '*cnnbuilder/resources/examples' -type d)"
[ -n "$examples" ] || fail "the bundle carries no examples"
model="$examples/mnist_cnn.json"

# The bundled executable alone: no PATH, no PYTHONPATH, no virtualenv, a fresh HOME.
bare() { env -i HOME="$out/home" LANG=C.UTF-8 "$@"; }

step "--version"
bare "$exe" --version | tee "$out/version.txt"
grep -q "^cnnbuilder [0-9]" "$out/version.txt" || fail "--version printed no version"

if [ -x "$repo/build/AppDir/AppRun" ]; then
    step "AppDir's AppRun"
    bare "$repo/build/AppDir/AppRun" --version | grep -q "^cnnbuilder [0-9]" || fail "AppRun does not start the app"
fi

step "summary"
bare "$exe" summary "$model" | tee "$out/summary.txt"
grep -q "^total: 28,938 trainable parameters" "$out/summary.txt" || fail "summary has the wrong totals"

step "export"
bare "$exe" export "$model" -o "$out/model.py"
grep -q "class Net(nn.Module)" "$out/model.py" || fail "export wrote no nn.Module"
python3 -m py_compile "$out/model.py" || fail "exported code does not compile"

step "devices"
bare "$exe" devices | tee "$out/devices.txt"
grep -q "^cpu " "$out/devices.txt" || fail "the device list has no CPU"

step "import: a user's module and torchvision:resnet18 traced in the bundle's own child process, weights carried over"
cat > "$out/tiny_net.py" <<'PY'
import torch
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.head = nn.Linear(8 * 14 * 14, num_classes)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        x = nn.functional.max_pool2d(x, 2)
        return self.head(torch.flatten(x, 1))
PY
bare "$exe" import "$out/tiny_net.py:TinyNet" --input 1x28x28 -o "$out/tiny.json" --weights "$out/tiny-weights.pt" \
    2>&1 | tee "$out/import.txt"
grep -q "^wrote .*tiny.json (6 blocks; weights in" "$out/import.txt" || fail "the import of a user's module failed"
[ -s "$out/tiny-weights.pt" ] || fail "the import carried no weights over"
bare "$exe" import torchvision:resnet18 -o "$out/resnet18.json" 2>&1 | tee -a "$out/import.txt"
grep -q "^wrote .*resnet18.json (70 blocks in 15 groups)" "$out/import.txt" || fail "torchvision:resnet18 did not import"
bare "$exe" train "$out/tiny.json" --dataset shapes --train-limit 64 --batch-size 32 --epochs 1 --device cpu \
    --init-weights "$out/tiny-weights.pt" 2>&1 | tee "$out/finetune.txt"
grep -q "started from tiny-weights.pt: loaded 4 of 4 weight tensors" "$out/finetune.txt" \
    || fail "training did not start from the imported weights"

step "train: 20 steps on the built-in shapes dataset"
bare "$exe" train "$model" --dataset shapes --train-limit 640 --batch-size 32 --epochs 1 --device auto \
    --checkpoint "$out/run.ckpt" --export-weights "$out/weights" 2>&1 | tee "$out/train.txt"
grep -q "20 steps" "$out/train.txt" || fail "training did not run 20 steps"
[ -s "$out/run.ckpt" ] || fail "no checkpoint written"
ls "$out/weights"/*.safetensors >/dev/null || fail "no weights exported"

step "GUI under Xvfb for 10 s"
venv_py="$repo/build/venv-linux/bin/python"  # only to take the screenshot (it has PySide6)
xvfb-run -a -s "-screen 0 1600x1000x24" bash -c '
    set -u
    env -i HOME="$1" LANG=C.UTF-8 DISPLAY="$DISPLAY" XAUTHORITY="${XAUTHORITY:-}" CNNBUILDER_REPORT_SHOWN=1 \
        "$2" > "$3/gui.log" 2>&1 &
    app=$!
    for _ in $(seq $((2 * $6))); do grep -q "window shown" "$3/gui.log" && break; sleep 0.5; done
    grep -q "window shown" "$3/gui.log" || { echo "no window within $6 s"; kill $app; exit 1; }
    sleep 10
    kill -0 $app 2>/dev/null || { echo "the app exited during its 10 s"; exit 1; }
    "$4" "$5/packaging/qt_tools.py" screenshot "$3/gui.png" || { kill $app; exit 1; }
    kill $app; wait $app 2>/dev/null
    exit 0
' _ "$out/home" "$exe" "$out" "$venv_py" "$repo" "${SMOKE_GUI_WAIT:-240}" || { cat "$out/gui.log"; fail "GUI"; }
cat "$out/gui.log"
if grep -q "Traceback" "$out/gui.log"; then fail "the GUI logged an exception"; fi

step "GUI's training process: spawned from the bundle, loads torch; the GUI process never does"
# The editor trains in a child process (multiprocessing spawn: the bundle re-runs itself, and the
# launcher's freeze_support() turns that run into the child). CNNBUILDER_REPORT_SHOWN=ready quits
# once the child reports torch loaded, and says whether torch ever got into the GUI process.
bare env QT_QPA_PLATFORM=offscreen CNNBUILDER_REPORT_SHOWN=ready timeout "${SMOKE_GUI_WAIT:-240}" "$exe" \
    > "$out/ready.log" 2>&1 || { cat "$out/ready.log"; fail "the training process did not report ready"; }
cat "$out/ready.log"
grep -q "torch ready at .*torch in the GUI process: False" "$out/ready.log" \
    || fail "the training process did not load torch, or the GUI process imported it"

step "passed: build/smoke/ holds the outputs, build/smoke/gui.png the screenshot"

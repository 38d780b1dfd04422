"""Mutated project files through the real `cnnbuilder` command (issue 8): every run ends with exit
0, 1 or 2 and a message, never a traceback; nothing it prints carries terminal escapes or lone
surrogates; `summary --json` stays valid JSON. Files are written by the fuzzer, so the tests run
each command as a user would, in a fresh process. CNNB_FUZZ=long runs many more."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

from tests.fuzz import EXAMPLES, LONG, dump_json, mutate_bytes, mutate_json

COMMANDS = [["validate"], ["summary"], ["summary", "--json"], ["export"]]
UNSAFE = [chr(c) for c in (*range(0x00, 0x09), *range(0x0b, 0x20), *range(0x7f, 0xa0), 0x202e)]
BATCH = 20  # files per test example: one fresh interpreter runs each command on each file


def run_cli(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnbuilder.cli", *args], capture_output=True, timeout=120)


def check_run(proc: subprocess.CompletedProcess, args: list[str]) -> None:
    out = proc.stdout.decode("utf-8")  # strict: a lone surrogate would have been written as bytes
    err = proc.stderr.decode("utf-8")
    assert "Traceback" not in err, f"{args}: {err[-2000:]}"
    assert proc.returncode in (0, 1, 2), f"{args}: exit {proc.returncode}: {err[-500:]}"
    if proc.returncode == 2:
        assert err.startswith("cnnbuilder: ") and err.count("\n") == 1, err
    for ch in UNSAFE:
        assert ch not in out and ch not in err, f"{args}: raw {ch!r} printed"
    if args[0] == "summary" and "--json" in args and proc.returncode != 2:
        json.loads(out)


def write_mutants(tmp_path, seed: int, count: int) -> list[str]:
    r = random.Random(seed)
    paths = []
    for i in range(count):
        data = json.loads(r.choice(EXAMPLES).read_text())
        for _ in range(r.randint(1, 3)):
            data = mutate_json(data, r)
        raw = dump_json(data).encode("utf-8", "surrogatepass")
        if r.random() < 0.3:
            raw = mutate_bytes(raw, r)
        path = tmp_path / f"m{seed}_{i}.json"
        path.write_bytes(raw)
        paths.append(str(path))
    return paths


def test_mutated_files_through_the_cli(tmp_path):
    rounds = 40 if LONG else 4
    for k in range(rounds):
        for path in write_mutants(tmp_path, 1000 + k, BATCH):
            command = COMMANDS[int(path.rsplit("_", 1)[1].split(".")[0]) % len(COMMANDS)]
            check_run(run_cli([*command, path]), [*command, path])


def test_hostile_names_and_paths_print_safely(tmp_path):
    data = json.loads(EXAMPLES[0].read_text())
    data["name"] = "\x1b]0;owned\x07\x1b[2J"
    data["nodes"][1]["name"] = "\u202e\x9b31m\\ud800"
    raw = json.dumps(data).replace("\\\\ud800", "\\ud800").encode()
    odd = os.fsdecode(os.fsencode(tmp_path) + b"/\xff\x1b[1m.json")  # not UTF-8: a lone surrogate in Python
    with open(odd, "wb") as f:
        f.write(raw)
    for command in COMMANDS:
        check_run(run_cli([*command, odd]), command)
    (tmp_path / "plain.json").write_bytes(raw)
    for command in COMMANDS:
        check_run(run_cli([*command, str(tmp_path / "plain.json")]), command)


def test_endless_and_special_files(tmp_path):
    for path in ["/dev/zero", str(tmp_path), str(tmp_path / "missing.json")]:
        for command in COMMANDS:
            proc = run_cli([*command, path])
            check_run(proc, command)
            assert proc.returncode == 2

"""The exported script under torchrun: two CPU processes (gloo) with batch B each train exactly
like one process with batch 2B. The processes are started as two one-process "nodes" (the
multi-node path, so RANK and LOCAL_RANK differ) through torchrun's static rendezvous: with c10d the
node ranks are handed out in arrival order and the agents' exit barrier races the rendezvous
heartbeat on one store client (pytorch/pytorch#69520), which hung a CI run after training ended."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest
import torch

from .script_helpers import load_script, project, read_metrics, write_script

# No BatchNorm (its statistics are per process) and no dropout; augmentation is on, because the
# script deals the augmentation parameters out like the images.
TRAINING = {"shapes_train": 200, "shapes_test": 50, "val_split": 0.2, "epochs": 1, "batch_size": 16,
            "optimizer": "sgd", "lr": 0.05, "hflip": True, "crop_padding": 2}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    script = write_script(project(**TRAINING), tmp)
    # Only torch and torchvision: the script must not need cnnbuilder on the path.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    port = _free_port()
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
                               f"--node-rank={rank}", "--rdzv-backend=static", "--master-addr=127.0.0.1",
                               f"--master-port={port}", str(script), "--device", "cpu", "--out", str(tmp / "two")],
                              cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
             for rank in (0, 1)]
    outs = []
    try:
        outs = [node.communicate(timeout=150) for node in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:  # a hang: end both launchers and their workers, and show what they said
                os.killpg(node.pid, signal.SIGKILL)
        if len(outs) < len(nodes):
            said = [node.communicate() for node in nodes]
            pytest.fail("torchrun did not finish in 150 s:\n" + "\n".join(out + err[-3000:] for out, err in said))
    for node, (out, err) in zip(nodes, outs, strict=True):
        assert node.returncode == 0, out + err[-3000:]
    module = load_script(script)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each torchrun worker
    try:
        module.main(["--device", "cpu", "--out", str(tmp / "one"), "--batch-size", "32"])
    finally:
        torch.set_num_threads(threads)
    return tmp, [out for out, _ in outs]


def test_two_processes_with_batch_b_equal_one_with_2b(runs):
    tmp, _ = runs
    two = torch.load(tmp / "two" / "model.pt", weights_only=True)
    one = torch.load(tmp / "one" / "model.pt", weights_only=True)
    assert two.keys() == one.keys()
    start = load_script(tmp / "train.py").build_model(0).state_dict()
    for key in one:
        assert not torch.allclose(one[key], start[key]), f"{key} did not train"
        torch.testing.assert_close(two[key], one[key], rtol=0, atol=1e-5)


def test_metrics_are_all_reduced_and_rank_0_alone_reports(runs):
    tmp, stdouts = runs
    two, one = read_metrics(tmp / "two"), read_metrics(tmp / "one")
    assert len(two) == 1  # rank 1 appended nothing to rank 0's file
    for key in ("step", "train_loss", "train_acc", "val_loss", "val_acc"):
        assert two[0][key] == pytest.approx(one[0][key], rel=1e-5, abs=1e-7), key
    assert stdouts[0].count("epoch 1/1") == 1 and "2 process(es)" in stdouts[0]
    assert "epoch" not in stdouts[1] and "test accuracy" not in stdouts[1]
    saved = torch.load(tmp / "two" / "checkpoint.pt", weights_only=True)
    assert saved["config"]["batch_size"] == 32  # one step's batch over both processes

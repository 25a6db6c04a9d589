"""classify --engine ray: the same rows, in the same order, as the local engine; on a local Ray and on a
two-node cluster on 127.0.0.1. Skipped (with the reason) without the ray extra."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

ray = pytest.importorskip("ray", reason="the Ray engine needs the ray extra: pip install 'fer-edge[ray]'")

from fer_edge.cli.app import app  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, astronaut) -> Path:
    """Good and bad images, a video long enough to be split into chunks, and a truncated one."""
    from helpers import astronaut_face, group_photo

    d = tmp_path_factory.mktemp("mixed")
    cv2.imwrite(str(d / "a_one.jpg"), astronaut)
    cv2.imwrite(str(d / "b_group.png"), group_photo(astronaut))
    cv2.imwrite(str(d / "c_noface.png"), np.full((200, 300, 3), 120, np.uint8))
    (d / "d_broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (d / "e_empty.png").write_bytes(b"")
    face = cv2.resize(astronaut_face(astronaut), (140, 140))
    writer = cv2.VideoWriter(str(d / "f_clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for i in range(60):  # 6 s, sampled every 0.5 s: 12 frames, 4 chunks of 3
        frame = np.full((240, 320, 3), 90, np.uint8)
        frame[40:180, 10 + 2 * i : 150 + 2 * i] = face
        writer.write(frame)
    writer.release()
    data = (d / "f_clip.avi").read_bytes()
    (d / "g_cut.avi").write_bytes(data[: len(data) * 2 // 3])  # truncated: rows up to the cut, then an error row
    return d


def classify(*args, **env):
    return runner.invoke(app, ["classify", *map(str, args)], env=env or None)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_ray_engine_gives_the_local_rows_in_the_local_order(inputs, tiny_model, tmp_path, local_ray, fmt):
    common = [inputs, "--model", tiny_model, "--device", "cpu", "--format", fmt, "--video-every", "0.5"]
    local, distributed = tmp_path / f"local.{fmt}", tmp_path / f"ray.{fmt}"
    assert classify(*common, "--out", local).exit_code == 0
    result = classify(*common, "--out", distributed, "--engine", "ray", "--workers", "2", "--batch-size", "2",
                      "--chunk-samples", "3")
    assert result.exit_code == 0, result.output
    assert distributed.read_bytes() == local.read_bytes()
    text = local.read_text()
    assert "d_broken.jpg" in text and "stops at frame" in text and "f_clip.avi" in text  # the cases are there
    assert "Ray nodes that worked" in result.stderr
    # --resume redoes the last file and those with an error row, in both engines alike
    assert classify(*common, "--out", local, "--resume").exit_code == 0
    resumed = classify(*common, "--out", distributed, "--engine", "ray", "--resume", "--chunk-samples", "3")
    assert resumed.exit_code == 0 and distributed.read_bytes() == local.read_bytes()


def test_a_pool_the_cluster_cannot_hold_is_refused_at_once(inputs, tiny_model, tmp_path, local_ray):
    result = classify(inputs, "--model", tiny_model, "--device", "cpu", "--engine", "ray", "--workers", "6")
    assert result.exit_code == 2 and "--workers 6 needs 3 CPUs (0.5 an actor) and the cluster has 2" in result.stderr
    assert "pass --workers 4 or fewer" in result.stderr and "Traceback" not in result.output


def test_ray_engine_refuses_annotate(inputs, tiny_model, tmp_path):
    result = classify(inputs, "--model", tiny_model, "--engine", "ray", "--annotate", tmp_path / "ann")
    assert result.exit_code == 2 and "local engine only" in result.stderr


# `ray start` can return before the head lists the new node; the test must not race it
_WAIT_FOR_TWO_NODES = """
import sys, time, ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
deadline = time.time() + 90
while sum(n["Alive"] for n in ray.nodes()) < 2 or ray.cluster_resources().get("CPU", 0) < 2:
    if time.time() > deadline:
        sys.exit(f"the second node never joined: {ray.nodes()}")
    time.sleep(0.5)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_two_node_cluster_on_loopback_does_the_work_on_both(inputs, tiny_model, tmp_path):
    if ray.is_initialized():
        ray.shutdown()
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    ray_cli = [sys.executable, "-m", "ray.scripts.scripts"]
    start = subprocess.run([*ray_cli, "start", "--head", "--port", str(port), "--num-cpus", "1", "--node-ip-address",
                            "127.0.0.1", "--include-dashboard", "false", "--disable-usage-stats"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert start.returncode == 0, start.stderr[-2000:]
    try:
        join = subprocess.run([*ray_cli, "start", "--address", f"127.0.0.1:{port}", "--num-cpus", "1", "--node-ip-address",
                               "127.0.0.1", "--disable-usage-stats"], env=env, capture_output=True, text=True, timeout=120)
        assert join.returncode == 0, join.stderr[-2000:]
        wait = subprocess.run([sys.executable, "-c", _WAIT_FOR_TWO_NODES, f"127.0.0.1:{port}"], env=env, capture_output=True,
                              text=True, timeout=120)
        assert wait.returncode == 0, wait.stderr[-2000:]
        local = tmp_path / "local.csv"
        assert classify(inputs, "--model", tiny_model, "--device", "cpu", "--out", local).exit_code == 0
        out = tmp_path / "cluster.csv"
        done = subprocess.run([sys.executable, "-m", "fer_edge", "classify", str(inputs), "--model", str(tiny_model), "--device",
                               "cpu", "--out", str(out), "--address", f"127.0.0.1:{port}", "--workers", "2", "--batch-size", "1",
                               "--chunk-samples", "2"], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert out.read_bytes() == local.read_bytes()
        nodes = [line for line in done.stderr.splitlines() if "Ray nodes that worked" in line]
        assert nodes and nodes[0].split("│")[2].strip() == "2", done.stderr[-2000:]
        assert "Warning" not in done.stderr, done.stderr[-2000:]  # Ray's deprecation chatter is not the user's business
    finally:
        subprocess.run([*ray_cli, "stop", "--force"], env=env, capture_output=True, timeout=120)
        time.sleep(1)

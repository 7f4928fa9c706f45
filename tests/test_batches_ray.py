"""Batches on a real Ray cluster, started here on 127.0.0.1: a head node, and a second node joined with
`ray start --address`, killed in the middle of a batch. Ray is optional (requirements/ray.txt, which `make test`
installs into the current Blender line's venv): without it these tests are skipped.
"""

import os
import signal
import sys
import time

import pytest
from conftest import run_cli
from local_ray import head_node, kill_node, node_processes, start_node, wait_for_nodes
from test_batches import SLOW, assert_exactly_once, journal, make_photos, start_batch, wait_for_entries
from test_reliability import strict_json

pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kills process groups")]

@pytest.fixture(scope="module")
def ray_head():
    with head_node() as address:
        yield address


def test_the_workers_send_the_outputs_back_and_the_journal_moves_between_cluster_and_laptop(ray_head, tmp_path):
    src = make_photos(tmp_path / "src", 3)
    out = tmp_path / "out"
    run = run_cli("--batch", src, "-o", out, "--ray", ray_head, "--ray-return", "--format", "glb,obj", "--json")
    document = strict_json(run.stdout)
    assert run.returncode == 0, run.stderr
    assert document["batch"]["converted"] == 3 and document["batch"]["ray"]["nodes"] >= 1
    names = [f"p{i}" for i in range(3)]
    expected = sorted([f"{n}{s}" for n in names for s in (".glb", ".obj", ".mtl", "_texture.jpg")]
                      + ["image_to_mesh-journal.jsonl"])
    assert sorted(p.name for p in out.iterdir()) == expected
    assert all(len(e["outputs"]) == 4 for e in journal(out))

    local = run_cli("--batch", src, "-o", out, "--format", "glb,obj", "--jobs", "1", "--json")
    assert local.returncode == 0 and strict_json(local.stdout)["batch"]["skipped"] == 3


def test_a_node_killed_mid_batch_leaves_every_output_exactly_once(ray_head, tmp_path):
    node = start_node("--address", ray_head)
    try:
        wait_for_nodes(ray_head, 2)
        src = make_photos(tmp_path / "src", 8, size=(240, 320))
        out = tmp_path / "out"
        process = start_batch(src, "-o", out, "--ray", ray_head, *SLOW, "--json")
        wait_for_entries(out, 1, process)
        end = time.monotonic() + 120
        while not any(t.startswith(b"ray::_convert_here") for t in node_processes(node.pid).values()):
            assert process.poll() is None and time.monotonic() < end, "no photo was converted on the second node"
            time.sleep(0.01)
        kill_node(node)  # with a Ray worker converting a photo on it
        stdout, stderr = process.communicate(timeout=300)
    finally:
        kill_node(node)
    document = strict_json(stdout)
    assert process.returncode == 0, stderr
    assert document["batch"]["converted"] == 8 and document["batch"]["ray"]["nodes"] == 2
    assert_exactly_once(out, [f"p{i}" for i in range(8)], (".glb", ".blend"))


def test_a_terminated_ray_batch_keeps_whole_photos_and_a_rerun_finishes_it(ray_head, tmp_path):
    src = make_photos(tmp_path / "src", 6, size=(240, 320))
    out = tmp_path / "out"
    process = start_batch(src, "-o", out, "--ray", ray_head, *SLOW, "--json")
    wait_for_entries(out, 1, process)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    document = strict_json(stdout)
    assert process.returncode == 143 and document["exit_status"] == 143, stderr
    assert "Traceback" not in stderr
    time.sleep(2)  # a cancelled task would have written by now
    done = sorted(e["name"] for e in journal(out) if e["status"] == "done")
    assert_exactly_once(out, done, (".glb", ".blend"))

    rerun = run_cli("--batch", src, "-o", out, "--ray", ray_head, *SLOW)
    assert rerun.returncode == 0, rerun.stderr
    assert_exactly_once(out, [f"p{i}" for i in range(6)], (".glb", ".blend"))

"""Batches (`cli.py --batch SOURCE -o FOLDER`): a journal that makes a run resumable, every output exactly once and
whole however the run ends (SIGKILL included), a photo that fails or kills its worker failing alone.

The CLI runs as a user runs it: a subprocess, whose worker processes are real processes with their own bpy.
"""

import contextlib
import json
import os
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, run_cli, write_depth
from PIL import Image
from test_reliability import strict_json

JOURNAL = "image_to_mesh-journal.jsonl"


def make_photos(folder, count, size=(60, 80), depth=2.0):
    """`count` photos p0.png ... in `folder`, each with its depth map beside it (p0_depth.npy ...)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(count)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
        write_depth(folder / f"p{i}_depth.npy", np.full(size, depth, dtype=np.float32))
    return folder


def journal(out) -> list[dict]:
    return [json.loads(line) for line in (out / JOURNAL).read_text().splitlines() if line.strip()]


def glb_is_whole(path) -> bool:
    """A GLB's header states its own length: a truncated file does not match it."""
    data = path.read_bytes()
    return data[:4] == b"glTF" and struct.unpack_from("<I", data, 8)[0] == len(data)


def assert_exactly_once(out, names, formats=(".glb",)):
    """The folder holds each photo's outputs, once, whole, and nothing else but the journal."""
    expected = sorted(f"{name}{fmt}" for name in names for fmt in formats)
    assert sorted(p.name for p in out.iterdir()) == sorted([*expected, JOURNAL])
    assert all(glb_is_whole(out / name) for name in expected if name.endswith(".glb"))
    done = {e["name"]: e for e in journal(out) if e["status"] == "done"}
    assert sorted(done) == sorted(names)
    for entry in done.values():
        for output in entry["outputs"]:
            assert (out / output["path"]).stat().st_size == output["size"]


def glb_height(path) -> float:
    data = path.read_bytes()
    length = struct.unpack_from("<I", data, 12)[0]
    document = json.loads(data[20:20 + length])
    accessor = document["accessors"][document["meshes"][0]["primitives"][0]["attributes"]["POSITION"]]
    return accessor["max"][1] - accessor["min"][1]


def test_a_manifest_batch_resumes_redoes_what_changed_and_retries_failures(tmp_path):
    src = make_photos(tmp_path / "src", 3)
    (src / "corrupt.png").write_bytes(b"not a photo")
    manifest = tmp_path / "batch.csv"
    rows = ["photo,depth_map,height", "src/p0.png,src/p0_depth.npy,0.5", "src/corrupt.png,src/p0_depth.npy,",
            "src/p1.png,src/p1_depth.npy,2", "src/p2.png,src/p2_depth.npy,"]
    manifest.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"

    first = run_cli("--batch", manifest, "-o", out, "--jobs", "2", "--json")
    document = strict_json(first.stdout)
    assert first.returncode == 3 and document["exit_status"] == 3, first.stderr
    assert document["batch"] | {"seconds": 0} == {"photos": 4, "converted": 3, "skipped": 0, "failed": 1,
                                                   "failed_before": 0, "jobs": 2, "journal": str(out / JOURNAL),
                                                   "seconds": 0}
    [failed] = document["failed"]
    assert failed["photo"].endswith("corrupt.png") and "not a readable image" in failed["error"]
    assert "Traceback" not in first.stderr
    assert_exactly_once(out, ["p0", "p1", "p2"])
    assert glb_height(out / "p0.glb") == pytest.approx(0.5, rel=1e-3)  # each photo's own setting
    assert glb_height(out / "p1.glb") == pytest.approx(2.0, rel=1e-3)

    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.glb")}
    again = run_cli("--batch", manifest, "-o", out, "--json")
    document = strict_json(again.stdout)
    assert again.returncode == 3 and document["batch"]["skipped"] == 3 and document["batch"]["failed_before"] == 1
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.glb")} == before  # nothing redone

    # A changed setting, a changed photo and a repaired one: only those are converted.
    manifest.write_text("\n".join(rows).replace("src/p1_depth.npy,2", "src/p1_depth.npy,3") + "\n")
    Image.open(src / "p0.png").save(src / "corrupt.png")
    Image.fromarray(np.zeros((60, 80, 3), np.uint8)).save(src / "p2.png")
    retried = run_cli("--batch", manifest, "-o", out, "--retry-failed", "--jobs", "1", "--json")
    document = strict_json(retried.stdout)
    assert retried.returncode == 0, retried.stderr
    assert document["batch"]["converted"] == 3 and document["batch"]["skipped"] == 1
    assert sorted(r["inputs"]["photo"].split("/")[-1] for r in document["results"]) == ["corrupt.png", "p1.png", "p2.png"]
    assert glb_height(out / "p1.glb") == pytest.approx(3.0, rel=1e-3)
    assert_exactly_once(out, ["p0", "p1", "p2", "corrupt"])


def test_a_folder_or_a_glob_pairs_each_photo_with_its_depth_map(tmp_path):
    src = make_photos(tmp_path / "src", 2)
    for source in (src, f"{src}/p*.png"):
        out = tmp_path / f"out{len(str(source))}"
        run = run_cli("--batch", source, "-o", out, "--format", "glb,ply", "--jobs", "1")
        assert run.returncode == 0, run.stderr
        assert "Batch: 2 converted, 0 already done, 0 failed" in run.stderr
        assert_exactly_once(out, ["p0", "p1"], (".glb", ".ply"))


BAD_BATCHES = {
    "no photos": (["--batch", "{tmp}/empty", "-o", "{tmp}/out"], "No photos in"),
    "a file for -o": (["--batch", "{tmp}/src", "-o", "{tmp}/out.glb"], "A batch writes into one folder"),
    "photos as well": (["{tmp}/src/p0.png", "--batch", "{tmp}/src", "-o", "{tmp}/out"], "give no PHOTO"),
    "unknown column": (["--batch", "{tmp}/colour.csv", "-o", "{tmp}/out"], "unknown column 'colour'"),
    "a bad setting in a row": (["--batch", "{tmp}/bad.csv", "-o", "{tmp}/out"], "(bad.csv, row 2)"),
    "missing photo in a row": (["--batch", "{tmp}/missing.csv", "-o", "{tmp}/out"], "does not exist"),
    "zero jobs": (["--batch", "{tmp}/src", "-o", "{tmp}/out", "--jobs", "0"], "Give --jobs as a number"),
}


@pytest.mark.parametrize("case", BAD_BATCHES, ids=list(BAD_BATCHES))
def test_a_refused_batch_is_one_sentence_before_any_work(tmp_path, case, capfd):
    import cli

    make_photos(tmp_path / "src", 1)
    (tmp_path / "empty").mkdir()
    (tmp_path / "colour.csv").write_text("photo,colour\nsrc/p0.png,red\n")
    (tmp_path / "bad.csv").write_text("photo,resolution\nsrc/p0.png,1\n")
    (tmp_path / "missing.csv").write_text("photo\nsrc/nope.png\n")
    args, words = BAD_BATCHES[case]
    assert cli.main([a.format(tmp=tmp_path) for a in args] + ["--json"]) == 2
    document = strict_json(capfd.readouterr().out)
    assert words in document["error"] and document["exit_status"] == 2
    assert not (tmp_path / "out").exists()


def test_without_ray_the_cli_says_what_to_install(tmp_path):
    src = make_photos(tmp_path / "src", 1)
    hidden = tmp_path / "no-ray"
    hidden.mkdir()
    (hidden / "ray.py").write_text("raise ImportError('hidden for this test')\n")
    run = subprocess.run([sys.executable, str(ROOT / "cli.py"), "--batch", str(src), "-o",
                          str(tmp_path / "out"), "--ray", "auto"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(hidden)})
    assert run.returncode == 2, run.stderr
    assert "pip install ray==2.60.0" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "out").exists()


# --- Killed runs and killed workers ---------------------------------------------------------------------------


def start_batch(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "--batch", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONIOENCODING": "utf-8"})


def wait_for_entries(out, count, process, timeout=300):
    end = time.monotonic() + timeout
    while not ((out / JOURNAL).is_file() and len(journal(out)) >= count):
        assert process.poll() is None, ended(process)[1]
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def ended(process: subprocess.Popen, workers=(), timeout=120) -> tuple[str, str]:
    """The batch's stdout and stderr once it and its workers (who share its stderr) have ended; a worker still
    there after `timeout` fails the test, killed with whatever it started, so no test waits on it for ever."""
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        where = {pid: waiting_in(pid) for pid in [process.pid, *workers]}  # what a hang in CI was doing
        for pid in workers:  # their Python stacks, on the batch's stderr
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGUSR1)
        time.sleep(1)
        for pid in where:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            where["stderr"] = process.communicate(timeout=30)[1][-3000:]
        pytest.fail(f"the batch or a worker of it was still running {timeout} s after it was told to end: {where}")


def waiting_in(pid: int) -> str:
    """A process's state and the kernel function it waits in (/proc), or that it has gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat, open(f"/proc/{pid}/wchan") as wchan:
            return f"state {stat.read().split(') ')[1][0]}, waiting in {wchan.read() or '-'}"
    except OSError:
        return "gone"


def workers_of(pid: int) -> list[int]:
    """The batch's worker processes: its children."""
    children = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            children += [int(c) for c in f.read().split()]
    return children


def gone(pid: int, timeout=30) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ")[1].startswith("Z"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


SLOW = ("--resolution", "300", "--format", "glb,blend")  # about half a second a photo, two files each


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("kill_after", [0, 2])
def test_a_batch_killed_at_any_point_resumes_with_every_output_once_and_whole(tmp_path, kill_after):
    src = make_photos(tmp_path / "src", 5, size=(240, 320))
    out = tmp_path / "out"
    process = start_batch(src, "-o", out, "--jobs", "1", *SLOW)
    if kill_after:
        wait_for_entries(out, kill_after, process)
    else:  # in the middle of the first photo's export: its staging folder has a file
        end = time.monotonic() + 300
        while not any(f.is_file() for d in out.glob(".image_to_mesh-*") for f in d.rglob("*")):
            assert process.poll() is None and time.monotonic() < end
            time.sleep(0.005)
    workers = workers_of(process.pid)
    process.kill()
    ended(process, workers)
    assert all(gone(pid) for pid in workers)  # the workers go with their driver: no orphan writes on
    done_before = len([e for e in journal(out) if e["status"] == "done"]) if (out / JOURNAL).exists() else 0
    assert done_before >= kill_after

    rerun = run_cli("--batch", src, "-o", out, "--jobs", "1", *SLOW, "--json")
    document = strict_json(rerun.stdout)
    assert rerun.returncode == 0, rerun.stderr
    assert document["batch"]["skipped"] == done_before
    assert document["batch"]["converted"] == 5 - done_before
    assert_exactly_once(out, [f"p{i}" for i in range(5)], (".glb", ".blend"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_an_interrupted_batch_keeps_whole_photos_and_journals_them(tmp_path, signum, status):
    src = make_photos(tmp_path / "src", 6, size=(240, 320))
    out = tmp_path / "out"
    process = start_batch(src, "-o", out, "--jobs", "2", *SLOW, "--json")
    wait_for_entries(out, 1, process)
    workers = workers_of(process.pid)
    os.kill(workers[0], signal.SIGUSR1)  # asked where it is, a worker prints its stacks and goes on
    process.send_signal(signum)
    stdout, stderr = ended(process, workers, timeout=300)
    document = strict_json(stdout)
    assert process.returncode == status and document["exit_status"] == status, stderr
    assert "most recent call first" in stderr
    assert "Traceback" not in stderr and all(gone(pid) for pid in workers)
    done = sorted(e["name"] for e in journal(out) if e["status"] == "done")
    assert document["batch"]["converted"] == len(done) >= 1
    assert_exactly_once(out, done, (".glb", ".blend"))  # each photo's outputs all there and journalled, or none

    rerun = run_cli("--batch", src, "-o", out, "--jobs", "2", *SLOW)
    assert rerun.returncode == 0, rerun.stderr
    assert_exactly_once(out, [f"p{i}" for i in range(6)], (".glb", ".blend"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_photo_whose_worker_is_killed_fails_alone_and_the_batch_goes_on(tmp_path):
    src = make_photos(tmp_path / "src", 4, size=(240, 320))
    out = tmp_path / "out"
    process = start_batch(src, "-o", out, "--jobs", "1", *SLOW, "--json")
    wait_for_entries(out, 1, process)  # the worker has taken the next photo at once
    [worker] = workers_of(process.pid)
    os.kill(worker, signal.SIGKILL)  # as the kernel's out-of-memory killer does
    stdout, stderr = ended(process, timeout=300)
    document = strict_json(stdout)
    assert process.returncode == 3, stderr
    [failed] = document["failed"]
    assert failed["photo"].endswith("p1.png") and "worker process was killed" in failed["error"]
    assert document["batch"]["converted"] == 3
    assert "Traceback" not in stderr
    assert not list(out.glob(".image_to_mesh-*"))  # what the killed worker was writing went at the end

    retried = run_cli("--batch", src, "-o", out, "--jobs", "1", *SLOW, "--retry-failed")
    assert retried.returncode == 0, retried.stderr
    assert_exactly_once(out, [f"p{i}" for i in range(4)], (".glb", ".blend"))


def test_the_default_workers_fit_in_memory(monkeypatch):
    from image_to_mesh.batches import run
    from image_to_mesh.inference.settings import MeshSettings

    monkeypatch.setenv("IMAGE_TO_MESH_MEMORY_LIMIT", "1G")
    assert run.jobs_that_fit([MeshSettings(method="inflate")]) <= 1
    monkeypatch.setenv("IMAGE_TO_MESH_MEMORY_LIMIT", "64G")
    light, heavy = MeshSettings(method="depth-map", resolution=256), MeshSettings(method="depth-map", resolution=4096)
    assert run.jobs_that_fit([light]) > run.jobs_that_fit([light, heavy]) >= 1

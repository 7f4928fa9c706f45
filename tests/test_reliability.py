"""Every promise held under bad input and interruption: one sentence on stderr, with --json exactly one strict
JSON document on stdout, a documented exit status, and the output folder complete or as it was.

The CLI runs as a user runs it: a subprocess (conftest.run_cli), or for the many early refusals cli.main in
this process (the same code path up to the first file written, several times faster).
"""

import json
import os
import signal
import subprocess
import sys
import time

import cli
import numpy as np
import pytest
import tiny_models
from conftest import ROOT, files_under, run_cli, write_depth
from PIL import Image
from test_cli import photos  # noqa: F401  (the fixture: a.jpg, b.png and their depth maps)


def strict_json(text: str) -> dict:
    """Parse as strict JSON: Infinity and NaN are not JSON."""
    def refuse(constant):
        raise AssertionError(f"non-standard JSON value {constant}")
    return json.loads(text, parse_constant=refuse)


EARLY_REFUSALS = {
    "fov 0": (["--fov", "0"], "field of view must be between 0 and 180"),
    "resolution 1": (["--resolution", "1"], "resolution must be between 2"),
    "negative width": (["--width=-1"], "real width must be between 0"),
    "negative target faces": (["--target-faces=-5"], "target faces must be between 0"),
    "negative smooth": (["--smooth=-1"], "smooth must be between 0"),
    "unknown method": (["--method", "magic"], "Unknown method 'magic'"),
    "infinite height": (["--height", "inf"], "real height must be a finite number"),
    "absurd focal length": (["--focal-px", "1e-9"], "focal length (px) must be between 1 and"),
    "not a number": (["--near", "nan"], "near must be a finite number"),
    "unknown option": (["--colour", "red"], "Unrecognized arguments: --colour red"),
    "not a number for an int": (["--resolution", "lots"], "invalid int value: 'lots'"),
}


@pytest.mark.parametrize("case", EARLY_REFUSALS, ids=list(EARLY_REFUSALS))
def test_a_refused_setting_is_one_sentence_and_one_json_document(photos, case, capfd):  # noqa: F811
    extra, words = EARLY_REFUSALS[case]
    before = files_under(photos)
    status = cli.main([str(photos / "a.jpg"), "--depth-map", str(photos / "a_depth.exr"), "-o",
                       str(photos / "out"), "--json", *extra])
    out, err = capfd.readouterr()
    assert status == 2
    document = strict_json(out)
    assert words in document["error"] and document["exit_status"] == 2
    assert err.strip().splitlines() == [f"image_to_mesh: {document['error']}"]
    assert files_under(photos) == before


PLANNING_REFUSALS = {
    "missing photo": (["missing.jpg", "-o", "out"], "does not exist"),
    "a folder as the photo": ([".", "-o", "out"], "is a folder, not a photo"),
    "no -o": (["a.jpg"], "Give an output file or folder with -o"),
    "unknown extension, one photo": (["a.jpg", "-o", "out/a.xyz"], "an output file must end in one of"),
    "unknown extension, two photos": (["a.jpg", "b.png", "-o", "out/both.xyz"], "an output file must end in one of"),
    "two photos, one depth map": (["a.jpg", "b.png", "--depth-map", "a_depth.exr", "-o", "out"], "2 photos but 1"),
    "unwritable folder": (["a.jpg", "-o", "/sys/image_to_mesh/a.glb"], "Cannot write into '/sys/image_to_mesh'"),
    "a file in the way": (["a.jpg", "-o", "a.jpg/out/a.glb"], "is a file, not a folder"),
}


@pytest.mark.parametrize("case", PLANNING_REFUSALS, ids=list(PLANNING_REFUSALS))
def test_a_refused_plan_is_one_sentence_before_any_work(photos, case, capfd, monkeypatch):  # noqa: F811
    args, words = PLANNING_REFUSALS[case]
    monkeypatch.chdir(photos)
    before = files_under(photos)
    status = cli.main([*args, "--json"])
    out, err = capfd.readouterr()
    document = strict_json(out)
    assert status == 2 and words in document["error"], document
    assert err.count("\n") == 1 and document["results"] == []
    assert files_under(photos) == before


def test_list_models_and_check_photo_speak_json_too(photos, capfd):  # noqa: F811
    assert cli.main(["--list-models", "--json"]) == 0
    models = strict_json(capfd.readouterr().out)["models"]
    assert {"depth-anything-v2-small", "u2net"} <= {m["id"] for m in models}
    assert all(m["downloaded"] in (True, False) for m in models)

    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    status = cli.main([str(photos / "a.jpg"), str(photos / "broken.jpg"), "--check-photo", "--json"])
    document = strict_json(capfd.readouterr().out)
    assert status == 3 and str(photos / "a.jpg") in document["quality"]
    assert document["failed"][0]["photo"].endswith("broken.jpg") and "not a readable image" in document["failed"][0]["error"]


def test_the_blender_form_reports_a_usage_error_in_one_json_document(photos, capfd):  # noqa: F811
    from test_cli import run_as_blender

    assert run_as_blender(ROOT / "cli.py", photos / "a.jpg", "--colour", "red", "--json") == 2
    out, err = capfd.readouterr()
    assert "Unrecognized arguments" in strict_json(out)["error"] and "Traceback" not in err


# A bug in one photo must not stop a batch. The fault is injected where a bug would be (the pipeline, for one
# photo): the CLI's isolation, exit status, log and JSON are what is under test.
POISONED_RUN = """
import sys
sys.path.insert(0, sys.argv[1])
import cli
cli.load_package()
with cli._stdout_to_stderr(True):  # as the CLI itself imports Blender: its log is not the JSON's
    from image_to_mesh.operators.builders import convert

real = convert.image_to_mesh

def image_to_mesh(photo, *args):
    if "poison" in str(photo):
        raise ValueError("operands could not be broadcast together")
    return real(photo, *args)

convert.image_to_mesh = image_to_mesh
sys.exit(cli.main(sys.argv[2:]))
"""


def test_a_bug_in_one_photo_is_reported_and_the_batch_goes_on(photos):  # noqa: F811
    (photos / "poison.jpg").write_bytes((photos / "a.jpg").read_bytes())
    write_depth(photos / "poison_depth.exr", np.full((60, 80), 2.0, np.float32))
    run = subprocess.run(
        [sys.executable, "-c", POISONED_RUN, str(ROOT), *(str(photos / n) for n in ("a.jpg", "poison.jpg", "b.png")),
         "--depth-map", str(photos), "-o", str(photos / "out"), "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 3, run.stderr
    document = strict_json(run.stdout)
    assert sorted(p.name for p in (photos / "out").iterdir()) == ["a.glb", "b.glb"]
    (failure,) = document["failed"]
    assert failure["photo"].endswith("poison.jpg") and "ValueError" in failure["error"]
    log = failure["error"].rsplit("details in ", 1)[1].rstrip(".")
    assert "Traceback" in open(log, encoding="utf-8").read() and "Traceback" not in run.stderr
    assert [line for line in run.stderr.splitlines() if line.startswith("image_to_mesh:")] == [
        f"image_to_mesh: {failure['error']}"]


def test_a_photo_of_extreme_shape_is_one_sentence_not_a_crash(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40000, 2, 3), dtype=np.uint8)).save(tmp_path / "t.png")
    Image.fromarray(np.full((60, 80, 3), 200, np.uint8)).save(tmp_path / "ok.png")
    run = run_cli(tmp_path / "t.png", tmp_path / "ok.png", "--method", "inflate",
                  "-o", tmp_path / "out", "--json")
    assert "Traceback" not in run.stderr
    document = strict_json(run.stdout)
    assert document["failed"][0]["photo"].endswith("t.png") and run.returncode in (2, 3)


# --- Interruptions ---------------------------------------------------------------------------------------


def start_cli(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "cli.py"), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONIOENCODING": "utf-8"})


def wait_for(condition, process, timeout=120):
    end = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_export_leaves_every_output_whole_or_absent(motorcycle_files, tmp_path, signum, status):
    photo, depth, focal = motorcycle_files
    out = tmp_path / "out"
    formats = "glb,blend,fbx,usdc,obj,ply"
    process = start_cli(photo, "--depth-map", depth, "--focal-px", focal, "--resolution", "741", "-o", out,
                        "--format", formats, "--json")
    staged = lambda: out.is_dir() and any(f.is_file() for d in out.glob(".image_to_mesh-*") for f in d.rglob("*"))
    wait_for(staged, process)  # an exporter has started writing into the staging folder
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == status, stderr
    document = strict_json(stdout)
    assert document["exit_status"] == status and "each with all its outputs" in document["error"]
    assert "Traceback" not in stderr
    left = sorted(p.name for p in out.iterdir()) if out.exists() else []  # a folder it made goes too
    assert left in ([], sorted(["motorcycle" + s for s in (".glb", ".blend", ".fbx", ".usdc", ".obj", ".ply")]
                               + ["motorcycle_texture.jpg", "motorcycle.mtl"])), left


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_while_blender_starts_stops_the_run_without_a_traceback(tmp_path, signum, status):
    # Blender's start-up (the first `import bpy`, a second or two) enables its add-ons and prints, then swallows,
    # whatever is raised inside them: an interruption raised there printed a traceback, was lost, and could
    # leave Blender half started (an AttributeError, exit status 1). Signals sent across the start-up must
    # each stop the run with its status and one sentence.
    photo = np.full((60, 80, 3), 255, np.uint8)
    photo[15:45, 25:55] = (40, 90, 160)  # a subject on a plain background, inflated once Blender is up
    Image.fromarray(photo).save(tmp_path / "p.png")
    stopped = 0
    for delay in (0.5, 0.8, 1.1, 1.4, 1.7):
        out = tmp_path / f"out{round(delay * 10)}"
        process = start_cli(tmp_path / "p.png", "--method", "inflate", "-o", out)
        time.sleep(delay)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
        assert "Traceback" not in stderr, (delay, stderr)
        # Done first, or ended by the signal on its way out: its outputs whole. Otherwise stopped, with nothing.
        assert process.returncode in (0, -signum, status), (delay, process.returncode, stderr)
        if process.returncode == status:
            stopped += 1
            assert not out.exists() and stderr.strip().splitlines()[-1].startswith("image_to_mesh: "), stderr
    assert stopped  # at least one signal landed before the photo was done


def test_a_signal_while_the_cancel_token_is_busy_does_not_hang():
    # The handler cancels model work by setting the run's CancelToken, on the main thread, which may hold the
    # token's lock at that moment (registering an ONNX Runtime run); and more signals may follow while the
    # first is being handled. A batch worker once hung for good that way (stacks: _handle -> set -> _handle).
    script = f"""
import os, signal, sys
sys.path.insert(0, {str(ROOT)!r})
import cli
cli.load_package()
from image_to_mesh.inference.runtime.jobs import CancelToken
token = CancelToken()
with cli._Interrupts() as interrupts:
    interrupts.cancel = token
    with interrupts.shielded(), token._lock:  # as inside CancelToken.watch()
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
    print(token.is_set(), interrupts.signum)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.stdout.split() == ["True", "15"], run.stderr


def test_ctrl_c_during_a_model_run_stops_it_at_once(tmp_path):
    # Uncancelled, this model's run alone takes most of an hour (a cancelled run exits in about 2 s on a quiet
    # machine): an exit within a minute was a stopped run.
    model = tiny_models.slow_depth(tmp_path / "slow.onnx")
    Image.fromarray(np.full((60, 80, 3), 128, np.uint8)).save(tmp_path / "p.png")
    process = start_cli(tmp_path / "p.png", "--method", "model", "--model-file", model, "-o", tmp_path / "out",
                        "--cache-dir", tmp_path / "models")
    time.sleep(8)  # Blender loaded, the model running
    assert process.poll() is None
    interrupted = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and time.monotonic() - interrupted < 60, stderr
    assert stderr.strip().splitlines()[-1].startswith("image_to_mesh: Interrupted (Ctrl-C)")
    assert not (tmp_path / "out").exists()

"""Jobs that really stop: a model run cancelled on its thread, a worker process killed mid-run.

The slow model is a real ONNX graph with Depth Anything's contract whose run takes many seconds (a chain of
matrix products); cancelling must end it within a second, through ONNX Runtime's own terminate flag or by
killing the worker's process tree, and leave nothing behind.
"""

import os
import signal
import sys
import time
from dataclasses import asdict

import numpy as np
import pytest
import tiny_models
from conftest import ROOT
from image_to_mesh.inference.photo.photo import Photo
from image_to_mesh.inference.pipeline import image_to_mesh
from image_to_mesh.inference.record_files import load_record
from image_to_mesh.inference.runtime.access import ModelAccess
from image_to_mesh.inference.runtime.jobs import ProcessJob, ThreadJob
from image_to_mesh.inference.runtime.store import ModelStore
from image_to_mesh.inference.settings import MeshSettings
from PIL import Image

WORKER = [sys.executable, str(ROOT / "inference" / "runtime" / "worker.py")]


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory):
    return tiny_models.slow_depth(tmp_path_factory.mktemp("slow") / "slow.onnx")


def photo_file(folder):
    rgb = np.random.default_rng(3).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(folder / "photo.png")
    return folder / "photo.png"


def slow_settings(model):
    return MeshSettings(method="model", model_file=str(model), resolution=64)


def wait_until(condition, timeout=60.0):
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_cancelling_a_running_model_ends_the_job_within_a_second(slow_model, tmp_path):
    access = ModelAccess(ModelStore(tmp_path / "models", allow_download=False))
    job = ThreadJob()
    access.cancel = job.cancel_token
    photo = Photo("photo", np.full((120, 160, 3), 128, np.uint8), None, (160, 120))
    job.start(image_to_mesh, photo, None, slow_settings(slow_model), access)
    wait_until(lambda: job.cancel_token._runs)  # the model's run has started inside ONNX Runtime
    time.sleep(0.3)
    assert not job.done
    cancelled_at = time.monotonic()
    job.cancel()
    assert job.wait(timeout=5)
    assert time.monotonic() - cancelled_at < 1.0
    assert job.result is None and job.error == "Image to Mesh was cancelled."


def test_the_same_run_uncancelled_gives_its_mesh(slow_model, tmp_path):
    # What the cancel stopped was a real, finishing run: left alone, the same job produces a record.
    access = ModelAccess(ModelStore(tmp_path / "models", allow_download=False))
    job = ThreadJob().start(image_to_mesh, photo_file(tmp_path), None,
                            MeshSettings(method="model", model_file=str(tiny_models.slow_depth(tmp_path / "s.onnx", 5)),
                                         resolution=64), access)
    assert job.wait(timeout=120) and job.error is None
    assert len(job.result.vertices) > 0 and job.result.report.model.id == "depth-anything-v2-small"


def mesh_request(tmp_path, photo, settings: dict, folder):
    folder.mkdir()
    return {"id": "1", "task": "mesh", "photo": str(photo), "settings": settings, "folder": str(folder),
            "models": {"folder": str(tmp_path / "models")}}


def test_worker_process_meshes_a_photo_into_the_same_record(tmp_path, motorcycle_files):
    photo, depth, focal = motorcycle_files
    request = mesh_request(tmp_path, photo, {"method": "depth-map", "focal_px": focal, "resolution": 100},
                           tmp_path / "out")
    request["depth"] = str(depth)
    job = ProcessJob(WORKER, request).start()
    assert job.wait(timeout=120) and job.error is None, job.error
    record = load_record(job.result["files"]["record"])
    here = image_to_mesh(photo, depth, MeshSettings(method="depth-map", focal_px=focal, resolution=100))
    np.testing.assert_array_equal(record.vertices, here.vertices)
    np.testing.assert_array_equal(record.quads, here.quads)
    np.testing.assert_array_equal(record.texture.rgb, here.texture.rgb)
    assert record.camera.intrinsics == here.camera.intrinsics and record.report.grid == here.report.grid
    assert record.report.depth_edges == here.report.depth_edges
    assert [f.name for f in (tmp_path / "out").iterdir()] == ["record.npz"]


def process_group_alive(pid) -> bool:
    try:
        os.killpg(pid, 0)
        return True
    except ProcessLookupError:
        return False


def start_slow_worker(tmp_path, slow_model, out):
    """A worker meshing a photo with the slow model, once it is meshing."""
    request = mesh_request(tmp_path, photo_file(tmp_path), asdict(slow_settings(slow_model)), out)
    job = ProcessJob(WORKER, request).start()
    wait_until(lambda: job.status.startswith("Meshing"))
    return job


@pytest.mark.skipif(os.name == "nt", reason="process groups are POSIX")
def test_cancelling_a_worker_kills_its_process_tree_and_leaves_no_output(slow_model, tmp_path):
    out = tmp_path / "out"
    job = start_slow_worker(tmp_path, slow_model, out)
    time.sleep(1.0)  # well into the model's run
    assert not job.done
    cancelled_at = time.monotonic()
    job.cancel()
    assert time.monotonic() - cancelled_at < 1.0
    assert job.done and job.result is None and job.error == "Image to Mesh was cancelled."
    assert job.process.poll() is not None and not process_group_alive(job.process.pid)
    assert list(out.iterdir()) == []


@pytest.mark.skipif(os.name == "nt", reason="signals are POSIX")
def test_a_worker_that_dies_is_one_sentence(slow_model, tmp_path):
    out = tmp_path / "out"
    job = start_slow_worker(tmp_path, slow_model, out)
    os.kill(job.process.pid, signal.SIGKILL)  # what the out-of-memory killer does
    assert job.wait(timeout=10)
    assert job.result is None and "killed" in job.error and "\n" not in job.error
    assert list(out.iterdir()) == []


def test_a_worker_refuses_bad_input_in_one_sentence(tmp_path):
    request = mesh_request(tmp_path, tmp_path / "missing.jpg", {"method": "inflate"}, tmp_path / "out")
    job = ProcessJob(WORKER, request).start()
    assert job.wait(timeout=60)
    assert job.result is None and "does not exist" in job.error and "\n" not in job.error

"""The memory guard (inference/memory.py): a conversion that would not fit in the memory available is refused
before its mesh is made, in one sentence naming a --resolution that does fit; and that resolution does fit.

The real machine's memory is read as the guard reads it (/proc/meminfo here); IMAGE_TO_MESH_MEMORY_LIMIT, the
user's own cap for a shared machine, makes "too little memory" reproducible without starving the test machine.
"""

import json
import re
import sys

import bpy
import numpy as np
import pytest
from conftest import assert_cli_rejects, run_cli, write_depth
from image_to_mesh.inference import memory
from image_to_mesh.inference.errors import InputError
from image_to_mesh.inference.memory import MeshPlan, estimate_peak, require_memory
from PIL import Image

GB = 1 << 30


@pytest.fixture
def photo(tmp_path):
    """A 400 x 300 photo with a flat depth map 2 m away."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(tmp_path / "p.png")
    write_depth(tmp_path / "p_depth.npy", np.full((300, 400), 2.0, np.float32))
    return tmp_path


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/meminfo")
def test_available_memory_is_this_machines_memavailable(monkeypatch):
    monkeypatch.delenv(memory.LIMIT_VARIABLE, raising=False)
    meminfo = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in open("/proc/meminfo")}
    available = memory.available_memory()
    assert 0 < available <= meminfo["MemTotal"]
    assert available == pytest.approx(meminfo["MemAvailable"], rel=0.2)  # other programs come and go meanwhile


def fake_linux(root, available_kb=8_000_000, cgroup="0::/job\n", files=None):
    (root / "proc" / "self").mkdir(parents=True)
    (root / "proc" / "meminfo").write_text(f"MemTotal:       16000000 kB\nMemAvailable:   {available_kb} kB\n")
    (root / "proc" / "self" / "cgroup").write_text(cgroup)
    for name, text in (files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize("case, cgroup, files, expected", [
    ("no limit", "0::/job\n", {"sys/fs/cgroup/job/memory.max": "max\n", "sys/fs/cgroup/job/memory.current": "5\n"},
     8_000_000 * 1024),
    ("cgroup v2 limit", "0::/job\n",
     {"sys/fs/cgroup/job/memory.max": f"{3 * GB}\n", "sys/fs/cgroup/job/memory.current": f"{GB}\n"}, 2 * GB),
    ("v2 limit at the namespace's root", "0::/\n",
     {"sys/fs/cgroup/memory.max": f"{2 * GB}\n", "sys/fs/cgroup/memory.current": "0\n"}, 2 * GB),
    ("cgroup v1 limit", "4:memory:/docker/x\n1:cpu:/\n",
     {"sys/fs/cgroup/memory/memory.limit_in_bytes": f"{4 * GB}\n",
      "sys/fs/cgroup/memory/memory.usage_in_bytes": f"{GB}\n"}, 3 * GB),
    ("v1 without a limit", "4:memory:/x\n",
     {"sys/fs/cgroup/memory/x/memory.limit_in_bytes": "9223372036854771712\n",
      "sys/fs/cgroup/memory/x/memory.usage_in_bytes": "0\n"}, 8_000_000 * 1024),
])
def test_linux_memory_counts_a_containers_limit(tmp_path, case, cgroup, files, expected):
    assert memory._linux_available(fake_linux(tmp_path, cgroup=cgroup, files=files)) == expected


def test_a_users_limit_caps_the_memory_available(monkeypatch):
    monkeypatch.setenv(memory.LIMIT_VARIABLE, "512M")
    assert memory.available_memory() == 512 << 20
    monkeypatch.setenv(memory.LIMIT_VARIABLE, "1.5G")
    assert memory.available_memory() == int(1.5 * GB)
    monkeypatch.setenv(memory.LIMIT_VARIABLE, "lots")
    with pytest.raises(InputError, match="IMAGE_TO_MESH_MEMORY_LIMIT must be a size"):
        memory.available_memory()


def test_the_estimate_follows_vertices_mask_closure_and_formats():
    relief = MeshPlan((4000, 3000), 4000, 4096, formats=(".glb",))
    assert relief.vertices() == 4000 * 3000
    assert MeshPlan((4000, 3000), 8000, 4096).vertices() == 4000 * 3000  # capped at one vertex per pixel
    masked = MeshPlan((4000, 3000), 4000, 4096, coverage=0.25, closed=True)
    assert masked.vertices() == 2 * 4000 * 3000 // 4
    sizes = [estimate_peak(relief, r) for r in (500, 1000, 2000, 4000)]
    assert sizes == sorted(sizes) and sizes[-1] > 5 * sizes[0]  # the loaded photo (4096 px for the texture) stays
    # Blender's glTF exporter (when a finish needs it) costs several times the GLB written from the record.
    assert estimate_peak(MeshPlan((4000, 3000), 4000, 4096, formats=(".glb",), glb_by_blender=True)) > 5 * sizes[-1]
    assert estimate_peak(MeshPlan((4000, 3000), 4000, 4096, formats=(".glb", ".blend"))) > sizes[-1]


def test_refusal_names_the_largest_resolution_that_fits():
    plan = MeshPlan((4000, 3000), 4000, 4096, formats=(".glb", ".blend"))
    available = 2 * GB
    with pytest.raises(InputError) as refused:
        require_memory(plan, "big.jpg", available)
    sentence = str(refused.value)
    assert sentence.count(".") >= 1 and sentence.endswith(".") and "\n" not in sentence
    assert "12,000,000 vertices from 'big.jpg' written to .glb, .blend" in sentence
    fits = int(re.search(r"--resolution (\d+) or lower", sentence).group(1))
    base = 0 if "bpy" in sys.modules else memory.BPY_IMPORT
    assert base + estimate_peak(plan, fits) <= memory.HEADROOM * available < base + estimate_peak(plan, fits + 1)
    require_memory(MeshPlan((4000, 3000), fits, 4096, formats=(".glb", ".blend")), "big.jpg", available)


def test_cli_refuses_a_mesh_too_big_for_the_memory_and_the_advice_works(photo, monkeypatch):
    # A limit between what the smallest and the asked mesh need (the run's child processes inherit it).
    plan = MeshPlan((400, 300), 400, 4096, formats=(".glb", ".blend"))
    limit = (estimate_peak(plan, 2) + estimate_peak(plan)) / 2 / memory.HEADROOM
    monkeypatch.setenv(memory.LIMIT_VARIABLE, str(int(limit)))
    sentence = assert_cli_rejects(photo, "p.png", "--depth-map", "p_depth.npy", "--resolution", 400,
                                  "-o", "out/p.glb", "-o", "out/p.blend")
    assert sentence.startswith("image_to_mesh: Not enough memory for a mesh of up to 120,000 vertices from 'p.png'")
    fits = int(re.search(r"use --resolution (\d+) or lower\.$", sentence).group(1))
    assert 2 <= fits < 400
    run = run_cli("p.png", "--depth-map", "p_depth.npy", "--resolution", fits, "-o", "out/p.glb", "-o", "out/p.blend",
                  "--json", cwd=photo)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["vertices"] <= MeshPlan((400, 300), fits, 4096).vertices()


def test_a_subject_mask_counts_only_the_vertices_inside_it(tmp_path, monkeypatch):
    # Half of the photo is transparent: the plan counts half the grid, so a limit that refuses the whole grid
    # lets the masked mesh through.
    rng = np.random.default_rng(0)
    alpha = np.zeros((300, 400), np.uint8)
    alpha[:, :200] = 255
    Image.fromarray(np.dstack([rng.integers(0, 256, (300, 400, 3), dtype=np.uint8), alpha])).save(tmp_path / "p.png")
    write_depth(tmp_path / "p_depth.npy", np.full((300, 400), 2.0, np.float32))
    whole = MeshPlan((400, 300), 400, 4096, formats=(".glb",))
    half = MeshPlan((400, 300), 400, 4096, coverage=0.5, formats=(".glb",))
    limit = (estimate_peak(whole) + estimate_peak(half)) / 2 / memory.HEADROOM  # between the two
    monkeypatch.setenv(memory.LIMIT_VARIABLE, str(int(limit)))
    assert_cli_rejects(tmp_path, "p.png", "--depth-map", "p_depth.npy", "--resolution", 400, "-o", "out/p.glb")
    run = run_cli("p.png", "--depth-map", "p_depth.npy", "--resolution", 400, "--mask", "alpha", "-o", "out/p.glb",
                  cwd=tmp_path)
    assert run.returncode == 0, run.stderr


def test_sidebar_operator_refuses_too_big_a_mesh_naming_the_resolution_and_leaves_the_scene(photo, monkeypatch):
    plan = MeshPlan((400, 300), 400, 4096)  # into the scene: no file formats
    monkeypatch.setenv(memory.LIMIT_VARIABLE, str(int((estimate_peak(plan, 2) + estimate_peak(plan)) / 2 / memory.HEADROOM)))
    before = (len(bpy.data.objects), len(bpy.data.meshes), len(bpy.data.images))
    with pytest.raises(RuntimeError, match=r"Not enough memory for a mesh of up to 120,000 vertices from 'p': .*; "
                                           r"set Resolution to \d+ or lower\."):
        bpy.ops.image_to_mesh.generate(photo_path=str(photo / "p.png"), depth_path=str(photo / "p_depth.npy"),
                                       method="depth-map", resolution=400)
    assert before == (len(bpy.data.objects), len(bpy.data.meshes), len(bpy.data.images))

"""Closed, correctly scaled objects from a product photo, end to end in Blender: the subject mask, the
closures, --method inflate with no network at all, real-world scale, finish, and the photo check."""

import json
import os
import subprocess
import sys

import bmesh
import bpy
import numpy as np
import pytest
from bpy_extras.object_utils import world_to_camera_view
from conftest import ROOT
from mathutils import Vector
from PIL import Image, ImageFilter


@pytest.fixture(scope="module")
def coffee(tmp_path_factory):
    """scikit-image's coffee cup (CC0): one object on a table, the product-shot case."""
    from skimage.data import coffee

    path = tmp_path_factory.mktemp("coffee") / "coffee.png"
    Image.fromarray(coffee()).save(path)
    return path


def generate(**props):
    return bpy.ops.image_to_mesh.generate(**props)


def the_mesh(scene):
    (obj,) = [o for o in scene.objects if o.type == "MESH"]
    return obj


def assert_watertight(obj):
    """Every edge between exactly two faces, consistent normals, a positive enclosed volume."""
    bm = bmesh.new()
    bm.from_object(obj, bpy.context.evaluated_depsgraph_get())
    try:
        assert all(len(e.link_faces) == 2 for e in bm.edges)
        assert all(e.is_contiguous for e in bm.edges)  # neighbouring faces wind consistently
        assert bm.calc_volume(signed=True) > 0  # normals point outward
    finally:
        bm.free()


def world_vertices(obj):
    co = np.empty(len(obj.data.vertices) * 3, np.float32)
    obj.data.vertices.foreach_get("co", co)
    matrix = np.array(obj.matrix_world)
    return co.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]


def test_inflate_turns_a_product_photo_into_a_closed_textured_object_offline(coffee, tmp_path):
    # No network at all: every socket connection fails in this process.
    script = f"""
import runpy, socket, sys
def refuse(*args, **kwargs):
    raise OSError("networking is unavailable in this test")
socket.socket.connect = refuse
socket.create_connection = refuse
sys.argv = ["blender", "-b", "--python", {str(ROOT / 'cli.py')!r}, "--", {str(coffee)!r}, "--method", "inflate",
            "--height", "0.1", "-o", {str(tmp_path / 'coffee.blend')!r}, "-o", {str(tmp_path / 'coffee.glb')!r}, "--json"]
runpy.run_path(sys.argv[3], run_name="__main__")
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)["results"][0]
    assert result["method"] == "inflate" and result["closure"] == "inflate" and result["mask"]["method"] == "u2netp"
    for check in ("resolution", "sharpness", "coverage", "contrast", "exposure"):
        assert {"value", "verdict"} <= set(result["quality"][check])
    assert result["quality"]["resolution"]["verdict"] == "poor"  # a 600-pixel photo, and the user is told
    assert (tmp_path / "coffee.glb").read_bytes()[:4] == b"glTF"

    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "coffee.blend"))
    obj = the_mesh(bpy.context.scene)
    assert_watertight(obj)
    z = world_vertices(obj)[:, 2]
    assert z.max() - z.min() == pytest.approx(0.1, abs=1e-4)  # --height
    assert z.min() == pytest.approx(0.0, abs=1e-6)  # standing on the ground at the origin


@pytest.mark.parametrize("closure", ["solidify", "mirror", "inflate"])
def test_each_closure_of_a_masked_depth_mesh_is_watertight_and_lines_up(empty_scene, motorcycle_files, closure):
    photo, depth, focal = motorcycle_files
    fov = float(np.degrees(2 * np.arctan(741 / 2 / focal)))
    assert generate(photo_path=str(photo), method="depth-map", depth_path=str(depth), fov=fov,
                    resolution=160, mask="u2netp", closure=closure, width=2.0) == {"FINISHED"}
    obj = the_mesh(empty_scene)
    assert_watertight(obj)
    co = world_vertices(obj)
    assert co[:, 0].max() - co[:, 0].min() == pytest.approx(2.0, abs=1e-4)  # --width, exact
    # Scaling moved the camera with the object, and the back and rim sit on the front's view rays: every
    # vertex still lands on the pixel its UV names.
    camera, scene = empty_scene.camera, empty_scene
    uv = np.empty((len(obj.data.loops), 2), np.float32)
    obj.data.uv_layers["UVMap"].uv.foreach_get("vector", uv.ravel())
    corner_vert = np.empty(len(obj.data.loops), np.int32)
    obj.data.loops.foreach_get("vertex_index", corner_vert)
    for corner in range(0, len(corner_vert), max(1, len(corner_vert) // 300)):
        x, y, _ = world_to_camera_view(scene, camera, Vector(co[corner_vert[corner]]))
        assert abs(x - uv[corner, 0]) * 741 <= 0.5 and abs(y - uv[corner, 1]) * 500 <= 0.5


def test_finish_keeps_decimate_live_or_applies_it(empty_scene, motorcycle_files):
    photo, depth, _ = motorcycle_files
    generate(photo_path=str(photo), method="depth-map", depth_path=str(depth), resolution=200,
             target_faces=5000, smooth=2)
    obj = the_mesh(empty_scene)
    assert [m.type for m in obj.modifiers] == ["SMOOTH", "DECIMATE"]
    triangles = sum(len(p.vertices) - 2 for p in obj.data.polygons)
    assert obj.modifiers["Decimate (Image to Mesh)"].ratio == pytest.approx(5000 / triangles)

    bpy.ops.wm.read_homefile(use_empty=True)
    generate(photo_path=str(photo), method="depth-map", depth_path=str(depth), resolution=200,
             target_faces=5000, apply_finish=True)
    obj = the_mesh(bpy.context.scene)
    assert not obj.modifiers and 4000 < len(obj.data.polygons) < 6000 and obj.active_material is not None
    assert obj.data.name == "motorcycle"


def test_sidebar_checks_the_photo_before_running(empty_scene, coffee, tmp_path):
    settings = empty_scene.image_to_mesh
    settings.photo_path = str(coffee)
    report = json.loads(settings.quality_report)
    assert report["sharpness"]["verdict"] == "good" and report["coverage"]["value"] > 0.3

    blurred = tmp_path / "blurred.png"
    Image.open(coffee).filter(ImageFilter.GaussianBlur(3)).save(blurred)
    settings.photo_path = str(blurred)
    assert json.loads(settings.quality_report)["sharpness"]["verdict"] == "poor"

    from test_blender import draw_panel

    labels = [kwargs.get("text", "") for name, _, kwargs in draw_panel(empty_scene).log if name == "label"]
    assert "Photo check" in labels and any(label.startswith("Sharpness") for label in labels)


def test_cli_checks_photos_before_converting(coffee, tmp_path):
    blurred = tmp_path / "blurred.png"
    Image.open(coffee).filter(ImageFilter.GaussianBlur(3)).save(blurred)
    run = subprocess.run([sys.executable, str(ROOT / "cli.py"), str(coffee), str(blurred), "--check-photo", "--json"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    quality = json.loads(run.stdout)["quality"]
    assert quality[str(coffee)]["sharpness"]["verdict"] == "good"
    assert quality[str(blurred)]["sharpness"]["verdict"] == "poor"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blurred.png"]  # nothing written


def test_feathered_mask_gives_the_texture_soft_edges(empty_scene, coffee):
    assert generate(photo_path=str(coffee), method="inflate", feather=8.0) == {"FINISHED"}
    material = the_mesh(empty_scene).active_material
    bsdf = next(n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    (link,) = bsdf.inputs["Alpha"].links
    image = link.from_node.image
    pixels = np.empty(image.size[0] * image.size[1] * 4, np.float32)
    image.pixels.foreach_get(pixels)
    alpha = pixels[3::4]
    assert (alpha == 0).any() and (alpha == 1).any() and ((alpha > 0.05) & (alpha < 0.95)).mean() > 0.005

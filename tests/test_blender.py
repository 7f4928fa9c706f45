"""Inside real Blender: the operator, the sidebar, and the Middlebury motorcycle with its true depth.

The Middlebury 2014 motorcycle (shipped with scikit-image) comes with true disparity and calibration, so the
mesh can be checked against ground truth nobody here wrote: every vertex seen through the created camera
lands on its pixel and keeps the true depth, and no face spans a true depth discontinuity.
"""

import json
import math
import os
import runpy
import shutil
import subprocess
import sys

import bpy
import numpy as np
import pytest
from bpy_extras.object_utils import world_to_camera_view
from conftest import ROOT
from image_to_mesh.inference.geometry.grid_mesh import DEFAULT_EDGE_THRESHOLD_DEG
from mathutils import Vector


def fov_deg(width, focal_px):
    return math.degrees(2 * math.atan(width / (2 * focal_px)))


def generate(**props):
    """The operator with a depth map file unless the test says otherwise."""
    return bpy.ops.image_to_mesh.generate(**{"method": "depth-map", **props})


def mesh_object(scene):
    (obj,) = [o for o in scene.objects if o.type == "MESH"]
    return obj


def vertex_arrays(obj):
    """World positions (N, 3) and per-vertex UVs (N, 2) of a mesh object."""
    mesh = obj.data
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    world = np.array(obj.matrix_world)
    co = co.reshape(-1, 3) @ world[:3, :3].T + world[:3, 3]
    corner_vert = np.empty(len(mesh.loops), np.int32)
    mesh.loops.foreach_get("vertex_index", corner_vert)
    corner_uv = np.empty(len(mesh.loops) * 2, np.float32)
    mesh.uv_layers["UVMap"].uv.foreach_get("vector", corner_uv)
    uv = np.empty((len(mesh.vertices), 2), np.float32)
    uv[corner_vert] = corner_uv.reshape(-1, 2)
    return co, uv


def face_vertex_lists(mesh):
    starts = np.empty(len(mesh.polygons), np.int32)
    totals = np.empty(len(mesh.polygons), np.int32)
    mesh.polygons.foreach_get("loop_start", starts)
    mesh.polygons.foreach_get("loop_total", totals)
    corner_vert = np.empty(len(mesh.loops), np.int32)
    mesh.loops.foreach_get("vertex_index", corner_vert)
    return starts, totals, corner_vert


@pytest.fixture
def motorcycle_mesh(empty_scene, motorcycle_files):
    photo, depth, focal = motorcycle_files
    assert generate(photo_path=str(photo), depth_path=str(depth), fov=fov_deg(741, focal)) == {"FINISHED"}
    return mesh_object(empty_scene)


def camera_view(scene, camera, points):
    """Pixel coordinates and depth along the camera axis, by Blender's own projection."""
    width, height = scene.render.resolution_x, scene.render.resolution_y
    out = np.array([tuple(world_to_camera_view(scene, camera, Vector(p))) for p in points])
    return out[:, 0] * width, (1 - out[:, 1]) * height, out[:, 2]


# --- Ground truth: the Middlebury motorcycle ------------------------------------------------------------


def test_mesh_seen_through_its_camera_lands_on_the_photo_and_keeps_the_true_depth(motorcycle_mesh, motorcycle):
    _photo, depth, _focal = motorcycle
    scene = bpy.context.scene
    camera = scene.camera
    assert camera.parent == motorcycle_mesh and (scene.render.resolution_x, scene.render.resolution_y) == (741, 500)

    co, uv = vertex_arrays(motorcycle_mesh)
    sample = np.random.default_rng(0).choice(len(co), 4000, replace=False)
    u, v, z = camera_view(scene, camera, co[sample])
    expected_u, expected_v = uv[sample, 0] * 741, (1 - uv[sample, 1]) * 500
    assert np.abs(u - expected_u).max() <= 0.5 and np.abs(v - expected_v).max() <= 0.5
    true_depth = depth[expected_v.astype(int), expected_u.astype(int)]
    np.testing.assert_allclose(z, true_depth, rtol=1e-4)


def test_scaling_the_mesh_moves_its_camera_and_keeps_the_alignment(motorcycle_mesh):
    scene = bpy.context.scene
    motorcycle_mesh.scale = (2.0, 2.0, 2.0)
    motorcycle_mesh.location = (1.0, -3.0, 0.5)
    bpy.context.view_layer.update()
    co, uv = vertex_arrays(motorcycle_mesh)
    u, v, _ = camera_view(scene, scene.camera, co[::97])
    assert np.abs(u - uv[::97, 0] * 741).max() <= 0.5 and np.abs(v - (1 - uv[::97, 1]) * 500).max() <= 0.5


def test_no_face_bridges_a_true_depth_discontinuity_and_true_surface_stays(empty_scene, motorcycle_files, motorcycle):
    # Full resolution: every face joins neighbouring pixels, so each can be judged against the ground truth.
    photo, depth_file, focal = motorcycle_files
    _photo, depth, _ = motorcycle
    generate(photo_path=str(photo), depth_path=str(depth_file), fov=fov_deg(741, focal), resolution=741)
    obj = mesh_object(empty_scene)
    _co, uv = vertex_arrays(obj)
    pixel_depth = depth[((1 - uv[:, 1]) * 500).astype(int), (uv[:, 0] * 741).astype(int)]
    starts, totals, corner_vert = face_vertex_lists(obj.data)
    corner_depth = pixel_depth[corner_vert]
    ratio = np.maximum.reduceat(corner_depth, starts) / np.minimum.reduceat(corner_depth, starts)
    assert np.isfinite(corner_depth).all() and ratio.max() < 1.05  # a 5 % jump between neighbours is a cut

    # Cells of clearly continuous true surface (< 1 % depth change across the cell) are all kept.
    d = depth
    cells = np.stack([d[:-1, :-1], d[1:, :-1], d[1:, 1:], d[:-1, 1:]])
    with np.errstate(invalid="ignore"):
        continuous = cells.max(axis=0) / cells.min(axis=0) < 1.01  # False where a corner has no depth
    covered = np.zeros_like(continuous)
    top_left = np.minimum.reduceat(((1 - uv[:, 1]) * 500).astype(int)[corner_vert], starts), np.minimum.reduceat(
        (uv[:, 0] * 741).astype(int)[corner_vert], starts
    )
    covered[top_left] = True
    assert covered[continuous].mean() > 0.99


def test_exported_glb_passes_the_khronos_validator(empty_scene, motorcycle_files, tmp_path):
    photo, depth, focal = motorcycle_files
    glb = tmp_path / "motorcycle.glb"
    saved = sys.argv
    sys.argv = ["blender", "-b", "--python", str(ROOT / "cli.py"), "--", str(photo), "--depth-map", str(depth),
                "--focal-px", str(focal), "-o", str(glb)]
    try:
        with pytest.raises(SystemExit) as done:
            runpy.run_path(str(ROOT / "cli.py"), run_name="__main__")
    finally:
        sys.argv = saved
    assert done.value.code == 0
    node = shutil.which("node")
    assert node, "Node.js is needed for Khronos' glTF validator"
    run = subprocess.run([node, str(ROOT / "tests" / "validate_gltf.cjs"), str(glb)], capture_output=True, text=True,
                         env=dict(os.environ, NODE_PATH=str(ROOT / ".cache" / "node" / "node_modules")))
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"]
    assert report["info"]["hasTextures"] and report["info"]["totalVertexCount"] > 100_000


# --- What the operator builds ---------------------------------------------------------------------------


def test_world_placement_as_seen_from_front_view(motorcycle_mesh):
    co, _ = vertex_arrays(motorcycle_mesh)
    np.testing.assert_allclose((co.min(axis=0) + co.max(axis=0)) / 2, 0, atol=1e-4)  # centred on the origin
    camera = bpy.context.scene.camera.matrix_world
    forward, up = camera.to_3x3() @ Vector((0, 0, -1)), camera.to_3x3() @ Vector((0, 1, 0))
    np.testing.assert_allclose(forward, (0, 1, 0), atol=1e-6)  # looking along +Y
    np.testing.assert_allclose(up, (0, 0, 1), atol=1e-6)  # level, photo vertical along Z
    assert camera.translation.y < co[:, 1].min()  # in front of the mesh


def test_material_is_the_packed_photo_in_srgb(motorcycle_mesh):
    material = motorcycle_mesh.active_material
    bsdf = next(n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    (link,) = bsdf.inputs["Base Color"].links
    image = link.from_node.image
    assert link.from_node.type == "TEX_IMAGE" and image.packed_file is not None
    assert tuple(image.size) == (741, 500) and image.colorspace_settings.name == "sRGB"
    assert motorcycle_mesh.name == "motorcycle" and bpy.context.scene.camera.data.type == "PERSP"


def test_operator_takes_the_sidebar_settings_and_reports_bad_input_without_changing_the_scene(
    empty_scene, motorcycle_files
):
    photo, depth, _ = motorcycle_files
    settings = empty_scene.image_to_mesh
    settings.photo_path, settings.depth_path, settings.resolution = str(photo), str(depth), 64
    settings.method = "depth-map"
    assert bpy.ops.image_to_mesh.generate() == {"FINISHED"}
    assert len(mesh_object(empty_scene).data.vertices) <= 64 * 44

    before = (len(bpy.data.objects), len(bpy.data.meshes), len(bpy.data.images), len(bpy.data.materials))
    with pytest.raises(RuntimeError, match="does not exist"):
        generate(photo_path=str(photo.with_name("missing.jpg")))
    assert before == (len(bpy.data.objects), len(bpy.data.meshes), len(bpy.data.images), len(bpy.data.materials))


def test_operator_uses_an_image_already_in_the_blend(empty_scene, motorcycle_files):
    photo, depth, _ = motorcycle_files
    settings = empty_scene.image_to_mesh
    settings.photo_source, settings.depth_path = "IMAGE", str(depth)
    settings.image = bpy.data.images.load(str(photo))
    assert generate(resolution=100) == {"FINISHED"}

    painted = bpy.data.images.new("painted", 74, 50)  # no file: its pixels are the photo
    settings.image = painted
    assert generate(resolution=100) == {"FINISHED"}
    assert {o.name for o in empty_scene.objects if o.type == "MESH"} == {"motorcycle", "painted"}


def test_operator_supports_adjust_last_operation():
    op = bpy.types.IMAGE_TO_MESH_OT_generate
    assert {"REGISTER", "UNDO"} <= op.bl_options
    shown = set(bpy.ops.image_to_mesh.generate.get_rna_type().properties.keys())
    assert {"resolution", "edge_threshold", "depth_scale", "fov", "depth_kind", "mask"} <= shown


def test_redo_with_new_settings_replaces_the_result(empty_scene, motorcycle_files):
    photo, depth, _ = motorcycle_files
    generate(photo_path=str(photo), depth_path=str(depth), resolution=50)
    small = len(mesh_object(empty_scene).data.vertices)
    bpy.ops.wm.read_homefile(use_empty=True)  # what undo restores before a redo runs again
    generate(photo_path=str(photo), depth_path=str(depth), resolution=200)
    assert len(mesh_object(bpy.context.scene).data.vertices) > 10 * small


def test_cli_and_operator_build_the_same_mesh(empty_scene, motorcycle_files, tmp_path):
    photo, depth, focal = motorcycle_files
    generate(photo_path=str(photo), depth_path=str(depth), fov=fov_deg(741, focal), resolution=300)
    from_operator, _ = vertex_arrays(mesh_object(empty_scene))

    import cli

    assert cli.main([str(photo), "--depth-map", str(depth), "--fov", str(fov_deg(741, focal)), "--resolution", "300",
                     "-o", str(tmp_path / "m.blend")]) == 0
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "m.blend"))
    from_cli, _ = vertex_arrays(mesh_object(bpy.context.scene))
    np.testing.assert_allclose(from_cli, from_operator, atol=1e-5)


# --- The sidebar ----------------------------------------------------------------------------------------


class RecordingLayout:
    """Stands in for a UI layout (panels cannot draw headless) and records what was drawn."""

    def __init__(self, log=None):
        self.log = [] if log is None else log

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.log.append((name, args, kwargs))
            return RecordingLayout(self.log)

        return call

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)

    def drawn(self, kind):
        return [args[1] if kind == "prop" else args[0] for name, args, _ in self.log if name == kind]


def draw_panel(scene):
    panel_type = bpy.types.VIEW3D_PT_image_to_mesh
    layout = RecordingLayout()
    panel = type("Drawn", (), {"layout": layout})()
    panel_type.draw(panel, type("Context", (), {"scene": scene, "preferences": bpy.context.preferences})())
    return layout


def test_sidebar_tab_shows_every_setting_and_the_button(empty_scene):
    panel = bpy.types.VIEW3D_PT_image_to_mesh
    assert (panel.bl_space_type, panel.bl_region_type, panel.bl_category) == ("VIEW_3D", "UI", "Image to Mesh")
    layout = draw_panel(empty_scene)
    props = set(layout.drawn("prop"))
    assert {"photo_source", "photo_path", "method", "model", "fov", "resolution", "edge_threshold",
            "mask"} <= props
    assert layout.drawn("operator") == ["image_to_mesh.generate"]

    assert {"near", "far"} <= props  # the default model gives relative depth
    empty_scene.image_to_mesh.photo_source = "IMAGE"
    empty_scene.image_to_mesh.method = "depth-map"
    layout = draw_panel(empty_scene)
    assert "image" in [args[1] for name, args, _ in layout.log if name == "template_ID"]
    assert {"depth_path", "depth_kind", "depth_scale"} <= set(layout.drawn("prop"))


def test_default_edge_threshold_is_shared_by_panel_and_cli(empty_scene):
    assert empty_scene.image_to_mesh.edge_threshold == pytest.approx(DEFAULT_EDGE_THRESHOLD_DEG)
    import cli

    assert cli.parse_args(["p.jpg", "-o", "o.glb"]).edge_threshold == DEFAULT_EDGE_THRESHOLD_DEG


def test_built_mesh_is_valid_and_its_edges_are_blenders_own(empty_scene, motorcycle_files):
    # The builder writes the grid's edges itself instead of asking Blender to compute them: they must be
    # exactly the edges Blender derives from the same faces, and validate() must find nothing to fix.
    photo, depth, focal = motorcycle_files
    generate(photo_path=str(photo), depth_path=str(depth), fov=fov_deg(741, focal), resolution=120)
    mesh = mesh_object(empty_scene).data
    ours = {tuple(sorted(e.vertices)) for e in mesh.edges}
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    reference = bpy.data.meshes.new("reference")
    reference.from_pydata(co.reshape(-1, 3).tolist(), [], [list(p.vertices) for p in mesh.polygons])
    assert ours == {tuple(sorted(e.vertices)) for e in reference.edges}
    # Each face corner's edge runs from its vertex to the next corner's vertex.
    starts, totals, corner_vert = face_vertex_lists(mesh)
    corner_edge = np.empty(len(mesh.loops), np.int32)
    mesh.loops.foreach_get("edge_index", corner_edge)
    following = np.arange(len(corner_vert)) + 1
    last = starts + totals - 1
    following[last] = starts
    edge_verts = np.empty(len(mesh.edges) * 2, np.int32)
    mesh.edges.foreach_get("vertices", edge_verts)
    edge_verts = np.sort(edge_verts.reshape(-1, 2), axis=1)
    expected = np.sort(np.stack([corner_vert, corner_vert[following]], axis=1), axis=1)
    np.testing.assert_array_equal(edge_verts[corner_edge], expected)
    assert mesh.validate(verbose=False) is False

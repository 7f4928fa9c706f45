"""Inside real Blender: the operator, the sidebar, and the Middlebury motorcycle with its true depth.

The Middlebury 2014 motorcycle (shipped with scikit-image) comes with true disparity and calibration, so the
mesh can be checked against ground truth nobody here wrote: every vertex seen through the created camera
lands on its pixel and keeps the true depth, and no face spans a true depth discontinuity.
"""

import itertools
import math

import bpy
import numpy as np
import pytest
from bpy_extras.object_utils import world_to_camera_view
from conftest import colour_error, seen_at
from image_to_mesh.inference.geometry.grid_mesh import DEFAULT_EDGE_THRESHOLD_DEG, grid_size
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
    photo, depth, _focal = motorcycle
    scene = bpy.context.scene
    camera = scene.camera
    assert camera.parent == motorcycle_mesh and (scene.render.resolution_x, scene.render.resolution_y) == (741, 500)

    co, uv = vertex_arrays(motorcycle_mesh)
    sample = np.random.default_rng(0).choice(len(co), 4000, replace=False)
    u, v, z = camera_view(scene, camera, co[sample])
    # The surface the camera sees: vertices on their own pixel (their UV) at its true depth. The rest is the
    # occlusion fill: mostly background continued behind that surface along silhouettes, textured from the
    # background.
    uv_u, uv_v = uv[sample, 0] * 741, (1 - uv[sample, 1]) * 500
    own = (np.abs(u - uv_u) <= 0.5) & (np.abs(v - uv_v) <= 0.5)
    np.testing.assert_allclose(z[own], depth[uv_v.astype(int), uv_u.astype(int)][own], rtol=1e-4)
    # The fill lies behind what the camera sees at its grid point (the photo pixel the grid sampled there), or,
    # where no background could be continued, is the foreground's skirt one step over it: at the depth of the
    # foreground pixel that textures it. Mostly the former; skirts also close the cells beside points the mesh
    # dropped (the ground truth's mixed pixels: grid_mesh._closures).
    cols, rows = grid_size((741, 500), 512)
    grid_u = ((np.round(u * cols / 741 - 0.5) + 0.5) * 741 / cols).astype(int)
    grid_v = ((np.round(v * rows / 500 - 0.5) + 0.5) * 500 / rows).astype(int)
    behind = z[~own] > depth[grid_v, grid_u][~own]
    skirt = np.isclose(z[~own], depth[uv_v.astype(int), uv_u.astype(int)][~own], rtol=1e-4)
    assert (behind | skirt).all() and behind.mean() > 0.6 and own.mean() > 0.9
    # The mesh's Color attribute is the photo's colour where each vertex of the seen surface is seen, and the
    # background's colour (its UV's) on the fill behind it.
    colours = np.empty(len(co) * 4, np.float32)
    motorcycle_mesh.data.color_attributes["Color"].data.foreach_get("color_srgb", colours)
    colours = colours.reshape(-1, 4)[sample, :3] * 255
    seen_u, seen_v = seen_at(camera, co[sample], 741, 500)
    assert colour_error(photo, seen_u[own], seen_v[own], colours[own]).max() <= 0.5
    assert colour_error(photo, uv_u[~own], uv_v[~own], colours[~own]).max() <= 0.5


def test_scaling_the_mesh_moves_its_camera_and_keeps_the_alignment(motorcycle_mesh):
    scene = bpy.context.scene
    co, uv = vertex_arrays(motorcycle_mesh)
    u, v, _ = camera_view(scene, scene.camera, co[::97])
    own = (np.abs(u - uv[::97, 0] * 741) <= 0.5) & (np.abs(v - (1 - uv[::97, 1]) * 500) <= 0.5)
    assert own.mean() > 0.9  # the rest is the occlusion fill, textured from the background
    motorcycle_mesh.scale = (2.0, 2.0, 2.0)
    motorcycle_mesh.location = (1.0, -3.0, 0.5)
    bpy.context.view_layer.update()
    co, uv = vertex_arrays(motorcycle_mesh)
    u, v, _ = camera_view(scene, scene.camera, co[::97])
    assert np.abs(u - uv[::97, 0] * 741)[own].max() <= 0.5 and np.abs(v - (1 - uv[::97, 1]) * 500)[own].max() <= 0.5


def test_no_face_bridges_a_true_depth_discontinuity_and_true_surface_stays(empty_scene, motorcycle_files, motorcycle):
    # Full resolution: every face joins neighbouring pixels, so each can be judged against the ground truth.
    photo, depth_file, focal = motorcycle_files
    _photo, depth, _ = motorcycle
    generate(photo_path=str(photo), depth_path=str(depth_file), fov=fov_deg(741, focal), resolution=741)
    obj = mesh_object(empty_scene)
    co, uv = vertex_arrays(obj)
    to_camera = np.array(empty_scene.camera.matrix_world.inverted())
    in_camera = co @ to_camera[:3, :3].T + to_camera[:3, 3]
    vertex_depth = -in_camera[:, 2]  # along the camera's axis
    pixel_depth = depth[((1 - uv[:, 1]) * 500).astype(int), (uv[:, 0] * 741).astype(int)]
    at_uv = np.abs(in_camera[:, 0] / vertex_depth * focal + 370.5 - uv[:, 0] * 741) < 0.5
    starts, totals, corner_vert = face_vertex_lists(obj.data)
    corner_depth = vertex_depth[corner_vert]
    ratio = np.maximum.reduceat(corner_depth, starts) / np.minimum.reduceat(corner_depth, starts)
    assert np.isfinite(pixel_depth).all() and ratio.max() < 1.05  # a 5 % jump between neighbours is a cut
    # The surface the camera sees (not the occlusion fill behind it) keeps the true depth of its pixels.
    seen = at_uv & np.isclose(vertex_depth, pixel_depth, rtol=1e-4)
    assert seen.mean() > 0.9
    front = np.minimum.reduceat(seen[corner_vert], starts)

    # Cells of clearly continuous true surface (< 1 % depth change across the cell) are all kept.
    d = depth
    cells = np.stack([d[:-1, :-1], d[1:, :-1], d[1:, 1:], d[:-1, 1:]])
    with np.errstate(invalid="ignore"):
        continuous = cells.max(axis=0) / cells.min(axis=0) < 1.01  # False where a corner has no depth
    covered = np.zeros_like(continuous)
    top_left = np.minimum.reduceat(((1 - uv[:, 1]) * 500).astype(int)[corner_vert], starts), np.minimum.reduceat(
        (uv[:, 0] * 741).astype(int)[corner_vert], starts
    )
    covered[top_left[0][front], top_left[1][front]] = True
    assert covered[continuous].mean() > 0.99


# --- What the operator builds ---------------------------------------------------------------------------


def test_world_placement_as_seen_from_front_view(motorcycle_mesh):
    co, _ = vertex_arrays(motorcycle_mesh)
    np.testing.assert_allclose((co.min(axis=0) + co.max(axis=0)) / 2, 0, atol=1e-4)  # centred on the origin
    camera = bpy.context.scene.camera.matrix_world
    forward, up = camera.to_3x3() @ Vector((0, 0, -1)), camera.to_3x3() @ Vector((0, 1, 0))
    np.testing.assert_allclose(forward, (0, 1, 0), atol=1e-6)  # looking along +Y
    np.testing.assert_allclose(up, (0, 0, 1), atol=1e-6)  # level, photo vertical along Z
    assert camera.translation.y < co[:, 1].min()  # in front of the mesh


def test_a_scene_with_a_camera_keeps_its_camera_and_render_size(empty_scene, motorcycle_files):
    photo, depth, _ = motorcycle_files
    shot = bpy.data.objects.new("shot", bpy.data.cameras.new("shot"))
    empty_scene.collection.objects.link(shot)
    empty_scene.camera = shot
    render = empty_scene.render
    render.resolution_x, render.resolution_y, render.resolution_percentage = 1920, 1080, 50
    render.pixel_aspect_x = 2.0
    assert generate(photo_path=str(photo), depth_path=str(depth), resolution=64) == {"FINISHED"}
    assert empty_scene.camera == shot
    assert (render.resolution_x, render.resolution_y, render.resolution_percentage, render.pixel_aspect_x) == (
        1920, 1080, 50, 2.0)
    (made,) = [o for o in empty_scene.objects if o.type == "CAMERA" and o != shot]
    assert made.parent == mesh_object(empty_scene)  # the photo's camera is still made, beside the shot


def test_material_is_the_packed_photo_in_srgb(motorcycle_mesh):
    material = motorcycle_mesh.active_material
    bsdf = next(n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    (link,) = bsdf.inputs["Base Color"].links
    image = link.from_node.image
    assert link.from_node.type == "TEX_IMAGE" and image.packed_file is not None
    assert tuple(image.size) == (741, 500) and image.colorspace_settings.name == "sRGB"
    assert motorcycle_mesh.name == "motorcycle" and bpy.context.scene.camera.data.type == "PERSP"


def test_texture_size_holds_when_the_mesh_is_finer(empty_scene, motorcycle_files):
    photo, depth, focal = motorcycle_files
    assert generate(photo_path=str(photo), depth_path=str(depth), fov=fov_deg(741, focal), resolution=741,
                    texture_size=256) == {"FINISHED"}
    nodes = mesh_object(empty_scene).active_material.node_tree.nodes
    (texture,) = [n for n in nodes if n.type == "TEX_IMAGE"]
    assert tuple(texture.image.size) == (256, 173)


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


UI_FUNCTIONS = bpy.types.UILayout.bl_rna.functions
UI_PROPERTIES = bpy.types.UILayout.bl_rna.properties


def operator_exists(idname: str) -> bool:
    module, name = idname.split(".")
    try:
        getattr(getattr(bpy.ops, module), name).get_rna_type()  # bpy.ops itself is lazy: any name "exists"
    except KeyError:
        return False
    return True


class OperatorProperties:
    """What layout.operator() returns: only the operator's own properties can be set."""

    def __init__(self, idname: str):
        module, name = idname.split(".")
        properties = getattr(getattr(bpy.ops, module), name).get_rna_type().properties
        object.__setattr__(self, "_properties", properties)

    def __setattr__(self, name, value):
        assert name in self._properties, f"the operator has no property {name}"
        if self._properties[name].type == "ENUM":
            assert value in self._properties[name].enum_items.keys(), f"{name}={value!r}: not one of its items"


class RecordingLayout:
    """Stands in for a UI layout (panels cannot draw headless) and records what was drawn, holding every call
    to Blender's own definition of UILayout (its RNA), as drawing in Blender would: the function exists, its
    arguments are its parameters, enum arguments (icons) are among Blender's items, a drawn property exists on
    its data, and a named operator is registered."""

    def __init__(self, log=None):
        object.__setattr__(self, "log", [] if log is None else log)

    def __getattr__(self, name):
        assert name in UI_FUNCTIONS, f"UILayout has no function {name}()"
        parameters = {p.identifier: p for p in UI_FUNCTIONS[name].parameters if not p.is_output}

        def call(*args, **kwargs):
            assert len(args) <= len(parameters), f"{name}() takes {len(parameters)} arguments"
            given = dict(zip(parameters, args))
            for key, value in kwargs.items():
                assert key in parameters and key not in given, f"{name}() has no parameter {key}"
                given[key] = value
            missing = [key for key, p in parameters.items() if p.is_required and key not in given]
            assert not missing, f"{name}() needs {missing}"
            for key, value in given.items():
                if parameters[key].type == "ENUM":
                    items = parameters[key].enum_items.keys()
                    assert value in items, f"{name}({key}={value!r}): not one of Blender's {len(items)} items"
            if "data" in given and "property" in given:
                assert given["property"] in given["data"].bl_rna.properties, f"no property {given['property']}"
            for key in ("operator", "new", "open", "unlink"):
                if given.get(key):
                    assert operator_exists(given[key]), f"{name}({key}={given[key]!r}): no such operator"
            self.log.append((name, args, kwargs))
            if name == "operator":  # Blender returns the operator's properties, to set before the click
                return OperatorProperties(args[0] if args else kwargs["operator"])
            return RecordingLayout(self.log)

        return call

    def __setattr__(self, name, value):
        assert name in UI_PROPERTIES and not UI_PROPERTIES[name].is_readonly, f"UILayout has no setting {name}"
        object.__setattr__(self, name, value)

    def drawn(self, kind):
        return [args[1] if kind == "prop" else args[0] for name, args, _ in self.log if name == kind]


SIDEBAR_PANELS = ("VIEW3D_PT_image_to_mesh", "VIEW3D_PT_image_to_mesh_prepare", "VIEW3D_PT_image_to_mesh_depth",
                  "VIEW3D_PT_image_to_mesh_mesh", "VIEW3D_PT_image_to_mesh_object", "VIEW3D_PT_image_to_mesh_output")


def draw_panel(scene, active_object=None):
    """The sidebar tab as drawn: its panel and every section below it (all open), into one recording."""
    layout = RecordingLayout()
    context = type("Context", (), {"scene": scene, "preferences": bpy.context.preferences,
                                   "active_object": active_object})()
    for name in SIDEBAR_PANELS:
        panel_type = getattr(bpy.types, name)
        assert panel_type.bl_category == "Image to Mesh"
        panel = type("Drawn", (), {"layout": layout, "layout_for": panel_type.layout_for})()
        panel_type.draw(panel, context)
    return layout


def test_sidebar_tab_shows_every_setting_and_the_button(empty_scene):
    panel = bpy.types.VIEW3D_PT_image_to_mesh
    assert (panel.bl_space_type, panel.bl_region_type, panel.bl_category) == ("VIEW_3D", "UI", "Image to Mesh")
    layout = draw_panel(empty_scene)
    props = set(layout.drawn("prop"))
    assert {"photo_source", "photo_path", "method", "model", "fov", "resolution", "edge_threshold",
            "mask"} <= props
    operators = layout.drawn("operator")
    assert {"image_to_mesh.generate", "image_to_mesh.import_photos"} <= set(operators)
    assert operators.count("image_to_mesh.apply_preset") == 3 and "image_to_mesh.update" not in operators

    assert {"near", "far"} <= props  # the default model gives relative depth
    empty_scene.image_to_mesh.photo_source = "IMAGE"
    empty_scene.image_to_mesh.method = "depth-map"
    layout = draw_panel(empty_scene)
    assert "image" in [args[1] for name, args, _ in layout.log if name == "template_ID"]
    assert {"depth_path", "depth_kind", "depth_scale"} <= set(layout.drawn("prop"))


def test_the_sidebar_draws_only_what_blender_knows_in_every_state(empty_scene):
    # Every branch of the panel, drawn with the layout that checks each call against Blender's own UILayout:
    # an unknown icon, property, keyword or operator anywhere in it fails here, as it would on screen.
    settings = empty_scene.image_to_mesh
    drawn = set()
    for source, method, depth_path, kind, model, closure, mask in itertools.product(
        ("FILE", "IMAGE"), ("auto", "model", "depth-map", "inflate"), ("", "/tmp/depth.exr"),
        ("metric", "relative-depth"), ("depth-anything-v2-small", "depth-anything-v2-base"), ("none", "solidify"),
        ("none", "default"),
    ):
        settings.photo_source, settings.method, settings.depth_path, settings.depth_kind = source, method, depth_path, kind
        settings.model, settings.closure, settings.mask = model, closure, mask
        settings.quality_report = '{"pending": true}'  # the photo check's box, as while a check runs
        drawn |= {(name, args[1] if name == "prop" else None) for name, args, _ in draw_panel(empty_scene).log}
    assert ("box", None) in drawn and ("template_ID", None) in drawn and ("operator", None) in drawn
    assert ("prop", "accept_license") in drawn and ("prop", "thickness") in drawn  # the rarer branches ran


def test_default_edge_threshold_is_shared_by_panel_and_cli(empty_scene):
    assert empty_scene.image_to_mesh.edge_threshold == pytest.approx(DEFAULT_EDGE_THRESHOLD_DEG)
    import cli

    assert cli.parse_args(["p.jpg", "-o", "o.glb"]).edge_threshold == DEFAULT_EDGE_THRESHOLD_DEG


def test_built_mesh_is_valid_and_its_edges_are_blenders_own(empty_scene, motorcycle_files):
    # The builder writes the grid's edges itself instead of asking Blender to compute them: they must be
    # exactly the edges Blender derives from the same faces, and validate() must find nothing to fix.
    photo, depth, focal = motorcycle_files
    generate(photo_path=str(photo), depth_path=str(depth), fov=fov_deg(741, focal), resolution=120)
    assert_edges_are_blenders_own(mesh_object(empty_scene).data)


def assert_edges_are_blenders_own(mesh):
    """The mesh's edges are exactly those Blender derives from its faces, each corner's edge runs to the next
    corner, and validate() finds nothing to fix."""
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

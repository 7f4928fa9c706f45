"""Ground truth for the depth-edge benchmark: small scenes built in Blender, rendered with Cycles, exact depth.

Each scene is made of Blender primitives, lit, and seen by a level-ish pinhole camera (60 degree horizontal
field of view). `render_scene` gives the photo (Cycles, CPU, few samples: only the depth has to be exact)
and the exact depth of every pixel centre, by a ray cast from the camera through it (metres along the camera
axis, NaN where the ray hits nothing: sky). The true surface is the scene's own triangles, in the camera
frame (x right, y up, looking down -z), so a mesh can be scored against the surface it should reproduce,
including the parts hidden from the camera (the floor under a table, the wall behind an object).

Scenes:
- object:   a monkey head on a pedestal before a plain wall, on a floor: one object, plain background.
- table:    a table with props (box, ball, cup, cone) on a floor seen from a seated eye height, so the floor is
            seen at grazing angles (up to 85 degrees from facing the camera) out to a low wall 13 m away, and sky
            above the wall.
- interior: a room with a chair (legs and back posts 3 cm thick), a floor lamp (a 2.4 cm pole), a side
            table and a shelf: thin objects in front of walls and floor.
"""

from __future__ import annotations

import math

import bpy
import numpy as np
from mathutils import Vector
from mathutils.bvhtree import BVHTree

SIZE = (512, 384)  # the default mesh resolution's grid: one vertex per pixel
SCENES = ("object", "table", "interior")


def focal_px(width: int) -> float:
    """The scenes' cameras see 60 degrees across."""
    return width / (2 * math.tan(math.radians(30)))


def _material(name: str, color, noise: float = 0.0, scale: float = 8.0) -> bpy.types.Material:
    """A diffuse material of `color`, mottled by a noise texture of strength `noise` (so photos have texture)."""
    mat = bpy.data.materials.new(name)
    if bpy.app.version < (5, 0, 0):
        mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes["Principled BSDF"]
    bsdf.inputs["Roughness"].default_value = 0.8
    if noise <= 0:
        bsdf.inputs["Base Color"].default_value = (*color, 1.0)
        return mat
    tex = nodes.new("ShaderNodeTexNoise")
    tex.inputs["Scale"].default_value = scale
    ramp = nodes.new("ShaderNodeMix")
    ramp.data_type = "RGBA"
    ramp.inputs["Factor"].default_value = 1.0
    dark = tuple(c * (1 - noise) for c in color)
    mix = nodes.new("ShaderNodeMapRange")
    links.new(tex.outputs["Fac"], mix.inputs["Value"])
    ramp.inputs[6].default_value = (*dark, 1.0)
    ramp.inputs[7].default_value = (*color, 1.0)
    links.new(mix.outputs["Result"], ramp.inputs["Factor"])
    links.new(ramp.outputs[2], bsdf.inputs["Base Color"])
    return mat


def _box(name, centre, size, mat, rotation=(0.0, 0.0, 0.0)):
    bpy.ops.mesh.primitive_cube_add(size=1.0, location=centre, rotation=rotation)
    obj = bpy.context.active_object
    obj.name = name
    obj.scale = size
    obj.data.materials.append(mat)
    return obj


def _cylinder(name, centre, radius, depth, mat, vertices=24):
    bpy.ops.mesh.primitive_cylinder_add(vertices=vertices, radius=radius, depth=depth, location=centre)
    obj = bpy.context.active_object
    obj.name = name
    obj.data.materials.append(mat)
    return obj


def _plane(name, centre, size, mat, rotation=(0.0, 0.0, 0.0)):
    bpy.ops.mesh.primitive_plane_add(size=1.0, location=centre, rotation=rotation)
    obj = bpy.context.active_object
    obj.name = name
    obj.scale = (*size, 1.0)
    obj.data.materials.append(mat)
    return obj


def _camera(location, pitch_down_deg: float, yaw_deg: float = 0.0) -> bpy.types.Object:
    """A camera at `location` looking along +Y, pitched down and turned left by the given angles."""
    data = bpy.data.cameras.new("camera")
    data.sensor_fit = "HORIZONTAL"
    data.sensor_width = 36.0
    data.lens = 36.0 / (2 * math.tan(math.radians(30)))
    data.clip_start = 0.01
    data.clip_end = 1000.0
    cam = bpy.data.objects.new("camera", data)
    cam.location = location
    cam.rotation_euler = (math.radians(90 - pitch_down_deg), 0.0, math.radians(yaw_deg))
    bpy.context.scene.collection.objects.link(cam)
    bpy.context.scene.camera = cam
    return cam


def _lights(sun_rotation=(0.8, 0.3, 0.6), world=0.35):
    data = bpy.data.lights.new("sun", "SUN")
    data.energy = 3.0
    sun = bpy.data.objects.new("sun", data)
    sun.rotation_euler = sun_rotation
    bpy.context.scene.collection.objects.link(sun)
    world_data = bpy.data.worlds.new("world")
    if bpy.app.version < (5, 0, 0):
        world_data.use_nodes = True
    world_data.node_tree.nodes["Background"].inputs["Color"].default_value = (0.55, 0.65, 0.8, 1.0)
    world_data.node_tree.nodes["Background"].inputs["Strength"].default_value = world
    bpy.context.scene.world = world_data


def _object_scene():
    wall = _material("wall", (0.55, 0.6, 0.65))
    floor = _material("floor", (0.45, 0.38, 0.3), noise=0.3, scale=3.0)
    head = _material("head", (0.8, 0.35, 0.2), noise=0.2, scale=12.0)
    stand = _material("stand", (0.2, 0.22, 0.25))
    _plane("wall", (0, 1.6, 1.5), (12, 4), wall, rotation=(math.pi / 2, 0, 0))
    _plane("floor", (0, 0, 0), (12, 8), floor)
    _cylinder("pedestal", (0.05, 0.1, 0.42), 0.12, 0.84, stand, vertices=32)
    bpy.ops.mesh.primitive_monkey_add(size=0.55, location=(0.05, 0.1, 1.08), rotation=(0.0, 0.0, math.radians(-20)))
    monkey = bpy.context.active_object
    monkey.modifiers.new("subdivision", "SUBSURF").levels = 1
    monkey.data.materials.append(head)
    _lights()
    return _camera((0.0, -2.2, 1.2), pitch_down_deg=6.0)


def _table_scene():
    floor = _material("floor", (0.5, 0.45, 0.35), noise=0.45, scale=1.5)
    wood = _material("wood", (0.45, 0.25, 0.12), noise=0.25, scale=20.0)
    _plane("floor", (0, 5.5, 0), (30, 15), floor)  # out to a wall 13 m away: up to 86 degrees from facing
    _plane("far wall", (0, 13.0, 1.25), (30, 2.5), _material("far wall", (0.6, 0.58, 0.55), noise=0.2),
           rotation=(math.pi / 2, 0, 0))
    top_z = 0.74
    _box("table top", (0, 2.4, top_z - 0.02), (1.3, 0.75, 0.04), wood)
    for sx in (-1, 1):
        for sy in (-1, 1):
            _box("leg", (sx * 0.6, 2.4 + sy * 0.32, (top_z - 0.04) / 2), (0.05, 0.05, top_z - 0.04), wood)
    _box("box", (-0.35, 2.3, top_z + 0.09), (0.18, 0.18, 0.18), _material("box", (0.15, 0.35, 0.7)),
         rotation=(0, 0, math.radians(25)))
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.1, location=(0.05, 2.35, top_z + 0.1), segments=32, ring_count=16)
    ball = bpy.context.active_object
    ball.data.materials.append(_material("ball", (0.8, 0.75, 0.2)))
    bpy.ops.object.shade_smooth()
    _cylinder("cup", (0.35, 2.25, top_z + 0.06), 0.045, 0.12, _material("cup", (0.9, 0.9, 0.88)))
    bpy.ops.mesh.primitive_cone_add(radius1=0.08, depth=0.22, location=(0.45, 2.55, top_z + 0.11))
    bpy.context.active_object.data.materials.append(_material("cone", (0.6, 0.15, 0.2)))
    _box("crate", (-1.6, 4.5, 0.25), (0.5, 0.5, 0.5), _material("crate", (0.3, 0.5, 0.25), noise=0.3),
         rotation=(0, 0, math.radians(10)))
    _lights(world=0.6)
    return _camera((0.0, -0.3, 1.15), pitch_down_deg=12.0)


def _interior_scene():
    plaster = _material("plaster", (0.75, 0.72, 0.66), noise=0.1, scale=4.0)
    boards = _material("boards", (0.55, 0.4, 0.25), noise=0.4, scale=2.5)
    metal = _material("metal", (0.08, 0.08, 0.09))
    oak = _material("oak", (0.5, 0.32, 0.16), noise=0.2, scale=25.0)
    _plane("floor", (0, 1.5, 0), (6, 7), boards)
    _plane("ceiling", (0, 1.5, 2.7), (6, 7), plaster, rotation=(math.pi, 0, 0))
    _plane("back wall", (0, 4.0, 1.35), (6, 2.7), plaster, rotation=(math.pi / 2, 0, 0))
    _plane("left wall", (-2.6, 1.5, 1.35), (7, 2.7), plaster, rotation=(math.pi / 2, 0, math.pi / 2))
    _plane("right wall", (2.6, 1.5, 1.35), (7, 2.7), plaster, rotation=(math.pi / 2, 0, -math.pi / 2))
    # A chair: 3 cm legs and back posts.
    cx, cy, seat = -0.45, 2.2, 0.45
    _box("seat", (cx, cy, seat), (0.44, 0.42, 0.03), oak)
    for sx in (-1, 1):
        for sy in (-1, 1):
            _box("chair leg", (cx + sx * 0.19, cy + sy * 0.18, (seat - 0.015) / 2), (0.03, 0.03, seat - 0.015), oak)
        _box("back post", (cx + sx * 0.19, cy + 0.18, seat + 0.25), (0.03, 0.03, 0.48), oak)
    _box("back rail", (cx, cy + 0.18, seat + 0.42), (0.41, 0.025, 0.08), oak)
    # A floor lamp: a 2.4 cm pole on a disc, with a shade.
    lx, ly = 0.9, 3.0
    _cylinder("lamp base", (lx, ly, 0.015), 0.16, 0.03, metal, vertices=32)
    _cylinder("lamp pole", (lx, ly, 0.8), 0.012, 1.55, metal, vertices=16)
    bpy.ops.mesh.primitive_cone_add(radius1=0.22, radius2=0.12, depth=0.25, location=(lx, ly, 1.62), vertices=32)
    bpy.context.active_object.data.materials.append(_material("shade", (0.9, 0.85, 0.7)))
    # A side table on a central column, and a shelf against the back wall.
    _cylinder("side table", (1.5, 2.2, 0.55), 0.25, 0.03, oak, vertices=32)
    _cylinder("column", (1.5, 2.2, 0.27), 0.025, 0.54, metal, vertices=16)
    _box("shelf", (-1.5, 3.8, 0.9), (0.9, 0.35, 1.8), _material("shelf", (0.25, 0.3, 0.4)))
    for k in range(3):
        _box("book", (-1.75 + 0.2 * k, 3.6, 1.95), (0.05, 0.2, 0.3), _material(f"book{k}", (0.7, 0.2 + 0.2 * k, 0.3)))
    _lights(sun_rotation=(1.0, 0.2, 2.4), world=0.8)
    lamp = bpy.data.lights.new("ceiling light", "AREA")
    lamp.energy, lamp.size = 400.0, 1.5
    light = bpy.data.objects.new("ceiling light", lamp)
    light.location = (0.0, 1.2, 2.6)
    bpy.context.scene.collection.objects.link(light)
    return _camera((0.1, -1.6, 1.35), pitch_down_deg=12.0)


def build_scene(name: str, size: tuple[int, int] = SIZE) -> bpy.types.Object:
    """Replace the current file's contents by scene `name`, rendered at `size`, and return its camera."""
    bpy.ops.wm.read_homefile(use_empty=True)
    camera = {"object": _object_scene, "table": _table_scene, "interior": _interior_scene}[name]()
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    bpy.context.view_layer.update()
    return camera


def render_photo(path, samples: int = 24) -> None:
    """Cycles on the CPU, few samples, no denoiser: enough for a photo; the depth comes from ray casts."""
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    scene.cycles.max_bounces = 3
    scene.render.threads_mode = "FIXED"
    scene.render.threads = 2
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)


def pixel_rays(width: int, height: int, focal: float) -> np.ndarray:
    """Camera-frame ray directions (height * width, 3) through every pixel centre, row-major."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    rays = np.stack([(u + 0.5 - width / 2) / focal, (height / 2 - (v + 0.5)) / focal, -np.ones_like(u)], -1)
    return rays.reshape(-1, 3)


def true_depth(camera: bpy.types.Object) -> np.ndarray:
    """Depth along the camera axis at every pixel centre, by ray casts into the scene (NaN: nothing hit)."""
    scene = bpy.context.scene
    width, height = scene.render.resolution_x, scene.render.resolution_y
    depsgraph = bpy.context.evaluated_depsgraph_get()
    world = camera.matrix_world
    origin = world.translation
    rot = np.array(world.to_3x3())
    directions = pixel_rays(width, height, focal_px(width)) @ rot.T
    depth = np.full(len(directions), np.nan)
    to_camera = world.inverted()
    for k, d in enumerate(directions):  # one ray per pixel: Blender has no batched ray cast
        hit, location, *_ = scene.ray_cast(depsgraph, origin, Vector(d))
        if hit:
            depth[k] = -(to_camera @ location).z
    return depth.reshape(height, width).astype(np.float32)


def true_surface(camera: bpy.types.Object) -> tuple[np.ndarray, np.ndarray]:
    """Every triangle of every mesh in the scene (modifiers applied), in the camera frame: (vertices, triangles)."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    to_camera = np.array(camera.matrix_world.inverted())
    vertices, triangles = [], []
    offset = 0
    for obj in bpy.context.scene.objects:
        if obj.type != "MESH":
            continue
        evaluated = obj.evaluated_get(depsgraph)
        mesh = evaluated.to_mesh()
        mesh.calc_loop_triangles()
        co = np.empty(len(mesh.vertices) * 3, np.float64)
        mesh.vertices.foreach_get("co", co)
        tris = np.empty(len(mesh.loop_triangles) * 3, np.int32)
        mesh.loop_triangles.foreach_get("vertices", tris)
        matrix = to_camera @ np.array(obj.matrix_world)
        co = co.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]
        vertices.append(co)
        triangles.append(tris.reshape(-1, 3) + offset)
        offset += len(co)
        evaluated.to_mesh_clear()
    return np.concatenate(vertices), np.concatenate(triangles)


def render_scene(name: str, folder, size: tuple[int, int] = SIZE, samples: int = 24) -> dict:
    """Build scene `name`, write its photo (`<name>.png`), exact depth (`<name>_depth.exr`, 0 = no surface)
    and true surface (`<name>_surface.npz`) into `folder`, and return the paths."""
    import cv2

    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    camera = build_scene(name, size)
    paths = {
        "photo": folder / f"{name}.png",
        "depth": folder / f"{name}_depth.exr",
        "surface": folder / f"{name}_surface.npz",
    }
    render_photo(paths["photo"], samples)
    depth = true_depth(camera)
    ok, data = cv2.imencode(".exr", np.nan_to_num(depth, nan=0.0))
    assert ok
    paths["depth"].write_bytes(data.tobytes())
    vertices, triangles = true_surface(camera)
    np.savez(paths["surface"], vertices=vertices, triangles=triangles)
    return paths


def network_like(depth: np.ndarray, sigma: float) -> np.ndarray:
    """Depth blurred the way depth networks blur it: disparity (1/z) Gaussian-blurred by `sigma` pixels,
    normalised over the valid pixels (no surface stays no surface and does not pull its neighbours to 0),
    then inverted back to depth."""
    import cv2

    valid = np.isfinite(depth) & (depth > 0)
    disparity = np.where(valid, 1.0 / np.where(valid, depth, 1.0), 0.0).astype(np.float64)
    blur = lambda a: cv2.GaussianBlur(a, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    weight = blur(valid.astype(np.float64))
    smoothed = blur(disparity) / np.maximum(weight, 1e-12)
    out = np.full(depth.shape, np.nan, np.float32)
    out[valid] = 1.0 / smoothed[valid]
    return out


# --- Scoring a mesh against the truth ----------------------------------------------------------------------


def triangulated(quads: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    return np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]], triangles]).astype(np.int64)


def object_in_camera_frame(mesh_object: bpy.types.Object, camera_object: bpy.types.Object):
    """A mesh object's vertices in its camera's frame (x right, y up, looking down -z) and its triangles."""
    mesh = mesh_object.data
    co = np.empty(len(mesh.vertices) * 3, np.float64)
    mesh.vertices.foreach_get("co", co)
    matrix = np.array(camera_object.matrix_world.inverted()) @ np.array(mesh_object.matrix_world)
    co = co.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]
    n = len(mesh.polygons)
    starts, totals = np.empty(n, np.int64), np.empty(n, np.int64)
    mesh.polygons.foreach_get("loop_start", starts)
    mesh.polygons.foreach_get("loop_total", totals)
    corner_vert = np.empty(len(mesh.loops), np.int64)
    mesh.loops.foreach_get("vertex_index", corner_vert)
    fans = []
    for k in range(1, int(totals.max(initial=3)) - 1):  # triangle fans: (first, k, k + 1) corners
        has = totals > k + 1
        fans.append(corner_vert[np.stack([starts[has], starts[has] + k, starts[has] + k + 1], axis=1)])
    return co, np.concatenate(fans)


def _bvh(vertices: np.ndarray, triangles: np.ndarray) -> BVHTree:
    return BVHTree.FromPolygons(vertices.tolist(), triangles.tolist(), all_triangles=True)


def surface_samples(vertices: np.ndarray, triangles: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` points spread uniformly over the surface by area."""
    a, b, c = (vertices[triangles[:, k]] for k in range(3))
    area = np.linalg.norm(np.cross(b - a, c - a), axis=1)
    pick = rng.choice(len(triangles), n, p=area / area.sum())
    r1, r2 = rng.random(n), rng.random(n)
    flip = r1 + r2 > 1
    r1[flip], r2[flip] = 1 - r1[flip], 1 - r2[flip]
    return a[pick] + r1[:, None] * (b[pick] - a[pick]) + r2[:, None] * (c[pick] - a[pick])


def _nearest_distance(bvh: BVHTree, points: np.ndarray) -> np.ndarray:
    found = [bvh.find_nearest(Vector(p)) for p in points]  # no batched query in mathutils
    return np.array([f[3] if f[0] is not None else np.inf for f in found])


def score(vertices, triangles, depth, focal, truth=None, grid=None, samples=100_000, pixels=None, seed=0) -> dict:
    """Precision, recall and coverage of a mesh (camera frame) against exact depth and the true surface.

    - precision: share of the mesh's surface (area-weighted samples) within tau of the true surface, tau = 1 %
      of the median true depth of the visible surface. The true surface is `truth` (vertices, triangles: the
      scene's own, hidden parts included) or, without it, the back-projected pixels of `depth`;
    - recall: share of the true visible surface (every pixel's back-projected point) within tau of the mesh;
    - coverage: share of the pixels with valid depth that the mesh covers seen from the photo's camera: rays
      through 2 x 2 points in each pixel, counting the points inside cells of the vertex grid (`grid`:
      (columns, rows), default one vertex per pixel centre) whose four grid points have depth, since the
      mesh's vertices are grid points and it cannot reach beyond them.
    `pixels`: score recall and coverage on this many pixels drawn at random (all when None).
    """
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    height, width = depth.shape
    valid = np.isfinite(depth) & (depth > 0)
    tau = 0.01 * float(np.median(depth[valid]))
    v, u = np.nonzero(valid)
    visible = np.stack([(u + 0.5 - width / 2) / focal, (height / 2 - (v + 0.5)) / focal, -np.ones(len(u))], -1)
    visible *= depth[v, u][:, None]
    on_mesh = surface_samples(vertices, triangles, samples, rng)
    if truth is not None:
        precise = _nearest_distance(_bvh(*truth), on_mesh) <= tau
    else:
        precise = cKDTree(visible).query(on_mesh, distance_upper_bound=tau)[0] <= tau
    if pixels is not None and pixels < len(u):
        pick = rng.choice(len(u), pixels, replace=False)
        u, v, visible = u[pick], v[pick], visible[pick]
    mesh = _bvh(vertices, triangles)
    recalled = _nearest_distance(mesh, visible) <= tau
    # Grid cell (i, j) spans grid points (i..i + 1, j..j + 1), grid point (i, j) sitting at pixel coordinates
    # ((j + 0.5) * step_x, (i + 0.5) * step_y): a point at pixel coordinates (x, y) lies in cell
    # (floor(y / step_y - 0.5), floor(x / step_x - 0.5)).
    cols, rows = grid or (width, height)
    step_x, step_y = width / cols, height / rows
    at_grid = depth[((np.arange(rows) + 0.5) * step_y).astype(int)][:, ((np.arange(cols) + 0.5) * step_x).astype(int)]
    grid_valid = np.isfinite(at_grid) & (at_grid > 0)
    cell_ok = grid_valid[:-1, :-1] & grid_valid[1:, :-1] & grid_valid[1:, 1:] & grid_valid[:-1, 1:]
    points = []
    for du in (0.25, 0.75):
        for dv in (0.25, 0.75):
            pu, pv = u + du, v + dv
            ci, cj = np.floor(pv / step_y - 0.5).astype(int), np.floor(pu / step_x - 0.5).astype(int)
            inside = (ci >= 0) & (cj >= 0) & (ci < rows - 1) & (cj < cols - 1)
            inside[inside] = cell_ok[ci[inside], cj[inside]]
            pu, pv = pu[inside], pv[inside]
            points.append(np.stack([(pu - width / 2) / focal, (height / 2 - pv) / focal, -np.ones_like(pu)], -1))
    origin = Vector((0.0, 0.0, 0.0))
    covered = np.array([mesh.ray_cast(origin, Vector(d))[0] is not None for d in np.concatenate(points)])
    return {"precision": float(precise.mean()), "recall": float(recalled.mean()), "coverage": float(covered.mean()),
            "tau": tau}

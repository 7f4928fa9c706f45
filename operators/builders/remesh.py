"""Base meshes: the object's mesh rebuilt by QuadriFlow or the voxel remesher, the photo put onto new UVs.

Sculpt-ready means manifold with consistent normals: every edge between exactly two faces (or, on an open
relief, one: its outline), wound the same way on both. A closed object (a closure, inflate, a generated object)
comes out closed with its normals outward (a positive volume). QuadriFlow needs manifold input, so a closed mesh
that is not (a generated mesh's stray edge in three faces, faces wound against their neighbours) is voxel
remeshed first, at QUAD_VOXEL_FACES times the face budget, which makes it so. QuadriFlow lands near, not on, its
target, and differently from run to run (its threads): when it misses by more than 8 %, or folds a relief over
itself, it runs again with the target corrected by the mean miss so far (at most QUADRIFLOW_TRIES runs; the closest
is kept). The automatic voxel size is estimated from the surface's area, which overshoots on a mesh with surface
inside its volume (a generated object's stray sheets): the voxel remesh, too, runs again with the size corrected
by the miss.

An open relief stays open, each piece its depth cuts made a piece of its own. QuadriFlow takes it as it is,
keeping its outline (Preserve Boundary). The voxel remesher needs a volume: the relief gets one for the time of
the remesh, a shell SHELL_VOXELS voxels thick behind it (Solidify), and only the shell's front is kept: the faces
lying along the relief, facing its way. Each piece then faces the camera. A relief needs no bake: its photo is a
projection through the camera, so each new vertex gets the UV of the pixel it is seen on (PhotoProjection) and the
photo's material stays.

The texture: Smart UV Project on the new mesh, then Cycles (CPU, headless, one sample) bakes the original's
base colour (DIFFUSE, colour only: no lighting) onto it, selected to active, rays cast inwards from a cage
CAGE_EDGES new edge lengths outside it; the image is packed as PNG and the material rebuilt on it. The object,
its name, its transform and its camera stay. All of it runs in a scratch scene holding only the two meshes, so
the user's scene, its render engine and its selection are never touched.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import bmesh
import bpy
import numpy as np

from mathutils import Matrix
from mathutils.bvhtree import BVHTree

from ...inference.errors import InputError
from ...inference.geometry.remesh import QUAD_VOXEL_FACES, PhotoProjection, voxel_size_for
from .material import build_photo_material

TRIES = 3
# Its face counts vary by 10-15 % from run to run (six tries once all missed the budget by 12 %), and a relief may
# fold.
QUADRIFLOW_TRIES = 10
TOLERANCE = 0.08  # the budget is asked within 10 %: a margin for the retries
CAGE_EDGES = 2.0  # the bake's cage sits this many (new) edge lengths outside the new mesh
FACING = 0.8  # a QuadriFlow relief folded over itself has less of its area towards the camera (README: 87-93 %)
SHELL_VOXELS = 2.0  # a relief's shell for the voxel remesher: thick enough that front and back stay apart


def remesh_object(obj: bpy.types.Object, remesh: str, target_faces: int, voxel_size: float | None,
                  bake_side: int, timings: dict | None = None,
                  projection: PhotoProjection | None = None) -> bpy.types.Image | None:
    """Rebuild `obj`'s mesh ("quad": about `target_faces` quads; "voxel": voxels `voxel_size` metres across, or
    with `target_faces` that size corrected until about `target_faces` quads) and
    bake its texture onto the new mesh's UVs (a `bake_side` pixels square image); return that image. A relief
    (`projection`: its photo through its camera) stays open and gets its UVs from the projection: None then.
    `timings` gets the seconds of the remesh ("remesh") and of the UVs and bake ("bake")."""
    start = time.perf_counter()
    if projection is not None:
        _remesh_relief(obj, remesh, target_faces, voxel_size, projection)
        if timings is not None:
            timings.update(remesh=time.perf_counter() - start, bake=0.0)
        return None
    source_mesh = obj.data
    name = source_mesh.name
    with _beside_its_source(obj) as (source, view_layer):
        if remesh == "voxel" or not _is_manifold(source_mesh, closed=True):
            area = float(_face_areas(source_mesh).sum())
            if remesh == "voxel":
                base = _voxel_remesh(source, voxel_size, target_faces, view_layer)
            else:
                base = _voxel_remesh(source, voxel_size_for(area, QUAD_VOXEL_FACES * target_faces), 0, view_layer)
        else:
            base = source_mesh.copy()
            base.materials.clear()
        if remesh == "quad":
            quads = _quadriflow(obj, base, target_faces, view_layer)
            bpy.data.meshes.remove(base)
            if quads is None:
                raise _refused(name)
        else:
            obj.data = base
        _orient_outwards(obj.data)
        obj.data.shade_smooth()
        remeshed = time.perf_counter()
        _smart_uv_project(obj, view_layer)
        image = bpy.data.images.new(f"{name} baked", bake_side, bake_side, alpha=False)
        _bake(source, obj, image, view_layer)
    materials = [m for m in source_mesh.materials if m is not None]
    bpy.data.meshes.remove(source_mesh)
    for material in materials:
        if not material.users:
            bpy.data.materials.remove(material)
    obj.data.name = name
    obj.data.materials.append(build_photo_material(name, image))
    image.pack()
    image.filepath_raw = f"//textures/{bpy.path.clean_name(image.name)}.png"
    image.file_format = "PNG"
    if timings is not None:
        timings.update(remesh=remeshed - start, bake=time.perf_counter() - remeshed)
    return image


@contextmanager
def _beside_its_source(obj: bpy.types.Object):
    """(source, view layer): an object holding `obj`'s mesh as it is now, where `obj` is, both in a scratch scene;
    the source object is removed afterwards (its mesh is the caller's)."""
    source = bpy.data.objects.new(f"{obj.name} (before remesh)", obj.data)
    source.matrix_world = obj.matrix_world
    try:
        with _scratch_scene(obj, source) as view_layer:
            yield source, view_layer
    finally:
        bpy.data.objects.remove(source)


@contextmanager
def _scratch_scene(*objects: bpy.types.Object):
    """A scene of its own holding `objects`, rendering with Cycles on the CPU; removed afterwards."""
    scene = bpy.data.scenes.new("Image to Mesh remesh")
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 1
    for obj in objects:
        scene.collection.objects.link(obj)
    view_layer = scene.view_layers[0]
    view_layer.update()
    try:
        yield view_layer
    finally:
        for obj in objects:
            scene.collection.objects.unlink(obj)
        bpy.data.scenes.remove(scene)


@contextmanager
def _acting_on(view_layer: bpy.types.ViewLayer, active: bpy.types.Object, *selected: bpy.types.Object):
    """Operators' context: `active` (and `selected`) the only selected objects of `view_layer`'s scene."""
    for obj in view_layer.objects:
        obj.select_set(obj is active or obj in selected, view_layer=view_layer)
    view_layer.objects.active = active
    chosen = [active, *selected]
    with bpy.context.temp_override(scene=view_layer.id_data, view_layer=view_layer, active_object=active, object=active,
                                   selected_objects=chosen, selected_editable_objects=chosen):
        yield


def _is_manifold(mesh: bpy.types.Mesh, closed: bool) -> bool:
    """Every edge in exactly two faces (or, not `closed`, one or two), which run along it in opposite directions
    (consistent winding)."""
    corner_vert, corner_edge, start, total = (
        _ints(mesh.loops, "vertex_index"), _ints(mesh.loops, "edge_index"),
        _ints(mesh.polygons, "loop_start"), _ints(mesh.polygons, "loop_total"))
    face = np.repeat(np.arange(len(start)), total)
    following = start[face] + (np.arange(len(corner_vert)) - start[face] + 1) % total[face]
    directed = np.stack([corner_vert, corner_vert[following]], axis=1)
    faces = np.bincount(corner_edge, minlength=len(mesh.edges))
    return bool(((faces == 2) if closed else ((faces == 1) | (faces == 2))).all()
                and len(np.unique(directed, axis=0)) == len(directed))


def _ints(items, name: str) -> np.ndarray:
    values = np.empty(len(items), np.int32)
    items.foreach_get(name, values)
    return values


def _voxel_remesh(source: bpy.types.Object, size: float, target: int, view_layer,
                  relief: bool = False) -> bpy.types.Mesh:
    """A new mesh: `source`'s volume rebuilt from voxels `size` metres across; with a `target` face count, the size
    corrected by the miss until within TOLERANCE of it (at most TRIES runs; the closest is kept). A `relief`: its
    shell's front (module notes)."""
    best = None
    for _ in range(TRIES):
        mesh = _voxels(source, size, view_layer, relief)
        faces = len(mesh.polygons)
        if best is None or abs(faces - target) < abs(len(best.polygons) - target):
            best, mesh = mesh, best
        if mesh is not None:
            bpy.data.meshes.remove(mesh)
        if not target or abs(faces - target) <= TOLERANCE * target:
            break
        size *= float(np.sqrt(faces / target))  # faces go as the inverse square of the size
    return best


def _voxels(source: bpy.types.Object, size: float, view_layer, relief: bool) -> bpy.types.Mesh:
    """One voxel remesh of `source` (Blender's Remesh modifier); of a `relief`, the front of a shell behind it."""
    modifiers = []
    if relief:
        solidify = source.modifiers.new("Shell", "SOLIDIFY")
        solidify.thickness, solidify.offset, solidify.use_even_offset = SHELL_VOXELS * size, -1.0, True
        modifiers.append(solidify)
    modifier = source.modifiers.new("Voxel Remesh", "REMESH")
    modifier.mode, modifier.voxel_size, modifier.adaptivity = "VOXEL", size, 0.0
    modifiers.append(modifier)
    try:
        depsgraph = view_layer.depsgraph
        depsgraph.update()
        mesh = bpy.data.meshes.new_from_object(source.evaluated_get(depsgraph))
    finally:
        for added in modifiers:
            source.modifiers.remove(added)
    mesh.materials.clear()
    if relief:
        _keep_the_front(mesh, source.data, size)
    if not mesh.polygons:
        raise InputError(f"The voxel remesh of '{source.data.name}' came out empty: use a smaller voxel size.")
    return mesh


def _quadriflow(obj: bpy.types.Object, base: bpy.types.Mesh, target: int, view_layer,
                camera: np.ndarray | None = None) -> bpy.types.Mesh | None:
    """QuadriFlow on a copy of `base` until its face count is within TOLERANCE of `target`: the closest; `obj`
    takes it. With the `camera` of a relief, a try that folds over (less than FACING of its area towards the
    camera once each piece faces it) counts as a miss. None (and `obj` keeps its mesh) when QuadriFlow refuses
    `base`: it says so only in a warning and leaves the mesh as it was (not manifold, or edges too short for its
    tolerance)."""
    # QuadriFlow's tolerances are absolute: a voxel mesh's shortest edges, a hundredth of a millimetre, fall below
    # them in metres. Scaled so that a typical edge is one unit, they do not.
    scale = 1.0 / float(np.sqrt(_face_areas(base).mean()))
    mesh, best, best_miss, asked, gains = obj.data, None, None, target, []
    for _ in range(QUADRIFLOW_TRIES):
        obj.data = base.copy()
        obj.data.transform(Matrix.Scale(scale, 4))
        try:
            with _acting_on(view_layer, obj):
                done = bpy.ops.object.quadriflow_remesh(target_faces=asked, use_preserve_sharp=False,
                                                        use_preserve_boundary=True, use_mesh_symmetry=False)
        except RuntimeError as err:
            raise _refused(base.name, f" ({str(err).strip().splitlines()[-1]})") from err
        result, obj.data = obj.data, base  # removing a mesh removes the objects using it
        if done != {"FINISHED"} or (_ints(result.polygons, "loop_total") != 4).any():
            bpy.data.meshes.remove(result)
            break
        result.transform(Matrix.Scale(1.0 / scale, 4))
        faces = len(result.polygons)
        folded = bool(camera is not None and faces and _face_the_camera(result, camera) < FACING)
        miss = (folded, abs(faces - target))
        if best is None or miss < best_miss:
            best, best_miss, result = result, miss, best
        if result is not None:
            bpy.data.meshes.remove(result)
        if miss[1] <= TOLERANCE * target and not folded or not faces:
            break
        gains.append(faces / asked)  # asked from the mean of every try's faces per face asked: less noise
        asked = max(1, round(target / np.mean(gains)))
    obj.data = mesh if best is None else best
    if best is not None and not best.polygons:
        raise _refused(base.name)
    return best


def _refused(name: str, why: str = "") -> InputError:
    return InputError(f"QuadriFlow could not remesh '{name}'{why}: try another --target-faces or --remesh voxel.")


def _remesh_relief(obj: bpy.types.Object, remesh: str, target: int, voxel_size: float | None,
                   projection: PhotoProjection) -> None:
    """`obj`'s open relief rebuilt, open (module notes), each piece facing the camera, its UVs projected; the
    photo's material stays."""
    source_mesh = obj.data
    name = source_mesh.name
    with _beside_its_source(obj) as (source, view_layer):
        if remesh == "quad":
            new = None
            if _is_manifold(source_mesh, closed=False):
                base = source_mesh.copy()
                new = _quadriflow(obj, base, target, view_layer, projection.camera_position)
                bpy.data.meshes.remove(base)
            if new is None:  # not manifold (the occlusion fill's layer) or refused: through its shell's front
                area = float(_face_areas(source_mesh).sum())
                base = _voxel_remesh(source, voxel_size_for(area, QUAD_VOXEL_FACES * target), 0, view_layer,
                                     relief=True)
                new = _quadriflow(obj, base, target, view_layer, projection.camera_position)
                bpy.data.meshes.remove(base)
            if new is None:
                raise _refused(name)
        else:
            new = _voxel_remesh(source, voxel_size, target, view_layer, relief=True)
            obj.data = new
            _face_the_camera(new, projection.camera_position)  # QuadriFlow's tries are turned as they are judged
    new.shade_smooth()
    co = np.empty(len(new.vertices) * 3, np.float32)
    new.vertices.foreach_get("co", co)
    while new.uv_layers:
        new.uv_layers.remove(new.uv_layers[0])
    uv = projection.uvs(co.reshape(-1, 3))[_ints(new.loops, "vertex_index")]
    new.uv_layers.new(name="UVMap").uv.foreach_set("vector", uv.ravel())
    new.materials.clear()
    for material in source_mesh.materials:
        new.materials.append(material)
    bpy.data.meshes.remove(source_mesh)
    new.name = name


def _keep_the_front(shell: bpy.types.Mesh, surface: bpy.types.Mesh, size: float) -> None:
    """Delete the faces of `shell` (a voxel remesh of a shell behind `surface`) other than its front: those within
    a voxel of `surface` and facing its way. A vertex the cut leaves joining two fans loses its faces, so the
    result is manifold with a boundary."""
    bm = bmesh.new()
    try:
        bm.from_mesh(surface)
        tree = BVHTree.FromBMesh(bm)
        bm.clear()
        bm.from_mesh(shell)
        # One query per face: mathutils has no batch form (a few hundred thousand a second).
        found = [tree.find_nearest(face.calc_center_median(), size) for face in bm.faces]
        dropped = [face for face, (_, normal, _, _) in zip(bm.faces, found)
                   if normal is None or face.normal.dot(normal) < 0.5]
        while dropped:
            bmesh.ops.delete(bm, geom=dropped, context="FACES")
            dropped = list({face for vert in bm.verts if not vert.is_manifold for face in vert.link_faces})
        bm.to_mesh(shell)
    finally:
        bm.free()


def _face_the_camera(mesh: bpy.types.Mesh, camera: np.ndarray) -> float:
    """Consistent winding in each piece, and each piece's normals towards `camera` (most of its area); the share of
    the whole area then towards it."""
    _orient_outwards(mesh)  # consistent winding first; outwards means nothing for an open piece
    n = len(mesh.polygons)
    normals, centres = np.empty(3 * n, np.float32), np.empty(3 * n, np.float32)
    mesh.polygons.foreach_get("normal", normals)
    mesh.polygons.foreach_get("center", centres)
    facing = np.einsum("ij,ij->i", normals.reshape(-1, 3), camera - centres.reshape(-1, 3)) > 0
    piece, area = _pieces(mesh), _face_areas(mesh)
    away = np.bincount(piece, area * np.where(facing, 1, -1), minlength=len(mesh.vertices)) < 0
    flip = np.flatnonzero(away[piece])
    if len(flip):
        bm = bmesh.new()
        try:
            bm.from_mesh(mesh)
            bm.faces.ensure_lookup_table()
            bmesh.ops.reverse_faces(bm, faces=[bm.faces[i] for i in flip])
            bm.to_mesh(mesh)
        finally:
            bm.free()
    return float(area[facing != away[piece]].sum() / max(area.sum(), 1e-30))


def _pieces(mesh: bpy.types.Mesh) -> np.ndarray:
    """Each face's piece (faces joined through shared vertices), labelled by its lowest vertex index."""
    corner_vert, start, total = (_ints(mesh.loops, "vertex_index"), _ints(mesh.polygons, "loop_start"),
                                 _ints(mesh.polygons, "loop_total"))
    first = np.repeat(corner_vert[start], total)  # each corner's vertex joined to its face's first
    label = np.arange(len(mesh.vertices))
    while True:  # the lowest label spreads along the joins; pointer jumping halves the distance each round
        low = np.minimum(label[corner_vert], label[first])
        spread = label.copy()
        np.minimum.at(spread, corner_vert, low)
        np.minimum.at(spread, first, low)
        spread = spread[spread]
        if np.array_equal(spread, label):
            return label[corner_vert[start]]
        label = spread


def _orient_outwards(mesh: bpy.types.Mesh) -> None:
    """Consistent winding, normals out of each closed piece."""
    bm = bmesh.new()
    try:
        bm.from_mesh(mesh)
        bmesh.ops.recalc_face_normals(bm, faces=bm.faces)
        bm.to_mesh(mesh)
    finally:
        bm.free()


def _face_areas(mesh: bpy.types.Mesh) -> np.ndarray:
    areas = np.empty(len(mesh.polygons), np.float32)
    mesh.polygons.foreach_get("area", areas)
    return areas


def _smart_uv_project(obj: bpy.types.Object, view_layer) -> None:
    """New UVs for every face of `obj` (Blender's Smart UV Project, in Edit Mode on `obj` alone)."""
    mesh = obj.data
    for items in (mesh.vertices, mesh.edges, mesh.polygons):
        items.foreach_set("select", np.ones(len(items), bool))
    with _acting_on(view_layer, obj):
        bpy.ops.object.mode_set(mode="EDIT")
        try:
            with bpy.context.temp_override(edit_object=obj):
                bpy.ops.uv.smart_project(island_margin=0.003, correct_aspect=False)
        finally:
            bpy.ops.object.mode_set(mode="OBJECT")


def _bake(source: bpy.types.Object, target: bpy.types.Object, image: bpy.types.Image, view_layer) -> None:
    """`source`'s base colour baked into `image` through `target`'s UVs (Cycles, selected to active)."""
    material = build_photo_material("Image to Mesh bake", image)
    material.node_tree.nodes.active = next(n for n in material.node_tree.nodes if n.type == "TEX_IMAGE")
    target.data.materials.append(material)
    edge = float(np.sqrt(_face_areas(target.data).mean()))
    try:
        with _acting_on(view_layer, target, source):
            bpy.ops.object.bake(type="DIFFUSE", pass_filter={"COLOR"}, use_selected_to_active=True,
                                cage_extrusion=CAGE_EDGES * edge, max_ray_distance=2 * CAGE_EDGES * edge,
                                margin=max(2, image.size[0] // 128), target="IMAGE_TEXTURES")
    finally:
        target.data.materials.clear()
        bpy.data.materials.remove(material)

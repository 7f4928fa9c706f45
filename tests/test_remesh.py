"""Base meshes (--remesh): QuadriFlow and the voxel remesher in real Blender on real photos. A closed object: the
photo baked onto the new mesh with Cycles; only quads, the face budget within 10 %, closed and manifold, consistent
outward normals, and a texture that shows the photo through the camera. An open relief (Middlebury's motorcycle
with its true depth): only quads on budget, open and manifold with a boundary that follows the relief's outline,
on the relief's surface, each piece facing the camera, UVs exactly where the camera sees each vertex."""

import json

import bmesh
import bpy
import numpy as np
import pytest
from bpy_extras.object_utils import world_to_camera_view
from conftest import (FAST, assert_cli_rejects, base_colour_pixels, evaluated_mesh_arrays, mesh_arrays, run_cli,
                      seen_at, texture_at)
from mathutils import Vector
from mathutils.bvhtree import BVHTree
from PIL import Image
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from test_generate import generated, more_views  # noqa: F401  (more_views: a fixture)
from test_glb import validate
from test_objects import coffee, the_mesh  # noqa: F401  (coffee: a fixture)

from image_to_mesh.inference.settings import MeshSettings
from image_to_mesh.operators.builders.finish import MeshFinish
from image_to_mesh.operators.builders.material import build_photo_material
from image_to_mesh.operators.builders.objects import build_objects
from image_to_mesh.operators.builders.remesh import remesh_object


def face_sizes(obj) -> np.ndarray:
    sizes = np.empty(len(obj.data.polygons), np.int32)
    obj.data.polygons.foreach_get("loop_total", sizes)
    return sizes


def assert_manifold(obj):
    """Every edge between exactly two faces, no vertex joining separate fans, neighbouring faces wound the same
    way, normals outward (a positive volume)."""
    bm = bmesh.new()
    bm.from_mesh(obj.data)
    try:
        assert all(len(e.link_faces) == 2 and e.is_contiguous for e in bm.edges)
        assert all(v.is_manifold for v in bm.verts)
        assert bm.calc_volume(signed=True) > 0
    finally:
        bm.free()


def assert_shows_the_photo(obj, camera, photo: np.ndarray):
    """The baked texture, sampled at each vertex facing the camera, against the photo's pixel the camera sees
    it on: close, and far closer than the photo's mean colour (a flat or misplaced texture is not)."""
    image = obj.active_material.node_tree.nodes["Image Texture"].image
    assert image.packed_file is not None and image.size[0] >= 512
    mesh = evaluated_mesh_arrays(obj)
    normals = np.empty(len(obj.data.vertices) * 3, np.float32)
    obj.data.vertices.foreach_get("normal", normals)
    normals = normals.reshape(-1, 3)[mesh["corner_vert"]]
    co = mesh["co"][mesh["corner_vert"]]
    towards = np.array(camera.matrix_world.translation) - co
    xy = np.array([world_to_camera_view(bpy.context.scene, camera, Vector(p))[:2] for p in co])
    inside = ((xy > 0) & (xy < 1)).all(axis=1)
    assert inside.mean() > 0.99  # a remesh may move a silhouette touching the photo's edge a little past it
    facing = inside & (np.einsum("ij,ij->i", normals, towards / np.linalg.norm(towards, axis=1, keepdims=True)) > 0.5)
    assert facing.sum() > 100
    height, width = photo.shape[:2]
    seen = photo[((1 - xy[facing, 1]) * height).astype(int), (xy[facing, 0] * width).astype(int)].astype(np.float32)
    baked = texture_at(base_colour_pixels(obj), mesh["corner_uv"][facing])
    error = np.abs(baked - seen).mean(axis=1)
    flat = np.abs(seen - seen.mean(axis=0)).mean(axis=1)
    assert np.median(error) < 12 and error.mean() < 0.5 * flat.mean(), (np.median(error), error.mean(), flat.mean())


def test_quad_remesh_of_a_closed_object_is_all_quads_on_budget_textured_and_manifold(empty_scene, coffee):
    assert bpy.ops.image_to_mesh.generate(photo_path=str(coffee), method="inflate", height=0.1, remesh="quad",
                                          target_faces=2000) == {"FINISHED"}
    obj = the_mesh(empty_scene)
    assert (face_sizes(obj) == 4).all()
    assert abs(len(obj.data.polygons) - 2000) <= 200
    assert_manifold(obj)
    assert empty_scene.camera is not None and empty_scene.camera.parent is obj  # the camera kept
    assert obj.name == obj.data.name == "coffee" and len(bpy.data.scenes) == 1  # the scratch scene is gone
    assert_shows_the_photo(obj, empty_scene.camera, np.asarray(Image.open(coffee).convert("RGB")))


def test_voxel_remesh_is_uniform_quads_on_budget_textured_and_manifold(empty_scene, coffee):
    assert bpy.ops.image_to_mesh.generate(photo_path=str(coffee), method="inflate", height=0.1, remesh="voxel",
                                          target_faces=3000, smooth=2) == {"FINISHED"}
    obj = the_mesh(empty_scene)
    assert not obj.modifiers and (face_sizes(obj) == 4).all()
    assert abs(len(obj.data.polygons) - 3000) <= 300  # the automatic voxel size aims at the budget
    assert_manifold(obj)
    assert_shows_the_photo(obj, empty_scene.camera, np.asarray(Image.open(coffee).convert("RGB")))


def test_a_closed_mesh_wound_inconsistently_is_voxel_remeshed_before_quadriflow(empty_scene):
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.5, segments=48, ring_count=24)
    obj = bpy.context.active_object
    bm = bmesh.new()
    bm.from_mesh(obj.data)
    bmesh.ops.reverse_faces(bm, faces=list(bm.faces)[::7])  # every edge still in two faces, but not wound alike
    bm.to_mesh(obj.data)
    bm.free()
    grid = bpy.data.images.new("grid", 256, 256)
    grid.generated_type = "COLOR_GRID"
    obj.data.materials.append(build_photo_material("grid", grid))
    baked = remesh_object(obj, "quad", 800, None, 256)
    assert (face_sizes(obj) == 4).all() and abs(len(obj.data.polygons) - 800) <= 80
    assert_manifold(obj)
    pixels = np.empty(256 * 256 * 4, np.float32)
    baked.pixels.foreach_get(pixels)
    assert pixels.reshape(-1, 4)[:, :3].std(axis=0).min() > 0.1  # the colour grid, not one flat colour


@pytest.mark.generator
def test_a_generated_multi_view_object_remeshes_into_quads_and_keeps_its_cameras(
        empty_scene, generator_env, tiny_models, subject_png, more_views, tmp_path):
    settings = MeshSettings(method="generate", generator="hunyuan3d-2mv-fast", texture_size=128,
                            model_file=str(tiny_models / "hunyuan3d-dit-v2-mv-tiny"), **FAST)
    record = generated(subject_png, settings, generator_env, tmp_path, {"back": more_views["back"]})
    obj, camera, baked = build_objects(record, empty_scene.collection, empty_scene,
                                       MeshFinish(target_faces=1200, remesh="voxel", texture_size=128))
    assert (face_sizes(obj) == 4).all() and abs(len(obj.data.polygons) - 1200) <= 120
    assert_manifold(obj)
    assert sorted(c.name for c in obj.children) == ["cup back camera", "cup front camera"] and camera.parent is obj
    assert baked.name.endswith("baked") and obj.active_material.node_tree.nodes["Image Texture"].image == baked


def test_cli_remesh_writes_a_valid_textured_glb(coffee, tmp_path):
    out = tmp_path / "cup.glb"
    run = run_cli(coffee, "--method", "inflate", "--height", "0.1", "--remesh", "quad", "--target-faces", "1500",
                  "-o", out, "--json")
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)["results"][0]
    assert abs(result["faces"] - 1500) <= 150 and result["vertices"] < 2 * 1500
    report = validate(out)
    assert report["issues"]["numErrors"] == 0, report["issues"]
    assert report["info"]["materialCount"] == 1 and report["info"]["hasTextures"]


def test_bad_remesh_requests_are_one_sentence(coffee, tmp_path, empty_scene):
    assert "--target-faces" in assert_cli_rejects(tmp_path, coffee, "--remesh", "quad", "-o", "x.glb")
    assert "too small" in assert_cli_rejects(tmp_path, coffee, "--method", "inflate", "--remesh", "voxel",
                                             "--voxel-size", "1e-6", "-o", "x.glb")
    with pytest.raises(RuntimeError, match="too small"):  # the sidebar's operator: the same sentence, nothing built
        bpy.ops.image_to_mesh.generate(photo_path=str(coffee), method="inflate", remesh="voxel", voxel_size=1e-6)
    assert not empty_scene.objects


def relief(motorcycle_files, **settings):
    photo, depth, focal = motorcycle_files
    assert bpy.ops.image_to_mesh.generate(photo_path=str(photo), depth_path=str(depth), method="depth-map",
                                          focal_px=focal, resolution=120, **settings) == {"FINISHED"}
    return bpy.context.active_object


def outline_px(obj, camera, width, height) -> np.ndarray:
    """The mesh's boundary edges as seen through `camera`, sampled every quarter pixel."""
    co, _ = mesh_arrays(obj)
    bm = bmesh.new()
    bm.from_mesh(obj.data)
    ends = np.array([[e.verts[0].index, e.verts[1].index] for e in bm.edges if e.is_boundary])
    bm.free()
    a, b = (np.stack(seen_at(camera, co[ends[:, k]], width, height, inside=False), axis=1) for k in (0, 1))
    steps = np.maximum(1, np.ceil(4 * np.linalg.norm(b - a, axis=1)).astype(int))
    edge = np.repeat(np.arange(len(ends)), steps)
    t = np.concatenate([np.arange(n) / n for n in steps])[:, None]
    return a[edge] + (b[edge] - a[edge]) * t


@pytest.mark.parametrize("remesh", ["quad", "voxel"])
def test_remesh_of_an_open_relief_is_open_quads_on_budget_facing_the_camera_and_projected(
        empty_scene, motorcycle_files, remesh):
    plain = relief(motorcycle_files)
    obj = relief(motorcycle_files, remesh=remesh, target_faces=1500)
    camera = obj.children[0]
    bpy.context.view_layer.update()
    assert (face_sizes(obj) == 4).all() and abs(len(obj.data.polygons) - 1500) <= 150

    bm = bmesh.new()
    bm.from_mesh(obj.data)
    try:  # manifold with a boundary: every edge in one face or in two wound alike, no vertex joining two fans
        assert all(e.is_boundary or (len(e.link_faces) == 2 and e.is_contiguous) for e in bm.edges)
        assert all(v.is_manifold for v in bm.verts) and any(e.is_boundary for e in bm.edges)
    finally:
        bm.free()

    # Each piece (faces joined through vertices) faces the camera: most of its area, and most of the whole.
    co, faces = mesh_arrays(obj)
    corner_vert = np.concatenate(faces)
    face = np.repeat(np.arange(len(faces)), [len(f) for f in faces])
    links = coo_matrix((np.ones(len(face)), (face, len(faces) + corner_vert)),
                       shape=(len(faces) + len(co),) * 2)
    piece = connected_components(links, directed=False)[1][:len(faces)]
    polygons = obj.data.polygons
    normal, centre, area = (np.array([getattr(p, key) for p in polygons]) for key in ("normal", "center", "area"))
    facing = np.einsum("ij,ij->i", normal, np.array(camera.matrix_world.translation) - centre) > 0
    assert (np.bincount(piece, area * np.where(facing, 1, -1)) >= 0).all()
    assert area[facing].sum() > 0.8 * area.sum()  # steep slopes the remesh tilts past edge-on: README's figures

    # On the relief's surface (within 1 % of the distance from the camera), its outline along the relief's.
    bm = bmesh.new()
    bm.from_mesh(plain.data)
    surface = BVHTree.FromBMesh(bm)
    bm.free()
    off = np.array([surface.find_nearest(Vector(p))[3] for p in co])
    assert np.median(off / np.linalg.norm(co - np.array(camera.matrix_world.translation), axis=1)) < 0.01
    photo = np.asarray(Image.open(motorcycle_files[0]))
    height, width = photo.shape[:2]
    quad_px = np.sqrt(height * width / 1500)
    away = cKDTree(outline_px(plain, plain.children[0], width, height)).query(outline_px(obj, camera, width, height))[0]
    assert np.percentile(away, 95) < 1.5 * quad_px

    # The photo itself, its UVs where the camera sees each vertex: no bake.
    mesh = evaluated_mesh_arrays(obj)
    u, v = seen_at(camera, mesh["co"][mesh["corner_vert"]], width, height, inside=False)
    expected = np.clip(np.c_[u / width, 1 - v / height], 0, 1)  # a point seen just off the photo: its edge
    assert np.abs(mesh["corner_uv"] - expected).max() * max(width, height) < 0.05
    image, photo_texture = (o.active_material.node_tree.nodes["Image Texture"].image for o in (obj, plain))
    assert tuple(image.size) == tuple(photo_texture.size) and not image.name.endswith("baked")


def test_cli_remeshes_a_relief_into_a_valid_glb(motorcycle_files, tmp_path):
    photo, depth, focal = motorcycle_files
    out = tmp_path / "relief.glb"
    run = run_cli(photo, "--depth-map", depth, "--focal-px", focal, "--resolution", "120", "--remesh", "voxel",
                  "--target-faces", "1200", "-o", out, "--json")
    assert run.returncode == 0, run.stderr[-2000:]
    assert abs(json.loads(run.stdout)["results"][0]["faces"] - 1200) <= 120
    report = validate(out)
    assert report["issues"]["numErrors"] == 0, report["issues"]
    assert report["info"]["materialCount"] == 1 and report["info"]["hasTextures"]

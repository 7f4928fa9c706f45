"""Refining in place: a result remembers how it was made, Update remakes it without losing the user's edits, and
model outputs are cached so that re-meshing runs no model."""

from __future__ import annotations

import sys
import time

import bpy
import numpy as np
import pytest
import tiny_models
from conftest import EXTENSION
from image_to_mesh.inference.pipeline import image_to_mesh
from image_to_mesh.inference.runtime.access import ModelAccess
from image_to_mesh.inference.runtime.cache import ResultCache
from image_to_mesh.inference.runtime.store import ModelStore
from image_to_mesh.inference.settings import MeshSettings


def make_result(motorcycle_files, **settings):
    photo, depth, focal = motorcycle_files
    assert bpy.ops.image_to_mesh.generate(photo_path=str(photo), depth_path=str(depth), method="depth-map",
                                          focal_px=focal, **settings) == {"FINISHED"}
    return bpy.context.active_object


def test_a_result_remembers_how_it_was_made(motorcycle_files):
    obj = make_result(motorcycle_files, resolution=48, edge_threshold=80.0)
    result = obj.image_to_mesh_result
    assert result.made and result.photo_path == str(motorcycle_files[0]) and len(result.photo_hash) == 40
    assert (result.method, result.resolution, result.edge_threshold) == ("depth-map", 48, 80.0)
    assert result.depth_path == str(motorcycle_files[1])


def test_update_remakes_the_mesh_in_place_and_keeps_the_users_edits(motorcycle_files):
    obj = make_result(motorcycle_files, resolution=48)
    camera = obj.children[0]
    vertices_before = len(obj.data.vertices)
    # The user's edits: a transform, a parent, another collection, a modifier, their own material.
    parent = bpy.data.objects.new("rig", None)
    bpy.context.scene.collection.objects.link(parent)
    obj.parent = parent
    obj.location, obj.rotation_euler = (1.0, 2.0, 3.0), (0.0, 0.0, 0.5)
    extra = bpy.data.collections.new("props")
    bpy.context.scene.collection.children.link(extra)
    extra.objects.link(obj)
    obj.modifiers.new("My Solidify", "SOLIDIFY")
    clay = bpy.data.materials.new("Clay")
    obj.data.materials[0] = clay
    bpy.context.view_layer.update()
    pointer, name, matrix = obj.as_pointer(), obj.name, obj.matrix_world.copy()

    obj.image_to_mesh_result.resolution = 96
    obj.image_to_mesh_result.smooth = 2
    bpy.context.view_layer.objects.active = obj
    assert bpy.ops.image_to_mesh.update() == {"FINISHED"}

    assert bpy.context.active_object.as_pointer() == pointer and obj.name == name
    assert len(obj.data.vertices) > vertices_before  # the new resolution
    assert obj.parent == parent and {c.name for c in obj.users_collection} == {"Scene Collection", "props"}
    bpy.context.view_layer.update()
    assert np.allclose(np.array(obj.matrix_world), np.array(matrix))
    assert [m.name for m in obj.modifiers] == ["Smooth (Image to Mesh)", "My Solidify"]
    assert obj.data.materials[0] == clay
    assert [c.as_pointer() for c in obj.children] == [camera.as_pointer()]  # the same camera, updated
    assert not [o for o in bpy.data.objects if o.name.startswith(name + ".")]  # nothing left from the rebuild
    assert {"REGISTER", "UNDO"} <= bpy.types.IMAGE_TO_MESH_OT_update.bl_options  # one undo step


def test_update_of_a_remeshed_result_remeshes_again_and_keeps_the_users_edits(motorcycle_files):
    obj = make_result(motorcycle_files, resolution=96, remesh="quad", target_faces=800)
    obj.location, obj.scale = (0.5, 0.0, 1.0), (2.0, 2.0, 2.0)
    obj.modifiers.new("My Subdivision", "SUBSURF")
    clay = bpy.data.materials.new("Clay")
    obj.data.materials.append(clay)  # a slot of their own beside the photo's
    bpy.context.view_layer.update()
    pointer, matrix, photo_material = obj.as_pointer(), obj.matrix_world.copy(), obj.data.materials[0]

    obj.image_to_mesh_result.remesh, obj.image_to_mesh_result.target_faces = "voxel", 1500
    bpy.context.view_layer.objects.active = obj
    assert bpy.ops.image_to_mesh.update() == {"FINISHED"}

    assert bpy.context.active_object.as_pointer() == pointer
    sizes = np.array([len(p.vertices) for p in obj.data.polygons])
    assert (sizes == 4).all() and abs(len(sizes) - 1500) <= 150  # remeshed again, to the new budget
    bpy.context.view_layer.update()
    assert np.allclose(np.array(obj.matrix_world), np.array(matrix))
    assert [m.name for m in obj.modifiers] == ["My Subdivision"]
    assert obj.data.materials[1] == clay and obj.data.materials[0] != photo_material  # the photo's is made anew
    assert obj.data.uv_layers.active is not None and len(obj.children) == 1


def test_the_sidebar_shows_the_active_results_settings_and_update(motorcycle_files, empty_scene):
    from test_blender import draw_panel

    obj = make_result(motorcycle_files, resolution=40)
    panel = draw_panel(empty_scene, active_object=obj)
    assert "image_to_mesh.update" in panel.drawn("operator")
    drawn_from = [args[0] for name, args, _ in panel.log if name == "prop"]
    assert obj.image_to_mesh_result in drawn_from and empty_scene.image_to_mesh not in drawn_from
    assert "image_to_mesh.update" not in draw_panel(empty_scene, active_object=None).drawn("operator")


def test_a_cache_hit_runs_no_model_in_memory_or_from_disk(tmp_path):
    model = tiny_models.slow_depth(tmp_path / "slow.onnx", steps=200)  # about a second of real inference
    v, u = np.mgrid[:120, :160]  # a smooth photo: one continuous surface at every resolution
    rgb = np.stack([u * 255 // 160, v * 255 // 120, np.full_like(u, 90)], axis=-1).astype(np.uint8)
    photo = tmp_path / "photo.png"
    from PIL import Image

    Image.fromarray(rgb).save(photo)
    settings = MeshSettings(method="model", model_file=str(model), resolution=32)
    cache = ResultCache(folder=tmp_path / "cache", disk_mb=100)
    access = ModelAccess(ModelStore(tmp_path / "store", allow_download=False), cache=cache)

    started = time.perf_counter()
    first = image_to_mesh(photo, None, settings, access)
    uncached = time.perf_counter() - started
    started = time.perf_counter()
    second = image_to_mesh(photo, None, MeshSettings(method="model", model_file=str(model), resolution=64,
                                                    near=2.0, far=6.0), access)
    cached = time.perf_counter() - started
    assert not first.report.model.cached and second.report.model.cached
    assert cache.hits == 1 and cache.misses == 1
    assert len(second.vertices) > len(first.vertices)  # re-meshed at the new resolution from the same outputs
    print(f"uncached {uncached:.2f} s, re-meshed from the cache {cached:.2f} s")

    # Another session: the disk copy serves, the model still does not run.
    fresh = ModelAccess(ModelStore(tmp_path / "store", allow_download=False),
                        cache=ResultCache(folder=tmp_path / "cache", disk_mb=100))
    again = image_to_mesh(photo, None, settings, fresh)
    assert again.report.model.cached
    np.testing.assert_array_equal(again.vertices, first.vertices)

    # Another photo (one pixel changed) is another entry.
    rgb[0, 0] ^= 1
    Image.fromarray(rgb).save(photo)
    assert not image_to_mesh(photo, None, settings, fresh).report.model.cached


def test_the_disk_cache_keeps_to_its_cap_and_clears(tmp_path):
    cache = ResultCache(folder=tmp_path, disk_mb=2.5)
    for i in range(5):
        cache.put(["entry", i], {"values": np.zeros(250_000, np.float32)}, {"i": i})  # 1 MB each
        time.sleep(0.01)
    assert cache.disk_mb() <= 2.5 and len(list(tmp_path.glob("*.npz"))) == 2
    reread = ResultCache(folder=tmp_path, disk_mb=2.5)
    assert reread.get(["entry", 4])[1] == {"i": 4} and reread.get(["entry", 0]) is None
    for path in tmp_path.glob("*.npz"):
        path.write_bytes(b"damaged")
    assert ResultCache(folder=tmp_path, disk_mb=2.5).get(["entry", 4]) is None  # a damaged file: a miss
    assert cache.clear() > 0 and not list(tmp_path.glob("*.npz"))


def test_preferences_clear_the_cache(tmp_path):
    preferences = bpy.context.preferences.addons[EXTENSION].preferences
    results = sys.modules[EXTENSION + ".operators.model_access"].RESULTS
    preferences.models_folder = str(tmp_path)
    try:
        results.use_disk(tmp_path / "cache", 10)
        results.put(["x"], {"a": np.ones(1000)}, {})
        assert list((tmp_path / "cache").glob("*.npz"))
        assert bpy.ops.image_to_mesh.clear_cache() == {"FINISHED"}
        assert not list((tmp_path / "cache").glob("*.npz")) and results.get(["x"]) is None
    finally:
        preferences.models_folder = ""
        results.use_disk(None, 0)

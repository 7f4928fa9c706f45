"""The GLB written straight from the record (operators/builders/glb.py), checked against the referees that exist:
Khronos' glTF validator, Blender's own glTF importer, and Blender's own exporter writing the same objects.

It must be the scene Blender's exporter writes (same vertices in the same order, same triangles, same UVs,
camera and material; normals within Blender's approximate corner angles), so the CLI can write large GLBs
without Blender's mesh and exporter and nobody can tell the difference but the memory.
"""

import json
import math
import os
import shutil
import struct
import subprocess

import bpy
import numpy as np
import pytest
from conftest import ROOT, run_cli, write_depth
from image_to_mesh.inference.geometry.camera import Intrinsics
from image_to_mesh.inference.geometry.view import View
from image_to_mesh.inference.photo.photo import Texture
from image_to_mesh.inference.pipeline import image_to_mesh
from image_to_mesh.inference.record import MeshRecord, Report
from image_to_mesh.inference.settings import MeshSettings
from image_to_mesh.operators.builders.export import StagedOutputs
from image_to_mesh.operators.builders.glb import write_glb
from image_to_mesh.operators.builders.objects import build_objects
from PIL import Image

COMPONENTS = {5126: np.float32, 5121: np.uint8, 5123: np.uint16, 5125: np.uint32}
WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}


class Glb:
    """A .glb file's JSON and its accessors as arrays."""

    def __init__(self, path):
        data = path.read_bytes()
        magic, version, length = struct.unpack("<4sII", data[:12])
        assert (magic, version, length) == (b"glTF", 2, len(data))
        json_length, kind = struct.unpack("<I4s", data[12:20])
        assert kind == b"JSON"
        self.json = json.loads(data[20:20 + json_length])
        bin_length, kind = struct.unpack("<I4s", data[20 + json_length:28 + json_length])
        assert kind == b"BIN\0"
        self.bin = data[28 + json_length:28 + json_length + bin_length]

    def accessor(self, index) -> np.ndarray:
        accessor = self.json["accessors"][index]
        view = self.json["bufferViews"][accessor["bufferView"]]
        width = WIDTH[accessor["type"]]
        values = np.frombuffer(self.bin, COMPONENTS[accessor["componentType"]], accessor["count"] * width,
                               view.get("byteOffset", 0) + accessor.get("byteOffset", 0))
        return values.reshape(-1, width)

    @property
    def primitive(self) -> dict:
        (mesh,) = self.json["meshes"]
        (primitive,) = mesh["primitives"]
        return primitive

    def attribute(self, name) -> np.ndarray:
        return self.accessor(self.primitive["attributes"][name])

    def triangles(self) -> np.ndarray:
        return self.accessor(self.primitive["indices"]).reshape(-1, 3).astype(np.int64)

    def image_bytes(self) -> bytes:
        view = self.json["bufferViews"][self.json["images"][0]["bufferView"]]
        return self.bin[view.get("byteOffset", 0):view.get("byteOffset", 0) + view["byteLength"]]

    def node(self, key) -> dict:
        (node,) = [n for n in self.json["nodes"] if key in n]
        return node


def validate(path) -> dict:
    node = shutil.which("node")
    assert node, "Node.js is needed for Khronos' glTF validator"
    run = subprocess.run([node, str(ROOT / "tests" / "validate_gltf.cjs"), str(path)], capture_output=True, text=True,
                         env=dict(os.environ, NODE_PATH=os.environ.get(
                             "NODE_PATH", str(ROOT / ".cache" / "node" / "node_modules"))))
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def blenders_glb(record, path):
    """The same record through the Blender objects and Blender's glTF exporter, as the CLI writes it with a finish."""
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    mesh_object, camera_object, image = build_objects(record, scene.collection, scene)
    with StagedOutputs([path]) as staged:
        staged.export([o for o in (mesh_object, camera_object) if o is not None], path, image)
        staged.commit()
    return Glb(path)


def sorted_triangles(triangles: np.ndarray) -> np.ndarray:
    """Triangles as rows rotated to start at their smallest index (winding kept), sorted: comparable as sets."""
    start = np.argmin(triangles, axis=1)
    rotated = np.stack([triangles[np.arange(len(triangles)), (start + k) % 3] for k in range(3)], axis=1)
    return rotated[np.lexsort(rotated.T[::-1])]


def assert_same_scene(ours: Glb, blender: Glb):
    """Ours and Blender's exporter's GLB of one record: the same scene up to float rounding."""
    positions = ours.attribute("POSITION")
    np.testing.assert_array_equal(positions, blender.attribute("POSITION"))
    np.testing.assert_array_equal(ours.attribute("TEXCOORD_0"), blender.attribute("TEXCOORD_0"))
    cosine = np.sum(ours.attribute("NORMAL") * blender.attribute("NORMAL"), axis=1)
    assert np.degrees(np.arccos(np.clip(cosine, -1, 1))).max() < 0.1  # Blender approximates corner angles
    np.testing.assert_array_equal(sorted_triangles(ours.triangles()), sorted_triangles(blender.triangles()))
    accessor = ours.json["accessors"][ours.primitive["attributes"]["POSITION"]]
    assert accessor["min"] == blender.json["accessors"][blender.primitive["attributes"]["POSITION"]]["min"]
    assert ours.image_bytes() == blender.image_bytes()
    assert ours.json["images"][0]["mimeType"] == blender.json["images"][0]["mimeType"]
    assert ours.json["images"][0]["name"] == blender.json["images"][0]["name"]
    assert ours.json["samplers"] == blender.json["samplers"]
    (material,), (reference,) = ours.json["materials"], blender.json["materials"]
    assert material.keys() == reference.keys() and material["name"] == reference["name"]
    assert material.get("alphaMode") == reference.get("alphaMode") and material["doubleSided"]
    pbr, reference_pbr = material["pbrMetallicRoughness"], reference["pbrMetallicRoughness"]
    assert pbr["metallicFactor"] == reference_pbr["metallicFactor"]
    assert pbr["roughnessFactor"] == pytest.approx(reference_pbr["roughnessFactor"], rel=1e-6)

    mesh_node, reference_mesh_node = ours.node("mesh"), blender.node("mesh")
    assert mesh_node["name"] == reference_mesh_node["name"] and "translation" not in mesh_node
    if "cameras" not in blender.json:
        assert "cameras" not in ours.json
        return
    (camera,), (reference_camera,) = ours.json["cameras"], blender.json["cameras"]
    assert camera["name"] == reference_camera["name"]
    for key, value in reference_camera["perspective"].items():
        assert camera["perspective"][key] == pytest.approx(value, rel=1e-6), key
    camera_node, reference_camera_node = ours.node("camera"), blender.node("camera")
    assert [ours.json["nodes"].index(camera_node)] == mesh_node["children"]
    np.testing.assert_allclose(camera_node.get("translation", [0, 0, 0]), reference_camera_node["translation"],
                               atol=1e-6)
    np.testing.assert_allclose(camera_node.get("rotation", [0, 0, 0, 1]),
                               reference_camera_node.get("rotation", [0, 0, 0, 1]), atol=1e-6)


@pytest.fixture(scope="module")
def product_files(tmp_path_factory):
    """A photo whose alpha channel outlines a subject, with a depth map: a closed object with a feathered edge."""
    folder = tmp_path_factory.mktemp("product")
    rng = np.random.default_rng(1)
    v, u = np.mgrid[0:90, 0:120]
    alpha = ((((u - 60) / 45) ** 2 + ((v - 45) / 35) ** 2) < 1).astype(np.uint8) * 255
    rgb = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    Image.fromarray(np.dstack([rgb, alpha])).save(folder / "product.png")
    depth = 1.5 - 0.2 * np.cos((u - 60) / 40.0) * np.cos((v - 45) / 40.0)
    write_depth(folder / "product_depth.npy", depth.astype(np.float32))
    return folder / "product.png", folder / "product_depth.npy"


def test_glb_from_the_record_is_the_scene_blenders_exporter_writes(motorcycle_files, tmp_path):
    # A real photo with its true depth: discontinuities cut, triangles along the cuts, concave quads.
    photo, depth, focal = motorcycle_files
    record = image_to_mesh(photo, depth, MeshSettings(resolution=200, focal_px=focal))
    (tmp_path / "ours").mkdir()  # the same file name in another folder: the image is named after the file
    write_glb(record, tmp_path / "ours" / "motorcycle.glb")
    assert_same_scene(Glb(tmp_path / "ours" / "motorcycle.glb"), blenders_glb(record, tmp_path / "motorcycle.glb"))


@pytest.mark.parametrize("closure", ["solidify", "mirror"])
def test_closed_feathered_object_as_glb_is_blenders_scene_too(product_files, tmp_path, closure):
    photo, depth = product_files
    settings = MeshSettings(mask="alpha", closure=closure, feather=3.0, fov=50.0, height=0.2)
    record = image_to_mesh(photo, depth, settings)
    assert record.closed and record.texture.alpha is not None
    (tmp_path / "ours").mkdir()
    write_glb(record, tmp_path / "ours" / "product.glb")
    ours = Glb(tmp_path / "ours" / "product.glb")
    assert ours.json["materials"][0]["alphaMode"] == "BLEND" and ours.json["images"][0]["mimeType"] == "image/png"
    assert ours.attribute("POSITION")[:, 1].min() == 0  # a closed object stands on the ground
    assert_same_scene(ours, blenders_glb(record, tmp_path / "product.glb"))
    assert validate(tmp_path / "ours" / "product.glb")["issues"]["numErrors"] == 0


def seam_record() -> MeshRecord:
    """A 3 x 3-vertex grid of 4 quads plus a triangle, UVs per face corner with a seam down the middle column,
    a model's normals, and a camera turned 10 degrees about the vertical."""
    v, u = np.mgrid[0:3, 0:3].astype(np.float32)
    vertices = np.stack([u - 1, 1 - v, -2 - 0.1 * u * v], axis=-1).reshape(-1, 3).astype(np.float32)
    vertices = np.concatenate([vertices, [[2.0, 0.0, -2.2]]]).astype(np.float32)
    quads = np.array([[0, 3, 4, 1], [1, 4, 5, 2], [3, 6, 7, 4], [4, 7, 8, 5]], np.int32)
    triangles = np.array([[2, 5, 9]], np.int32)
    corners = np.concatenate([quads.ravel(), triangles.ravel()])
    corner_uvs = np.stack([(vertices[corners, 0] + 1) / 3, (vertices[corners, 1] + 1) / 2], axis=1).astype(np.float32)
    right_half = np.repeat([False, True, False, True, True], [4, 4, 4, 4, 3])
    corner_uvs[right_half & (vertices[corners, 0] == 0), 0] += 0.05  # the seam: the middle column split in two
    normals = vertices - np.array([0, 0, 1], np.float32)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    angle = math.radians(10)
    rotation = np.array([[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]])
    rgb = np.random.default_rng(2).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    return MeshRecord(
        "seam", vertices, quads, triangles, None, corner_uvs, np.ones((len(vertices), 4), np.float32),
        Texture("seam", rgb), View(Intrinsics(60, 40, 50.0), rotation, np.array([0.3, 0.1, 0.5])), None,
        False, Report("model", {}), vertex_normals=normals.astype(np.float32),
    )


def test_per_corner_uvs_split_vertices_and_a_models_normals_and_camera_pose_carry_over(tmp_path):
    record = seam_record()
    (tmp_path / "ours").mkdir()
    write_glb(record, tmp_path / "ours" / "seam.glb")
    ours, blender = Glb(tmp_path / "ours" / "seam.glb"), blenders_glb(record, tmp_path / "seam.glb")
    assert len(ours.attribute("POSITION")) == len(record.vertices) + 3  # the seam column, once more

    # Vertex order may differ here (the split): compare the corners as (position, UV, normal) rows, in the order
    # of their position and UV. Blender 4.5 stores custom normals to about 1e-4.
    def corner_rows(glb):
        triangles = glb.triangles()
        rows = np.concatenate([glb.attribute(a)[triangles.ravel()] for a in ("POSITION", "TEXCOORD_0", "NORMAL")], axis=1)
        return rows[np.lexsort(rows[:, :5].T[::-1])]

    rows, reference = corner_rows(ours), corner_rows(blender)
    np.testing.assert_array_equal(rows[:, :5], reference[:, :5])
    np.testing.assert_allclose(rows[:, 5:], reference[:, 5:], atol=1e-3)
    np.testing.assert_allclose(ours.node("camera")["rotation"], blender.node("camera")["rotation"], atol=1e-6)
    np.testing.assert_allclose(ours.node("camera")["translation"], blender.node("camera")["translation"], atol=1e-6)
    report = validate(tmp_path / "ours" / "seam.glb")
    assert report["issues"]["numErrors"] == 0 and report["issues"]["numWarnings"] == 0, report["issues"]["messages"]


def test_cli_glb_passes_the_validator_and_reads_back_in_blender(motorcycle_files, tmp_path):
    # Full resolution: over 65535 vertices, so 32-bit indices.
    photo, depth, focal = motorcycle_files
    run = run_cli(photo, "--depth-map", depth, "--focal-px", focal, "--resolution", 741, "-o", tmp_path / "m.glb",
                  "-o", tmp_path / "m.blend", "--json")
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    glb = Glb(tmp_path / "m.glb")
    assert glb.json["asset"]["generator"] == "Image to Mesh"  # written from the record, not by Blender's exporter
    assert glb.json["accessors"][glb.primitive["indices"]]["componentType"] == 5125
    report = validate(tmp_path / "m.glb")
    assert report["issues"]["numErrors"] == 0 and report["issues"]["numWarnings"] == 0, report["issues"]["messages"]
    assert report["info"]["totalVertexCount"] == summary["vertices"] > 65535
    assert report["info"]["totalTriangleCount"] == len(glb.triangles())

    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "m.blend"))
    (blend_mesh,) = [o for o in bpy.data.objects if o.type == "MESH"]
    expected = np.empty(len(blend_mesh.data.vertices) * 3, np.float32)
    blend_mesh.data.vertices.foreach_get("co", expected)
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.import_scene.gltf(filepath=str(tmp_path / "m.glb"))
    (imported,) = [o for o in bpy.data.objects if o.type == "MESH"]
    (camera,) = [o for o in bpy.data.objects if o.type == "CAMERA"]
    assert len(imported.data.vertices) == summary["vertices"]
    positions = np.empty(len(imported.data.vertices) * 3, np.float32)
    imported.data.vertices.foreach_get("co", positions)
    world = np.array(imported.matrix_world)
    positions = positions.reshape(-1, 3) @ world[:3, :3].T + world[:3, 3]
    def in_order(rows):
        return rows[np.lexsort(rows.T[::-1])]

    np.testing.assert_allclose(in_order(positions), in_order(expected.reshape(-1, 3)), atol=1e-6)  # the .blend's mesh
    assert camera.parent == imported
    assert camera.matrix_world.translation.y < positions[:, 1].min()  # in front of the mesh, as in the .blend


def test_glb_goes_through_blenders_exporter_only_for_a_blender_finish(tmp_path):
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    write_depth(tmp_path / "a_depth.npy", np.full((60, 80), 2.0, np.float32))
    for options, generator in (((), "Image to Mesh"), (("--smooth", 2), "Khronos glTF Blender I/O"),
                               (("--target-faces", 100), "Khronos glTF Blender I/O"),
                               (("--target-faces", 100_000), "Image to Mesh")):  # more than it has: nothing to do
        out = tmp_path / "out" / "a.glb"
        run = run_cli(tmp_path / "a.png", "--depth-map", tmp_path / "a_depth.npy", *options, "-o", out)
        assert run.returncode == 0, run.stderr
        assert Glb(out).json["asset"]["generator"].startswith(generator), options

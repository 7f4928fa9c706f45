"""MeshRecord -> .glb, written straight from the record's arrays and streamed to the file: no Blender mesh, no
exporter. No bpy here.

Why: Blender's glTF exporter holds 1.2-1.6 KB per vertex at its peak (Python objects and several numpy copies of
every attribute), on top of the Blender mesh (about 100 bytes per vertex) and the record. This writer holds the
record, one float32 normal per vertex, and one chunk of each attribute at a time (CHUNK vertices or faces).

What it writes is the scene Blender's exporter writes (io_scene_gltf2, Blender 4.5 to 5.3, as export.py calls
it) for the objects objects.build_objects makes, up to float rounding:
- glTF is Y-up: Blender's (X, Y, Z) is glTF's (X, Z, -Y). Composed with the world placement (x -> X, y -> Z,
  z -> -Y; placement.py) that is the identity: a glTF position is the record's vertex minus the placement's
  centre, and the camera's pose is the record's camera pose with the same offset.
- Nodes: the camera ("<name> camera"; a multi-view object: one per photo, "<name> front camera", "<name> left
  camera", ...; perspective: aspect ratio and vertical field of view of the photo, clip
  0.01 m to placement.camera_clip_end) as the child of the mesh node ("<name>", at the origin).
- One primitive: POSITION, NORMAL, TEXCOORD_0 and triangles. Normals are Blender's smooth vertex normals (face
  normals weighted by the corner angles) or the record's own (a model's). UVs have v flipped (glTF's (0, 0) is
  the image's top-left). A quad (a, b, c, d) is the triangles (a, b, c), (a, c, d), or (a, b, d), (b, c, d)
  where the a-c diagonal runs outside it, as Blender splits it.
  Per-corner UVs split a vertex wherever its corners' UVs differ, as the exporter does.
- The material: the texture as base colour (JPEG, or PNG with alpha, then alpha mode BLEND), metallic 0,
  roughness 0.9, double-sided; the exporter's sampler (linear, mipmapped).
Not written: the exporter's COLOR_0 (all white) and COLOR_1 (the photo's colours, which the material does not use).
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Iterator

import numpy as np

from ...inference.photo.photo import encode_texture
from ...inference.record import MeshRecord
from .placement import camera_clip_end, record_cameras, record_centre

CHUNK = 1 << 20  # vertices, faces or corners per streamed piece: 12 MB of float32 positions
FACE_CHUNK = 1 << 18  # faces per piece where each face's corner positions are gathered (normals, quad splits)

_FLOAT, _UNSIGNED_SHORT, _UNSIGNED_INT = 5126, 5123, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_LINEAR, _LINEAR_MIPMAP_LINEAR = 9729, 9987
_ZNEAR = 0.01  # camera.build_camera's clip start


def write_glb(record: MeshRecord, path: Path) -> None:
    """Write `record` as a binary glTF file at `path` (its image named `<file name>_texture`, as export.py has the
    exporter name it)."""
    mesh = _MeshData(record)
    image, suffix = encode_texture(record.texture)
    sections = [  # (accessor or None for the image, bytes per item, item count, chunks of bytes)
        (mesh.position_accessor(), 12, mesh.vertex_count, mesh.positions()),
        ({"componentType": _FLOAT, "type": "VEC3"}, 12, mesh.vertex_count, mesh.normals()),
        ({"componentType": _FLOAT, "type": "VEC2"}, 8, mesh.vertex_count, mesh.texcoords()),
        ({"componentType": mesh.index_type, "type": "SCALAR"}, mesh.index_size, 3 * mesh.triangle_count,
         mesh.indices()),
        (None, 1, len(image), iter([image])),
    ]
    views, accessors, offset = [], [], 0
    for i, (accessor, item_size, count, _) in enumerate(sections):
        view = {"buffer": 0, "byteOffset": offset, "byteLength": item_size * count}
        if accessor is not None:
            view["target"] = _ELEMENT_ARRAY_BUFFER if accessor["type"] == "SCALAR" else _ARRAY_BUFFER
            accessors.append({"bufferView": i, "count": count, **accessor})
        views.append(view)
        offset += _padded(view["byteLength"])
    document = _document(record, accessors, views, offset, f"{Path(path).stem}_texture", suffix)
    text = json.dumps(document, separators=(",", ":")).encode("utf-8")
    text += b" " * (_padded(len(text)) - len(text))

    with open(path, "wb") as f:
        f.write(struct.pack("<4sII", b"glTF", 2, 12 + 8 + len(text) + 8 + offset))
        f.write(struct.pack("<I4s", len(text), b"JSON"))
        f.write(text)
        f.write(struct.pack("<I4s", offset, b"BIN\0"))
        for (_, item_size, count, chunks), view in zip(sections, views):
            written = 0
            for chunk in chunks:
                data = memoryview(chunk).cast("B")
                f.write(data)
                written += len(data)
            if written != view["byteLength"]:
                raise AssertionError(f"GLB section wrote {written} bytes, not {view['byteLength']}")
            f.write(b"\0" * (_padded(written) - written))


def _padded(length: int) -> int:
    return (length + 3) // 4 * 4


def _document(record: MeshRecord, accessors: list, views: list, length: int, image_name: str, suffix: str) -> dict:
    material = {
        "name": record.name,
        "doubleSided": True,
        "pbrMetallicRoughness": {"baseColorTexture": {"index": 0}, "metallicFactor": 0, "roughnessFactor": 0.9},
    }
    if record.texture.alpha is not None:
        material["alphaMode"] = "BLEND"
    mesh_node = {"name": record.name, "mesh": 0}
    nodes = [mesh_node]
    document = {
        "asset": {"generator": "Image to Mesh", "version": "2.0"},
        "scene": 0,
        "scenes": [{"name": "Scene", "nodes": [0]}],
        "nodes": nodes,
        "meshes": [{"name": record.name, "primitives": [{
            "attributes": {"POSITION": 0, "NORMAL": 1, "TEXCOORD_0": 2}, "indices": 3, "material": 0}]}],
        "materials": [material],
        "textures": [{"sampler": 0, "source": 0}],
        "samplers": [{"magFilter": _LINEAR, "minFilter": _LINEAR_MIPMAP_LINEAR}],
        "images": [{"bufferView": 4, "mimeType": "image/png" if suffix == ".png" else "image/jpeg",
                    "name": image_name}],
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": length}],
    }
    cameras = record_cameras(record)
    if cameras:
        document["cameras"] = [_camera(record, name, view) for name, view, _ in cameras]
        mesh_node["children"] = []
    for index, (name, view, _) in enumerate(cameras):
        camera_node = {"name": name, "camera": index}
        translation = np.asarray(view.position, np.float64) - record_centre(record)
        if translation.any():
            camera_node["translation"] = [float(t) for t in translation]
        rotation = _quaternion(np.asarray(view.rotation, np.float64))
        if not np.allclose(rotation, (0, 0, 0, 1), rtol=0, atol=1e-9):
            camera_node["rotation"] = [float(q) for q in rotation]
        mesh_node["children"].append(len(nodes))
        nodes.append(camera_node)
    return document


def _camera(record: MeshRecord, name: str, view) -> dict:
    """A photo's camera as the exporter writes build_camera's: vertical field of view of the photo."""
    intrinsics = view.intrinsics
    return {
        "name": name,
        "type": "perspective",
        "perspective": {
            "aspectRatio": intrinsics.width / intrinsics.height,
            "yfov": 2.0 * math.atan(intrinsics.height / (2.0 * intrinsics.focal_px)),
            "znear": _ZNEAR,
            "zfar": camera_clip_end(record, view),
        },
    }


def _quaternion(rotation: np.ndarray) -> np.ndarray:
    """A rotation matrix as a unit quaternion (x, y, z, w), w >= 0."""
    m = rotation
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(1.0 + trace)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k])
        q = [0.0] * 4
        q[i], q[j], q[k], q[3] = s / 4, (m[j, i] + m[i, j]) / s, (m[k, i] + m[i, k]) / s, (m[k, j] - m[j, k]) / s
    q = np.array(q) / np.linalg.norm(q)
    return -q if q[3] < 0 else q


class _MeshData:
    """The record's mesh as glTF attributes, each produced chunk by chunk.

    With per-vertex UVs, glTF's vertices are the record's. With per-corner UVs, a glTF vertex is each distinct
    (vertex, UV) pair of the corners: `source` maps it to the record's vertex, `corner_vertex` each corner to it.
    """

    def __init__(self, record: MeshRecord):
        self.record = record
        self.centre = record_centre(record)
        self.source = self.corner_vertex = None
        if record.uvs is None:
            self.source, self.corner_vertex, self.split_uvs = _split_by_uv(record)
        self.vertex_count = len(record.vertices) if self.source is None else len(self.source)
        self.triangle_count = 2 * len(record.quads) + len(record.triangles)
        # 65535 is the primitive restart value, never a valid index.
        self.index_type = _UNSIGNED_SHORT if self.vertex_count <= 65535 else _UNSIGNED_INT
        self.index_size = 2 if self.index_type == _UNSIGNED_SHORT else 4

    def _vertex_rows(self, array: np.ndarray) -> Iterator[np.ndarray]:
        """`array` (per record vertex) at glTF's vertices, CHUNK rows at a time."""
        for start in range(0, self.vertex_count, CHUNK):
            if self.source is None:
                yield array[start:start + CHUNK]
            else:
                yield array[self.source[start:start + CHUNK]]

    def position_accessor(self) -> dict:
        # Rounding is monotonic: the extremes of float32(v - c) are float32(extreme - c), exactly.
        vertices = self.record.vertices
        low = [np.float32(column.min()) - self.centre[k] for k, column in enumerate(vertices.T)]
        high = [np.float32(column.max()) - self.centre[k] for k, column in enumerate(vertices.T)]
        return {"componentType": _FLOAT, "type": "VEC3", "min": [float(v) for v in low],
                "max": [float(v) for v in high]}

    def positions(self) -> Iterator[np.ndarray]:
        for rows in self._vertex_rows(self.record.vertices):
            yield np.subtract(rows, self.centre, dtype=np.float32)

    def normals(self) -> Iterator[np.ndarray]:
        given = self.record.vertex_normals
        normals = vertex_normals(self.record) if given is None else _unit(np.array(given, np.float32))
        for rows in self._vertex_rows(normals):
            yield np.ascontiguousarray(rows)

    def texcoords(self) -> Iterator[np.ndarray]:
        uvs = self.record.uvs if self.source is None else self.split_uvs
        for start in range(0, len(uvs), CHUNK):
            chunk = np.array(uvs[start:start + CHUNK], np.float32)
            np.subtract(1.0, chunk[:, 1], out=chunk[:, 1])  # glTF's v runs down from the image's top
            yield chunk

    def indices(self) -> Iterator[np.ndarray]:
        dtype = np.uint16 if self.index_type == _UNSIGNED_SHORT else np.uint32
        quads, triangles = self.record.quads, self.record.triangles
        corner_vertex, n_quad_corners = self.corner_vertex, 4 * len(quads)
        for start in range(0, len(quads), FACE_CHUNK):
            if corner_vertex is None:
                quad = quads[start:start + FACE_CHUNK]
            else:
                quad = corner_vertex[4 * start:min(4 * (start + FACE_CHUNK), n_quad_corners)].reshape(-1, 4)
            # Blender splits a quad along its 0-2 diagonal, or along 1-3 where 0-2 runs outside it (corners 1
            # and 3 on the same side of it: a concave or folded quad).
            flip = _diagonal_outside(self.record.vertices[quads[start:start + FACE_CHUNK]] - self.centre)
            out = np.empty((len(quad), 2, 3), dtype)
            out[:, 0] = quad[:, :3]
            out[:, 1, 0], out[:, 1, 1:] = quad[:, 0], quad[:, 2:]
            out[flip, 0] = quad[flip][:, [0, 1, 3]]
            out[flip, 1] = quad[flip][:, 1:]
            yield out
        for start in range(0, len(triangles), CHUNK):
            if corner_vertex is None:
                yield triangles[start:start + CHUNK].astype(dtype)
            else:
                yield corner_vertex[n_quad_corners + 3 * start:n_quad_corners + 3 * (start + CHUNK)].astype(dtype)


def _diagonal_outside(points: np.ndarray) -> np.ndarray:
    """For quads' corner positions (K, 4, 3): whether corners 1 and 3 lie on the same side of the 0-2 diagonal
    (Blender's is_quad_flip_v3_first_third_fast, in float32 as Blender computes it)."""
    to_2 = points[:, 2] - points[:, 0]
    side_1 = np.cross(points[:, 1] - points[:, 0], to_2)
    side_3 = np.cross(points[:, 3] - points[:, 0], to_2)
    return np.einsum("ki,ki->k", side_1, side_3) > 0


def _split_by_uv(record: MeshRecord) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(source vertex of each glTF vertex, glTF vertex of each corner, glTF vertices' UVs) for per-corner UVs."""
    corners = np.concatenate([record.quads.ravel(), record.triangles.ravel()]).astype(np.int64)
    uv_bits = np.ascontiguousarray(record.corner_uvs, np.float32).view(np.uint64).ravel()
    order = np.lexsort((uv_bits, corners))
    sorted_vertex, sorted_uv = corners[order], uv_bits[order]
    first = np.empty(len(order), dtype=bool)
    first[:1] = True
    first[1:] = (sorted_vertex[1:] != sorted_vertex[:-1]) | (sorted_uv[1:] != sorted_uv[:-1])
    corner_vertex = np.empty(len(order), dtype=np.int64)
    corner_vertex[order] = np.cumsum(first) - 1
    return sorted_vertex[first], corner_vertex, sorted_uv[first].view(np.float32).reshape(-1, 2)


def vertex_normals(record: MeshRecord) -> np.ndarray:
    """Smooth vertex normals (N, 3) float32 as Blender computes them: each face's normal weighted by its angle
    at the vertex, summed, normalised. Faces are taken FACE_CHUNK at a time, one coordinate per array (numpy
    is several times faster on (K, corners) arrays than on rows of three); a vertex whose faces have no area
    gets the normal facing the camera (+z)."""
    vertices = record.vertices
    sums = [np.zeros(len(vertices), np.float32) for _ in range(3)]
    for faces in (record.quads, record.triangles):
        for start in range(0, len(faces), FACE_CHUNK):
            face = faces[start:start + FACE_CHUNK]
            xyz = [vertices[:, axis][face] for axis in range(3)]  # (K, m) each
            if face.shape[1] == 4:  # a quad's normal: its diagonals' cross product (Newell's, for four points)
                a, b = [c[:, 2] - c[:, 0] for c in xyz], [c[:, 3] - c[:, 1] for c in xyz]
            else:
                a, b = [c[:, 1] - c[:, 0] for c in xyz], [c[:, 2] - c[:, 0] for c in xyz]
            normal = _unit_columns([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])
            edge = []  # edge k: corner k -> corner k + 1, unit length
            for c in xyz:
                e = np.empty_like(c)
                np.subtract(c[:, 1:], c[:, :-1], out=e[:, :-1])
                np.subtract(c[:, 0], c[:, -1], out=e[:, -1])
                edge.append(e)
            edge = _unit_columns(edge)
            cosine = np.zeros(face.shape, np.float32)  # at corner k: -(edge k - 1) . (edge k)
            for e in edge:
                cosine[:, 1:] -= e[:, :-1] * e[:, 1:]
                cosine[:, 0] -= e[:, -1] * e[:, 0]
            angle = np.arccos(np.clip(cosine, -1.0, 1.0, out=cosine), out=cosine)  # the face's angle at each corner
            index = face.ravel()
            for axis in range(3):
                np.add.at(sums[axis], index, (angle * normal[axis][:, None]).ravel())
    normals = np.empty((len(vertices), 3), np.float32)
    zero = np.ones(len(vertices), bool)
    for start in range(0, len(vertices), CHUNK):
        unit = _unit_columns([s[start:start + CHUNK] for s in sums])
        for axis in range(3):
            normals[start:start + CHUNK, axis] = unit[axis]
            zero[start:start + CHUNK] &= unit[axis] == 0
    normals[zero] = (0.0, 0.0, 1.0)
    return normals


def _unit_columns(columns: list[np.ndarray]) -> list[np.ndarray]:
    """Vectors given one coordinate per array, scaled to unit length in place; zero vectors stay zero."""
    length = np.sqrt(columns[0] * columns[0] + columns[1] * columns[1] + columns[2] * columns[2])
    length[length == 0] = 1.0
    for c in columns:
        c /= length
    return columns


def _unit(vectors: np.ndarray) -> np.ndarray:
    """Rows of `vectors` (N, 3) float32 scaled to unit length in place; zero rows face the camera (+z)."""
    for start in range(0, len(vectors), CHUNK):
        rows = vectors[start:start + CHUNK]
        unit = _unit_columns([rows[:, axis].copy() for axis in range(3)])
        for axis in range(3):
            rows[:, axis] = unit[axis]
        rows[(unit[0] == 0) & (unit[1] == 0) & (unit[2] == 0)] = (0.0, 0.0, 1.0)
    return vectors

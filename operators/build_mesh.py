"""Numbers -> a Blender mesh, through the attribute API (about 10x faster than from_pydata)."""

from __future__ import annotations

import bpy
import numpy as np


def build_mesh(
    name: str,
    vertices: np.ndarray,
    quads: np.ndarray,
    triangles: np.ndarray,
    uvs: np.ndarray,
    vertex_colors: np.ndarray | None = None,
) -> bpy.types.Mesh:
    """A mesh of quads then triangles with per-vertex UVs (stored per corner) and optional sRGB vertex colours."""
    corners = np.concatenate([quads.ravel(), triangles.ravel()]).astype(np.int32)
    starts = np.concatenate([np.arange(len(quads)) * 4, len(quads) * 4 + np.arange(len(triangles)) * 3])

    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(vertices))
    mesh.loops.add(len(corners))
    mesh.polygons.add(len(quads) + len(triangles))
    # Face starts must exist before corners are written: writing corners first crashes Blender.
    mesh.polygons.foreach_set("loop_start", starts.astype(np.int32))
    mesh.attributes["position"].data.foreach_set("vector", np.ascontiguousarray(vertices, np.float32).ravel())
    mesh.attributes[".corner_vert"].data.foreach_set("value", corners)
    mesh.uv_layers.new(name="UVMap").uv.foreach_set("vector", np.ascontiguousarray(uvs[corners], np.float32).ravel())
    if vertex_colors is not None:
        colors = mesh.color_attributes.new("Color", "BYTE_COLOR", "POINT")
        colors.data.foreach_set("color_srgb", np.ascontiguousarray(vertex_colors, np.float32).ravel())
    mesh.update(calc_edges=True)
    return mesh

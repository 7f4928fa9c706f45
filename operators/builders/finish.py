"""Mesh size and finish: smoothing and a face budget, as Blender modifiers kept live or applied."""

from __future__ import annotations

from dataclasses import dataclass

import bpy
import numpy as np



@dataclass
class MeshFinish:
    target_faces: int = 0  # about this many faces (Decimate); 0 keeps every face
    smooth: int = 0  # smoothing iterations; 0 none
    apply: bool = False  # bake the modifiers into the mesh instead of keeping them adjustable

    @classmethod
    def of(cls, settings) -> MeshFinish:
        """The finish a MeshSettings asks for."""
        return cls(settings.target_faces, settings.smooth, settings.apply_finish)


def finish_mesh(obj: bpy.types.Object, finish: MeshFinish) -> None:
    """Add the Smooth and Decimate modifiers `finish` asks for, and apply them if it says so."""
    if finish.smooth:
        smooth = obj.modifiers.new("Smooth", "SMOOTH")
        smooth.factor, smooth.iterations = 0.5, finish.smooth
    triangles = _triangle_count(obj.data) if finish.target_faces else 0
    if 0 < finish.target_faces < triangles:
        decimate = obj.modifiers.new("Decimate", "DECIMATE")
        decimate.ratio = finish.target_faces / triangles
    if finish.apply and obj.modifiers:
        evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
        baked = bpy.data.meshes.new_from_object(evaluated)
        old, name = obj.data, obj.data.name
        obj.modifiers.clear()
        obj.data = baked
        bpy.data.meshes.remove(old)
        baked.name = name


def _triangle_count(mesh: bpy.types.Mesh) -> int:
    """Decimate's ratio counts triangles: an n-gon is n - 2 of them."""
    corners = np.empty(len(mesh.polygons), np.int32)
    mesh.polygons.foreach_get("loop_total", corners)
    return int((corners - 2).sum())

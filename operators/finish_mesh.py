"""Mesh size and finish: smoothing and a face budget, as Blender modifiers kept live or applied."""

from __future__ import annotations

from dataclasses import dataclass

import bpy

from ..inference.errors import InputError


@dataclass
class MeshFinish:
    target_faces: int = 0  # about this many faces (Decimate); 0 keeps every face
    smooth: int = 0  # smoothing iterations; 0 none
    apply: bool = False  # bake the modifiers into the mesh instead of keeping them adjustable

    def check(self) -> None:
        if self.target_faces < 0 or self.smooth < 0:
            raise InputError("The face target and the smoothing iterations cannot be negative.")


def finish_mesh(obj: bpy.types.Object, finish: MeshFinish) -> None:
    """Add the Smooth and Decimate modifiers `finish` asks for, and apply them if it says so."""
    faces = len(obj.data.polygons)
    if finish.smooth:
        smooth = obj.modifiers.new("Smooth", "SMOOTH")
        smooth.factor, smooth.iterations = 0.5, finish.smooth
    if 0 < finish.target_faces < faces:
        decimate = obj.modifiers.new("Decimate", "DECIMATE")
        decimate.ratio = finish.target_faces / faces
    if finish.apply and obj.modifiers:
        evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
        baked = bpy.data.meshes.new_from_object(evaluated)
        old = obj.data
        obj.modifiers.clear()
        obj.data = baked
        baked.name = old.name
        bpy.data.meshes.remove(old)

"""Mesh size and finish: smoothing and a face budget, as Blender modifiers kept live or applied; or a remesh
into a base mesh (remesh.py), which is always applied."""

from __future__ import annotations

from dataclasses import dataclass, replace

import bpy
import numpy as np

from ...inference.geometry.remesh import VOXEL_FACES, PhotoProjection, photo_projection, surface_area, voxel_size_for
from ...inference.memory import check_voxel_memory
from ...inference.record import MeshRecord
from .placement import record_centre
from .remesh import remesh_object

BAKE_SIDE_MAX = 4096  # a remesh's baked texture: the power of two at or above the photo texture's long side

# The modifiers a finish adds, named so that rebuilding a result in place (operators/results.py) tells them from
# modifiers the user added.
SMOOTH, DECIMATE = "Smooth (Image to Mesh)", "Decimate (Image to Mesh)"


@dataclass
class MeshFinish:
    target_faces: int = 0  # about this many faces (Decimate, or a remesh's budget); 0 keeps every face
    smooth: int = 0  # smoothing iterations; 0 none
    apply: bool = False  # bake the modifiers into the mesh instead of keeping them adjustable
    remesh: str = "none"  # "quad" (QuadriFlow), "voxel" or "none"
    voxel_size: float | None = None  # metres; None: automatic (for_record)
    texture_size: int = BAKE_SIDE_MAX  # the longest side a remesh's baked texture may have
    bake_side: int = 0  # a remesh's baked texture's side (for_record)
    projection: PhotoProjection | None = None  # a relief's photo through its camera: no bake (for_record)

    @classmethod
    def of(cls, settings) -> MeshFinish:
        """The finish a MeshSettings asks for."""
        return cls(settings.target_faces, settings.smooth, settings.apply_finish, settings.remesh,
                   settings.voxel_size, settings.texture_size)

    def for_record(self, record: MeshRecord) -> MeshFinish:
        """This finish sized for `record`: the automatic voxel size, the bake's texture side or a relief's
        projection; a voxel remesh too fine for the memory available is refused here (InputError), before anything
        is built."""
        if self.remesh == "none":
            return self
        side = max(record.texture.rgb.shape[:2])
        bake_side = min(1 << (side - 1).bit_length(), self.texture_size, BAKE_SIDE_MAX)
        projection = photo_projection(record, record_centre(record))
        target_faces, voxel_size = self.target_faces, self.voxel_size
        if self.remesh == "voxel":
            area = surface_area(record.vertices, record.quads, record.triangles)
            # A voxel size given decides the faces; an automatic one aims at the budget, corrected (remesh.py).
            target_faces = 0 if voxel_size else target_faces or VOXEL_FACES
            voxel_size = voxel_size or voxel_size_for(area, target_faces)
            # A relief is voxel remeshed as a thin shell: front and back, about twice its area.
            check_voxel_memory(area if projection is None else 2 * area, voxel_size, record.name)
        return replace(self, target_faces=target_faces, voxel_size=voxel_size, bake_side=bake_side,
                       projection=projection)


def finish_mesh(obj: bpy.types.Object, finish: MeshFinish) -> bpy.types.Image | None:
    """Add the Smooth and Decimate modifiers `finish` asks for, and apply them if it says so; or remesh (after
    applying any smoothing) and return the baked texture the object's new material shows."""
    if finish.smooth:
        smooth = obj.modifiers.new(SMOOTH, "SMOOTH")
        smooth.factor, smooth.iterations = 0.5, finish.smooth
    triangles = _triangle_count(obj.data) if finish.target_faces and finish.remesh == "none" else 0
    if 0 < finish.target_faces < triangles:
        decimate = obj.modifiers.new(DECIMATE, "DECIMATE")
        decimate.ratio = finish.target_faces / triangles
    if (finish.apply or finish.remesh != "none") and obj.modifiers:
        evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
        baked = bpy.data.meshes.new_from_object(evaluated)
        old, name = obj.data, obj.data.name
        obj.modifiers.clear()
        obj.data = baked
        bpy.data.meshes.remove(old)
        baked.name = name
    if finish.remesh == "none":
        return None
    return remesh_object(obj, finish.remesh, finish.target_faces, finish.voxel_size, finish.bake_side,
                         projection=finish.projection)


def _triangle_count(mesh: bpy.types.Mesh) -> int:
    """Decimate's ratio counts triangles: an n-gon is n - 2 of them."""
    corners = np.empty(len(mesh.polygons), np.int32)
    mesh.polygons.foreach_get("loop_total", corners)
    return int((corners - 2).sum())

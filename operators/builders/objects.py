"""MeshRecord -> a textured mesh object and its camera in a scene.

World placement, as an artist expects from Front view (Numpad 1): Z up, the photo's horizontal along world X
and its vertical along world Z, the camera in front of the mesh (towards -Y) looking along +Y, level, and the
mesh's bounding box centred on the world origin. The camera is parented to the mesh, so moving, rotating or
scaling the mesh moves the camera with it and the alignment holds.
"""

from __future__ import annotations

import bpy
import numpy as np
from mathutils import Matrix

from ...inference.record import MeshRecord
from ...inference.photo.photo import encode_texture
from .camera import build_camera, match_render_size, show_photo_behind
from .material import build_photo_image, build_photo_material
from .mesh import build_mesh, build_mesh_taking
from .finish import MeshFinish, finish_mesh
from .placement import CAMERA_TO_WORLD, camera_clip_end, record_centre


def build_objects(
    record: MeshRecord, collection: bpy.types.Collection, scene: bpy.types.Scene, finish: MeshFinish | None = None,
    release: bool = False,
) -> tuple[bpy.types.Object, bpy.types.Object | None, bpy.types.Image]:
    """Link the mesh object and its camera (if the record has one) into `collection`; return them with the
    texture image.

    The camera becomes the scene's camera only when the scene has none (the render size then becomes the
    photo's), so an existing shot is never changed. A closed object gets its origin at the bottom centre of
    its bounding box, so it stands on the ground at the world origin.

    `release`: take the mesh's arrays out of the record (they become None) and let go of each as soon as Blender
    holds its data, for a caller that has no further use for them: the build then peaks lower.
    """
    centre = CAMERA_TO_WORLD @ record_centre(record)
    clip_end = camera_clip_end(record) if record.camera is not None else None
    world = record.vertices @ CAMERA_TO_WORLD.T
    world -= centre
    arrays = {"vertices": world}
    del world
    for key in ("quads", "triangles", "uvs", "vertex_colors", "edges", "corner_edges", "corner_uvs"):
        arrays[key] = getattr(record, key)
    if release:
        for key in arrays:  # the record's "vertices" included: the world positions are a copy
            setattr(record, key, None)
        mesh = build_mesh_taking(record.name, arrays)
    else:
        mesh = build_mesh(record.name, **arrays)
    del arrays
    image = build_photo_image(record.texture.name, *encode_texture(record.texture))
    mesh.materials.append(build_photo_material(record.name, image, use_alpha=record.texture.alpha is not None))
    if record.vertex_normals is not None:  # a model's predicted normals shade finer than the mesh's own
        mesh.normals_split_custom_set_from_vertices(record.vertex_normals @ CAMERA_TO_WORLD.T)
    mesh_object = bpy.data.objects.new(record.name, mesh)
    collection.objects.link(mesh_object)
    if finish is not None:
        finish_mesh(mesh_object, finish)
    if record.camera is None:
        return mesh_object, None, image

    view = record.camera
    intrinsics = view.intrinsics
    camera_object = build_camera(f"{record.name} camera", intrinsics.width, intrinsics.height, intrinsics.focal_px,
                                 clip_end)
    pose = view.matrix_world_blender
    pose[:3, 3] -= centre
    camera_object.parent = mesh_object  # the mesh sits at the world origin, unrotated: local = world
    camera_object.matrix_basis = Matrix(pose.tolist())
    collection.objects.link(camera_object)
    photo = image if record.photo is None else build_photo_image(record.photo.name, *encode_texture(record.photo))
    show_photo_behind(camera_object, photo)
    if scene.camera is None:
        scene.camera = camera_object
        match_render_size(scene, intrinsics.width, intrinsics.height)
    return mesh_object, camera_object, image


def select_only(view_layer: bpy.types.ViewLayer, objects: list[bpy.types.Object]) -> None:
    """Select exactly `objects` and make the first one active."""
    view_layer.update()  # objects linked a moment ago have no selectable base until the layer syncs
    for obj in view_layer.objects:
        obj.select_set(obj in objects)
    view_layer.objects.active = objects[0]

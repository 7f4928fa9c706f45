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
from .placement import CAMERA_TO_WORLD, camera_clip_end, record_cameras, record_centre


def build_objects(
    record: MeshRecord, collection: bpy.types.Collection, scene: bpy.types.Scene, finish: MeshFinish | None = None,
    release: bool = False,
) -> tuple[bpy.types.Object, bpy.types.Object | None, bpy.types.Image]:
    """Link the mesh object and its cameras (if the record has any: a multi-view object has one per photo) into
    `collection`; return the mesh object, its (front) camera and the texture image (a remesh's baked one).

    The camera becomes the scene's camera only when the scene has none (the render size then becomes the
    photo's), so an existing shot is never changed. A closed object gets its origin at the bottom centre of
    its bounding box, so it stands on the ground at the world origin.

    `release`: take the mesh's arrays out of the record (they become None) and let go of each as soon as Blender
    holds its data, for a caller that has no further use for them: the build then peaks lower.
    """
    if finish is not None:
        finish = finish.for_record(record)  # refuses a remesh too large for the memory before anything is built
    centre = CAMERA_TO_WORLD @ record_centre(record)
    cameras_to_build = [(*camera, camera_clip_end(record, camera[1])) for camera in record_cameras(record)]
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
    try:
        texture = finish_mesh(mesh_object, finish) if finish is not None else None
    except BaseException:  # a remesh that failed: the scene as it was
        bpy.data.objects.remove(mesh_object)
        raise
    cameras = []
    for name, view, photo, clip_end in cameras_to_build:
        intrinsics = view.intrinsics
        camera_object = build_camera(name, intrinsics.width, intrinsics.height, intrinsics.focal_px, clip_end)
        pose = view.matrix_world_blender
        pose[:3, 3] -= centre
        camera_object.parent = mesh_object  # the mesh sits at the world origin, unrotated: local = world
        camera_object.matrix_basis = Matrix(pose.tolist())
        collection.objects.link(camera_object)
        show_photo_behind(camera_object, image if photo is None else build_photo_image(photo.name,
                                                                                        *encode_texture(photo)))
        cameras.append(camera_object)
    if cameras and scene.camera is None:
        scene.camera = cameras[0]
        match_render_size(scene, cameras_to_build[0][1].intrinsics.width, cameras_to_build[0][1].intrinsics.height)
    return mesh_object, cameras[0] if cameras else None, texture or image


def select_only(view_layer: bpy.types.ViewLayer, objects: list[bpy.types.Object]) -> None:
    """Select exactly `objects` and make the first one active."""
    view_layer.update()  # objects linked a moment ago have no selectable base until the layer syncs
    for obj in view_layer.objects:
        obj.select_set(obj in objects)
    view_layer.objects.active = objects[0]

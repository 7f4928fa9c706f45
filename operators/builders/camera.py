"""A Blender camera that sees exactly what the photo's camera saw."""

from __future__ import annotations

import bpy

from .material import MADE_HERE

_SENSOR_WIDTH_MM = 36.0


def build_camera(name: str, width: int, height: int, focal_px: float, clip_end: float) -> bpy.types.Object:
    """Focal length and sensor fit set so the horizontal field of view matches a width x height photo."""
    camera = bpy.data.cameras.new(name)
    camera.sensor_fit = "HORIZONTAL"
    camera.sensor_width = _SENSOR_WIDTH_MM
    camera.lens = focal_px * _SENSOR_WIDTH_MM / width
    camera.clip_start = 0.01
    camera.clip_end = clip_end
    camera.passepartout_alpha = 0.9
    camera_object = bpy.data.objects.new(name, camera)
    camera_object[MADE_HERE] = True
    return camera_object


def show_photo_behind(camera_object: bpy.types.Object, image: bpy.types.Image) -> None:
    """The photo as the camera's background, so looking through it shows how well the mesh lines up."""
    background = camera_object.data.background_images.new()
    background.image = image
    background.alpha = 0.5
    camera_object.data.show_background_images = True


def match_render_size(scene: bpy.types.Scene, width: int, height: int) -> None:
    scene.render.resolution_x = width
    scene.render.resolution_y = height
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0

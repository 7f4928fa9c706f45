"""Blender UI: panels draw settings and call operators, nothing more."""

import bpy

from .sidebar import VIEW3D_PT_image_to_mesh


def register():
    bpy.utils.register_class(VIEW3D_PT_image_to_mesh)


def unregister():
    bpy.utils.unregister_class(VIEW3D_PT_image_to_mesh)

"""Blender UI: panels draw settings and call operators, nothing more."""

import bpy

from .sidebar import PANELS


def register():
    for panel in PANELS:
        bpy.utils.register_class(panel)


def unregister():
    for panel in reversed(PANELS):
        bpy.utils.unregister_class(panel)

"""Image to Mesh: turn a photo and its depth into a textured, camera-aligned mesh.

Blender imports this package as an extension and calls register(). The CLI imports it too; Blender modules
load only inside register(), so `inference` stays usable from plain Python.
"""


def register():
    import bpy

    from . import operators, panels, preferences

    bpy.utils.register_class(preferences.ImageToMeshPreferences)
    operators.register()
    panels.register()


def unregister():
    import bpy

    from . import operators, panels, preferences

    panels.unregister()
    operators.unregister()
    bpy.utils.unregister_class(preferences.ImageToMeshPreferences)

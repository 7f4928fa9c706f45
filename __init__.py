"""Image to Mesh: turn a photo and its depth into a textured, camera-aligned mesh.

Blender imports this package as an extension and calls register(). The CLI imports it too; Blender modules
load only inside register(), so `inference` stays usable from plain Python.
"""


def register():
    from . import operators, panels

    operators.register()
    panels.register()


def unregister():
    from . import operators, panels

    panels.unregister()
    operators.unregister()

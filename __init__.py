"""Image to Mesh: turn a photo and its depth into a textured, camera-aligned mesh.

Blender imports this package as an extension and calls register(). The CLI imports it too; Blender modules
load only inside register(), so `inference` stays usable from plain Python.
"""

_cli_command = None  # `blender -c image_to_mesh ...`: the handle Blender gave for it


def command(argv: list[str]) -> int:
    """`blender -c image_to_mesh PHOTO ... -o OUT [options]`: cli.py's options and exit status."""
    from importlib import import_module

    return import_module(f"{__package__}.cli").main(argv)


def register():
    import bpy

    from . import operators, panels, preferences

    global _cli_command
    bpy.utils.register_class(preferences.ImageToMeshPreferences)
    operators.register()
    panels.register()
    _cli_command = bpy.utils.register_cli_command("image_to_mesh", command)


def unregister():
    import bpy

    from . import operators, panels, preferences

    global _cli_command
    bpy.utils.unregister_cli_command(_cli_command)
    _cli_command = None
    panels.unregister()
    operators.unregister()
    bpy.utils.unregister_class(preferences.ImageToMeshPreferences)

"""The photo as an Image Texture feeding a Principled BSDF, packed into the .blend."""

from __future__ import annotations

import os
import tempfile

import bpy

MADE_HERE = "image_to_mesh"  # the custom property that marks datablocks the extension made


def build_photo_image(name: str, data: bytes, suffix: str) -> bpy.types.Image:
    """An sRGB image datablock holding `data` (encoded image bytes), packed so the .blend carries it."""
    fd, path = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        image = bpy.data.images.load(path, check_existing=False)
        image.pack()
    finally:
        os.remove(path)
    image.name = name
    image.colorspace_settings.name = "sRGB"
    # Where "Unpack" puts it, beside the .blend; never the photo's own path, which unpacking could overwrite.
    image.filepath_raw = f"//textures/{bpy.path.clean_name(name)}{suffix}"
    return image


def build_photo_material(name: str, image: bpy.types.Image, use_alpha: bool = False) -> bpy.types.Material:
    """Principled BSDF with the photo as Base Color, and as Alpha when the texture carries a mask's edge."""
    material = bpy.data.materials.new(name)
    material[MADE_HERE] = True  # rebuilding in place replaces it, never a material the user assigned
    if bpy.app.version < (5, 0, 0):
        material.use_nodes = True  # deprecated from 5.0, where materials always have nodes
    nodes = material.node_tree.nodes
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    bsdf.inputs["Roughness"].default_value = 0.9
    texture = nodes.new("ShaderNodeTexImage")
    texture.image = image
    texture.location = (bsdf.location.x - 400, bsdf.location.y)
    material.node_tree.links.new(texture.outputs["Color"], bsdf.inputs["Base Color"])
    if use_alpha:
        material.node_tree.links.new(texture.outputs["Alpha"], bsdf.inputs["Alpha"])
    return material

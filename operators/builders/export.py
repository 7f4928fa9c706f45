"""Writing the built objects to a file chosen by its extension, never leaving a half-written file behind."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import bpy

from ...inference.errors import InputError
from .objects import select_only

EXPORT_SUFFIXES = (".glb", ".gltf", ".obj", ".fbx", ".usdc", ".usda", ".usd", ".ply", ".stl", ".blend")


def export_objects(objects: list[bpy.types.Object], path: Path, image: bpy.types.Image) -> list[Path]:
    """Write `objects` (the mesh textured with `image`, and its camera) to `path`; return every file written.

    Everything is written into a hidden staging folder beside `path` first and moved into place only once
    the exporter has finished, sidecar files (texture, .mtl, .bin) first and the main file last.
    """
    suffix = path.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise InputError(f"Cannot write '{path.name}': the output must end in one of {' '.join(EXPORT_SUFFIXES)}.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".image_to_mesh-", dir=path.parent))
    except OSError as err:
        raise InputError(f"Cannot write to the folder '{path.parent}': {err.strerror}.") from err
    try:
        select_only(bpy.context.view_layer, objects)
        try:
            _write(suffix, staging / path.name, image)
        except RuntimeError as err:  # the exporter failed (a full disk, a quota): bpy.ops wraps what it reported
            raise InputError(f"Cannot write '{path}': {_exporter_error(err)}.") from err
        staged = sorted((f for f in staging.rglob("*") if f.is_file()), key=lambda f: f.name == path.name)
        written = []
        for file in staged:
            target = path.parent / file.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(file, target)
            written.append(target)
        return written
    except OSError as err:
        raise InputError(f"Cannot write '{path}': {err.strerror or err}.") from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _exporter_error(err: RuntimeError) -> str:
    """The reason in an exporter's error: an OSError's own words, else its last line ("Error: ..." from bpy.ops)."""
    errno = re.search(r"\[Errno \d+\] ([^\n]+)", str(err))
    if errno:
        return errno.group(1).strip().rstrip(".")
    lines = [line.strip() for line in str(err).splitlines() if line.strip() and not line.strip().startswith("Location:")]
    return (lines[-1] if lines else "the exporter failed").removeprefix("Error:").strip().rstrip(".")


def _write(suffix: str, path: Path, image: bpy.types.Image) -> None:
    filepath = str(path)
    if suffix == ".blend":
        bpy.ops.wm.save_as_mainfile(filepath=filepath, copy=True)
    elif suffix in (".glb", ".gltf"):
        # The exporter names the texture file after the image's path, by default the photo's own name: beside
        # a .gltf written next to the photo, that file would replace the photo.
        with _image_path(image, _texture_path(path, image)):
            bpy.ops.export_scene.gltf(
                filepath=filepath,
                export_format="GLB" if suffix == ".glb" else "GLTF_SEPARATE",
                use_selection=True,
                export_cameras=True,
                export_apply=True,  # smoothing and decimation, if any, are part of the exported mesh
            )
    elif suffix == ".fbx":
        bpy.ops.export_scene.fbx(filepath=filepath, use_selection=True, path_mode="COPY", embed_textures=True)
    elif suffix == ".ply":
        bpy.ops.wm.ply_export(filepath=filepath, export_selected_objects=True, export_uv=True, export_colors="SRGB")
    elif suffix == ".stl":
        bpy.ops.wm.stl_export(filepath=filepath, export_selected_objects=True)
    else:  # OBJ and USD reference the texture as a file: put it beside them for the duration of the export.
        with _texture_file(image, _texture_path(path, image)):
            if suffix == ".obj":
                bpy.ops.wm.obj_export(
                    filepath=filepath, export_selected_objects=True, export_materials=True, path_mode="STRIP"
                )
            else:
                bpy.ops.wm.usd_export(
                    filepath=filepath,
                    selected_objects_only=True,
                    export_materials=True,
                    export_textures_mode="KEEP",
                    relative_paths=True,
                    export_cameras=True,
                )


def _texture_path(path: Path, image: bpy.types.Image) -> Path:
    """Where the texture of the output `path` goes: beside it, named after it (`x.obj` -> `x_texture.jpg`)."""
    return path.with_name(f"{path.stem}_texture{Path(image.filepath_raw).suffix}")


@contextmanager
def _texture_file(image: bpy.types.Image, path: Path):
    """Write a packed image's bytes to `path` and have the materials use that file while the block runs.

    An image loaded from the file, not the packed image pointed at it: USD refers to any packed image as
    textures/<a name of its own>, a file it does not write in KEEP mode.
    """
    path.write_bytes(image.packed_file.data)
    on_disk = bpy.data.images.load(str(path), check_existing=False)
    nodes = [
        node
        for material in bpy.data.materials
        if material.node_tree
        for node in material.node_tree.nodes
        if node.type == "TEX_IMAGE" and node.image == image
    ]
    for node in nodes:
        node.image = on_disk
    try:
        yield
    finally:
        for node in nodes:
            node.image = image
        bpy.data.images.remove(on_disk)


@contextmanager
def _image_path(image: bpy.types.Image, path: Path):
    """Point the image at `path` while the block runs (a packed image keeps its pixels)."""
    saved, image.filepath_raw = image.filepath_raw, str(path)
    try:
        yield
    finally:
        image.filepath_raw = saved

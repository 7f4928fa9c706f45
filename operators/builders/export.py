"""Writing the built objects to a file chosen by its extension, never leaving a half-written file behind."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import bpy

from ...inference.errors import InputError
from .objects import select_only

EXPORT_SUFFIXES = (".glb", ".gltf", ".obj", ".fbx", ".usdc", ".usda", ".usd", ".ply", ".stl", ".blend")


class StagedOutputs:
    """Every output file of one photo, all or nothing.

    Each exporter writes into a hidden staging folder beside its target; only once every output is complete are
    the files moved into place, sidecars (texture, .mtl, .bin) first and main files last. On an error or an
    interruption before that, nothing is moved, the staging folders go, and so do output folders this created.
    """

    def __init__(self, outputs: list[Path]):
        self.outputs = list(dict.fromkeys(outputs))
        for path in self.outputs:
            if path.suffix.lower() not in EXPORT_SUFFIXES:
                raise InputError(f"Cannot write '{path.name}': the output must end in one of {' '.join(EXPORT_SUFFIXES)}.")
        self._staging: dict[Path, Path] = {}
        self._created: list[Path] = []

    def __enter__(self) -> StagedOutputs:
        for folder in dict.fromkeys(path.parent for path in self.outputs):
            try:
                missing = [p for p in (folder, *folder.parents) if not p.exists()]
                folder.mkdir(parents=True, exist_ok=True)
                self._created += missing
                # Absolute: Blender resolves a relative path against $PWD, which need not be the working directory.
                self._staging[folder] = Path(os.path.abspath(tempfile.mkdtemp(prefix=".image_to_mesh-", dir=folder)))
            except OSError as err:
                self.__exit__(type(err), err, None)
                raise InputError(f"Cannot write to the folder '{folder}': {err.strerror}.") from err
        return self

    def export(self, objects: list[bpy.types.Object], path: Path, image: bpy.types.Image) -> None:
        """Export `objects` (the mesh textured with `image`, and its camera) as `path`, into staging."""

        def write(staged: Path) -> None:
            select_only(bpy.context.view_layer, objects)
            try:
                _write(path.suffix.lower(), staged, image)
            except RuntimeError as err:  # the exporter failed (a full disk, a quota): bpy.ops wraps what it reported
                raise InputError(f"Cannot write '{path}': {_exporter_error(err)}.") from err

        self.write(path, write)

    def write(self, path: Path, write: Callable[[Path], None]) -> None:
        """Have `write` write `path` (and any sidecar files beside it) into staging."""
        try:
            write(self._staging[path.parent] / path.name)
        except OSError as err:
            raise InputError(f"Cannot write '{path}': {err.strerror or err}.") from err

    def commit(self) -> list[Path]:
        """Move every staged file into place; return them, main files last."""
        main_names = {(path.parent, path.name) for path in self.outputs}
        staged = [(folder, file) for folder, staging in self._staging.items()
                  for file in staging.rglob("*") if file.is_file()]
        staged.sort(key=lambda item: (item[0], item[1].name) in main_names)
        written = []
        try:
            for folder, file in staged:
                target = folder / file.relative_to(self._staging[folder])
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(file, target)
                written.append(target)
        except OSError as err:
            raise InputError(f"Cannot write '{target}': {err.strerror or err}.") from err
        self._created = []  # kept: they hold the outputs now
        return written

    def __exit__(self, kind, error, trace) -> None:
        for staging in self._staging.values():
            shutil.rmtree(staging, ignore_errors=True)
        for folder in self._created:  # deepest first: each is removed only if nothing else is in it
            try:
                folder.rmdir()
            except OSError:
                pass


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

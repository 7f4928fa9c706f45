"""Photo -> MeshRecord: the one pipeline that the Blender operator and the CLI both call.

A dispatcher over backends. Every method first gets the same prepared photo (loaded, its subject masked, its
quality checked: photo.prepared); its backend then makes the shape, camera and texture (depth/backend.py for
"depth-map", "model" and "inflate"; generate/backend.py for "generate": a whole object by an object generator);
last, --height/--width give the result its real size.
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

import numpy as np

from .depth.backend import depth_mesh
from .depth.sources import present_or
from .errors import InputError
from .generate.backend import check_generation, check_views, generated_object
from .masks.subject import MASK_MODES
from .memory import MeshPlan, plan_of
from .photo.photo import Photo, fit_texture, load_photo
from .photo.prepared import prepare_photo
from .record import MeshRecord
from .runtime.access import ModelAccess
from .runtime.cards import model_card
from .settings import MeshSettings

# method -> backend(method, prepared photo, depth map or None, settings, models) -> MeshRecord
BACKENDS = {"depth-map": depth_mesh, "model": depth_mesh, "inflate": depth_mesh, "generate": generated_object}


def image_to_mesh(
    photo: Photo | str | Path,
    depth: np.ndarray | str | Path | None = None,
    settings: MeshSettings | None = None,
    models: ModelAccess | None = None,
    check_memory: Callable[[MeshPlan], None] | None = None,
    views: dict[str, Photo | str | Path] | None = None,
) -> MeshRecord:
    """Mesh a photo (file or Photo) with its depth map (file or array), a depth model, or its mask alone; or
    generate the object in it, seen also in `views` ({"left" | "back" | "right": photo}) by a multi-view generator.

    `check_memory` gets the plan of the mesh (memory.MeshPlan) once its size is known: after the photo's subject
    mask, before any depth model runs or any mesh is made; it raises InputError to stop there.
    Raises InputError on bad input (and Cancelled, an InputError, when models.cancel is set).
    """
    settings, views = settings or MeshSettings(), views or {}
    check_sources(settings, depth is not None, models, tuple(views))
    method = choose_method(settings, depth is not None, models)
    start = time.perf_counter()
    photo, *more = [p if isinstance(p, Photo) else load_photo(p, max_side=photo_load_side(settings))
                    for p in (photo, *views.values())]
    loaded = time.perf_counter() - start

    prepared = prepare_photo(photo, settings, models, photo_load_side(settings))
    prepared.views = {tag: prepare_photo(view, settings, models, photo_load_side(settings))
                      for tag, view in zip(views, more)}
    # A generated mesh is bounded by its face budget; the generator's memory is its worker's (a process of its own,
    # whose out-of-memory end is one sentence).
    if check_memory is not None and method != "generate":
        check_memory(plan_of(prepared, settings, method))
    record = BACKENDS[method](method, prepared, depth, settings, models)
    report = replace(
        record.report, settings=asdict(settings), mask=prepared.mask_report, quality=prepared.quality,
        preparation=prepared.steps, quality_before=prepared.quality_before,
        timings={"load": loaded, "prepare": prepared.seconds + sum(v.seconds for v in prepared.views.values()),
                 **record.report.timings},
    )
    # The texture's long side is what was asked (capped by the photo's), whatever the mesh's resolution: the
    # photo was loaded at the larger of the two, for the depth's sake.
    record = replace(record, report=report, texture=fit_texture(record.texture, settings.texture_size),
                     photo=record.photo and fit_texture(record.photo, settings.texture_size))
    return _real_size(record, settings)


def photo_load_side(settings: MeshSettings) -> int:
    """The long side a photo is loaded at (never above its own): the texture's, or the mesh grid's when finer."""
    return max(settings.texture_size, settings.resolution)


def check_sources(settings: MeshSettings, has_depth_map: bool, models: ModelAccess | None, views=()) -> None:
    """Everything a run needs that can be checked before a photo is read: the settings, the view tags of more
    photos, a local model file, and models that are neither here nor downloadable. A refusal comes at once, never
    after minutes of work."""
    settings.check()
    check_views(settings, views)
    method = choose_method(settings, has_depth_map, models)
    if settings.model_file and method == "model" and not Path(settings.model_file).is_file():
        raise InputError(f"The model file '{settings.model_file}' does not exist.")
    if models is None:
        return
    if method == "generate":
        check_generation(settings, models)
    if method == "model" and not settings.model_file:
        card = model_card(settings.model)
        models.store.check_obtainable(present_or(card, models.store) if settings.method == "auto" else card,
                                      models.license_accepted)
    if settings.mask_mode not in MASK_MODES or settings.mask_mode == "u2net":
        models.store.check_obtainable(model_card(settings.mask_mode, task="mask"), models.license_accepted)


def choose_method(settings: MeshSettings, has_depth_map: bool, models: ModelAccess | None) -> str:
    """The backend that runs: settings.method, with "auto" resolved."""
    if settings.method in ("inflate", "generate"):
        if has_depth_map and settings.method == "generate":
            raise InputError("A generated object takes no depth map: leave the depth map out, or use --method "
                             "depth-map.")
        if models is None and settings.method == "generate":
            raise InputError("Object generation needs a models folder for its model and environment.")
        return settings.method
    if has_depth_map and settings.method == "model":
        raise InputError("Choose one depth source: a depth map, or --method model, not both.")
    if not has_depth_map and settings.method == "depth-map":
        raise InputError("No depth map given: pass --depth-map, or use a depth model (--method auto).")
    if has_depth_map:
        return "depth-map"
    if models is None:
        raise InputError("No depth source: give the photo's depth map, or a models folder for a depth model.")
    return "model"


def _real_size(record: MeshRecord, settings: MeshSettings) -> MeshRecord:
    """Scale the result so the subject has its real height or width (unchanged when neither is given).

    Object and cameras scale together about the record's origin, so every vertex stays on its pixel.
    """
    if settings.height is None and settings.width is None:
        return record
    axis, target = (1, settings.height) if settings.height is not None else (0, settings.width)
    extent = float(record.vertices[:, axis].max() - record.vertices[:, axis].min())
    if extent <= 0:
        raise InputError("The subject has no extent to scale.")
    scale = target / extent
    camera = record.camera and replace(record.camera, position=record.camera.position * scale)
    more = tuple(replace(m, camera=replace(m.camera, position=m.camera.position * scale)) for m in record.more_cameras)
    return replace(record, vertices=record.vertices * np.float32(scale), camera=camera, more_cameras=more,
                   report=replace(record.report, scale=scale))

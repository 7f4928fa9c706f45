"""The generate backend: a prepared photo -> a whole object by an object generator, placed where the photo says.

1. The subject, cut out (alpha = its mask), goes to the generator's worker (its own Python: worker_client), which
   returns a clean mesh (floaters and degenerate faces removed, at most the face budget) with a UV atlas, upright
   in its canonical frame and with no camera. A multi-view generator gets the front photo and 1 to 3 more of the
   same object (left = turned 90 degrees clockwise seen from the front camera, back, right), each cut out by its
   own mask.
2. The camera that took each photo is found by matching the mesh's silhouette to its subject mask
   (objects.camera_fit), so looking through it the object sits on the photo. A single photo's yaw is searched
   around the front; a multi-view photo's yaw is its tag's (0, 90, 180, 270 degrees), so only elevation, field
   of view, scale and offset are fitted. A generator that names the camera it assumed (TripoSR: its input
   view, 40 degrees across the square it cropped, from 1.9 units) gives the pose and field of view: scale and
   offset are refined, the angles only a little.
3. The photos are baked into the atlas through their cameras (objects.texture_bake): each texel takes its colour
   from the photos that see it best, blended across view boundaries with their exposures evened out; what no
   photo sees is filled from the rest over the surface, or shows the generator's own colours where it has them.
4. The atlas splits vertices along its seams; the record welds them back and carries the UVs per face corner, so
   the object stays watertight in Blender.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputError
from ..geometry.camera import Intrinsics, photo_intrinsics
from ..geometry.view import View, long_side_fov_deg
from ..objects.camera_fit import YAW_BY_NAME, fit_camera, generator_view, refine_camera
from ..objects.texture_bake import PhotoView, bake, weld
from ..photo.photo import Texture
from ..photo.prepared import PreparedPhoto
from ..record import CameraReport, GenerationReport, MeshRecord, ModelRun, PhotoCamera, Report
from ..runtime.access import ModelAccess
from ..runtime.cache import content_hash, file_key
from ..runtime.cards import ModelCard, model_card, task_cards
from .shape_models import local_model_folders, model_files, model_folders, shape_request
from .shape_settings import ShapeSettings
from .worker_client import GeneratedMesh, Progress
from .worker_env import SETUP_FIX, WorkerEnvironment, check_environment

SUBJECT_MAX_SIDE = 1024  # the generator sees the subject at 512 px: a larger cut-out only costs time
ATLAS_MAX_SIDE = 2048  # a generated object's texture atlas: one photo's detail spread over the whole surface
# How far a generator's input view may turn while its scale and offset are refined: the view only approximates the
# crop of an off-centre subject (camera_fit.generator_view).
INPUT_VIEW_TURN_DEG = 10.0
MORE_VIEWS = ("left", "back", "right")  # a multi-view generator's photos besides the front one
STAGES = {"load": "loading the model", "diffusion": "diffusion", "decode": "decoding the shape",
          "cleanup": "cleaning the mesh", "reduce": "reducing faces", "uv": "unwrapping UVs",
          "triplane": "reading the photo", "density": "decoding the shape", "surface": "extracting the surface",
          "colour": "colouring the vertices"}  # the last four: TripoSR's


def generator_card(settings) -> ModelCard:
    return model_card(settings.generator, task="object")


def generator_environment(models: ModelAccess) -> WorkerEnvironment:
    """The environment object generation runs in, or one sentence naming the fix."""
    if models.generator_folder is None:
        raise InputError(f"Object generation is not set up: {SETUP_FIX}.")
    return check_environment(models.generator_folder)


REFERENCE_CORES = 2  # the CPU the cards' cpu_minutes were measured on


def expected_time(card: ModelCard, device: str, cores: int) -> str:
    """What one photo takes with `card` at its defaults on this machine, in words: the card's measured minutes
    scaled by the CPU's cores (PyTorch stops gaining much past 8), or the GPU's."""
    if device != "cpu":
        return f"seconds to a minute a photo on the {device.upper()} GPU"
    minutes = card.generator.cpu_minutes * REFERENCE_CORES / max(1, min(cores, 8))
    about = f"{minutes:.0f} minutes" if minutes >= 1.5 else "a minute" if minutes >= 0.75 else "under a minute"
    return f"about {about} a photo on this CPU ({cores} cores)"


def check_views(settings, views) -> None:
    """The view tags of the photos besides the front one (none, or 1 to 3 for a multi-view generator)."""
    multiview = settings.method == "generate" and generator_card(settings).generator.multiview
    if not views and not multiview:
        return
    if settings.method != "generate":
        raise InputError("More photos of the subject are for --method generate with a multi-view generator.")
    for tag in views:
        if tag not in MORE_VIEWS:
            raise InputError(f"Unknown view '{tag}': the photos besides the front one are {', '.join(MORE_VIEWS)}.")
    card = generator_card(settings)
    if not multiview:
        several = ", ".join(c for c, mv in _multiview_cards().items() if mv)
        raise InputError(f"{card.name} takes one photo: choose a multi-view generator ({several}) for several.")
    if not views:
        raise InputError(f"{card.name} takes the front photo and at least one more of the same object: give its "
                         "left, back or right photo (--view left=PATH).")


def _multiview_cards() -> dict[str, bool]:
    return {card_id: card.generator.multiview for card_id, card in task_cards("object").items()}


def check_generation(settings, models: ModelAccess) -> None:
    """What a generation needs and can be checked before a photo is read: the environment (set up first), then the
    model (here, downloadable, or a local folder in the official layout)."""
    generator_environment(models)
    card = generator_card(settings)
    if settings.model_file:
        local_model_folders(card, settings.model_file)
    else:
        models.store.check_obtainable(card, models.license_accepted)


def generated_object(method: str, prepared: PreparedPhoto, depth, settings, models: ModelAccess) -> MeshRecord:
    """The object of `prepared`'s subject, seen in its photo and in prepared.views' (`method` is "generate";
    `depth` is unused)."""
    photos = {"front": prepared, **prepared.views}
    for tag, view in photos.items():
        if view.mask is None or not view.mask.any():
            which = "" if tag == "front" else f"{tag} photo "
            raise InputError(f"No subject was found in the {which}'{view.photo.name}' to generate: try another mask "
                             "mode.")
    card = generator_card(settings)
    environment = generator_environment(models)
    report = Report(method, settings={}, closure="none", notices=[n for p in photos.values() for n in p.notices])
    start = time.perf_counter()
    if settings.model_file:
        dit, vae = local_model_folders(card, settings.model_file)
    else:
        dit, vae = model_folders(card, models.fetch(card))
    report.timings["fetch"] = time.perf_counter() - start
    device = environment.device if environment.accelerator_available else "cpu"
    if device != environment.device:
        report.notices.append(f"No {environment.device.upper()} device answered when object generation was set up: "
                              "it runs on the CPU (minutes, not seconds).")
    shape = {name: value for name in ("steps", "guidance", "octree_resolution")
             if (value := getattr(settings, name)) is not None}

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="image-to-mesh-subject-") as folder:
        subjects = {tag: _subject_png(p.photo.rgb, p.mask, Path(folder) / f"{tag}.png") for tag, p in photos.items()}
        front = subjects.pop("front")
        request = shape_request(card, front, dit, vae, device=device, seed=settings.seed, views=subjects,
                                target_faces=settings.target_faces or ShapeSettings.target_faces, **shape)
        mesh = _generated_mesh(models, environment, request, photos)
    report.timings["generate"] = time.perf_counter() - start

    start = time.perf_counter()
    fits = {tag: _fit_camera(mesh, p, settings, YAW_BY_NAME[tag] if prepared.views else None)
            for tag, p in photos.items()}
    report.timings["camera"] = time.perf_counter() - start

    start = time.perf_counter()
    side = min(settings.texture_size, ATLAS_MAX_SIDE)
    baked = bake(mesh.vertices, mesh.faces, mesh.uvs,
                 [PhotoView(fits[tag][0], p.photo.rgb, p.mask) for tag, p in photos.items()], side,
                 fallback_colours=mesh.colours)
    report.timings["texture"] = time.perf_counter() - start

    vertices, faces, corner_uvs, colours = _welded(mesh.vertices, mesh.faces, mesh.uvs, baked.vertex_colors)
    watertight = _is_watertight(faces)
    cameras = {tag: fits[tag][0].resized(*p.photo.source_size) for tag, p in photos.items()}
    camera, iou = cameras["front"], fits["front"][1]
    report.camera = CameraReport(camera.intrinsics.width, camera.intrinsics.height, camera.intrinsics.focal_px,
                                 camera.intrinsics.fov_x_deg, fits["front"][3])
    report.model = ModelRun(card.id, card.name, card.license, card.commercial, str(dit), device, "mesh",
                            mesh.report.get("cached", False))
    ious = {tag: fit[1] for tag, fit in fits.items()}
    report.generation = GenerationReport(
        request.steps, request.guidance, request.octree_resolution, request.seed, device, len(faces), watertight,
        iou, ious, {tag: fit[2] for tag, fit in fits.items()}, baked.report, mesh.report)
    report.notices += _notices(settings, ious, watertight, bool(prepared.views))
    return MeshRecord(
        prepared.photo.name, vertices, np.zeros((0, 4), np.int32), faces, None, corner_uvs, colours,
        Texture(f"{prepared.photo.name}_baked", baked.texture), camera, prepared.photo.texture, True, report,
        more_cameras=tuple(PhotoCamera(tag, cameras[tag], p.photo.texture) for tag, p in prepared.views.items()),
    )


def _generated_mesh(models: ModelAccess, environment: WorkerEnvironment, request, photos) -> GeneratedMesh:
    """The worker's mesh for `request`, or the cached one of the same cut-out photos, model and settings."""
    weights = [file_key(path) for folder in (request.dit_folder, request.vae_folder) if folder
               for path in model_files(request.family, folder) or ()]
    settings = {k: v for k, v in request.params().items() if k not in ("image", "views", "dit_folder", "vae_folder")}
    key = ["object", {tag: content_hash(p.photo.rgb, p.mask) for tag, p in photos.items()}, weights, settings]
    cached = models.cache.get(key)
    if cached is not None:
        arrays, report = cached
        return GeneratedMesh(arrays["vertices"], arrays["faces"], arrays.get("uvs"), {**report, "cached": True},
                             arrays.get("colours"))
    mesh = models.workers.worker(environment, models.threads).generate(request, _stage_reporter(models),
                                                                        models.cancel)
    models.cache.put(key, {"vertices": mesh.vertices, "faces": mesh.faces, "uvs": mesh.uvs, "colours": mesh.colours},
                     mesh.report)
    return mesh


def _fit_camera(mesh, prepared: PreparedPhoto, settings, known_yaw: float | None):
    """(view, IoU, report, where its camera came from in words) of one photo: its yaw fixed when known (a
    multi-view photo's tag), else searched around the front; its field of view fixed when the user or EXIF say."""
    photo = prepared.photo
    # The whole photo's camera, its focal length in the prepared photo's pixels (the generator saw a crop, if any).
    whole, camera_source = photo_intrinsics(prepared.camera_size, settings.fov, settings.focal_px or prepared.focal_px,
                                            photo.focal_35mm)
    intrinsics = Intrinsics(*photo.source_size, whole.focal_px * photo.source_size[0] / prepared.window.width)
    known_fov = not camera_source.startswith("field of view unknown")
    fov = long_side_fov_deg(intrinsics) if known_fov else None
    given = f"{camera_source.split(' (')[0]}, " if known_fov else ""
    if "input_view" in mesh.report:
        start = _input_view(mesh.report["input_view"], prepared.mask.shape[::-1])
        view, iou, fit = refine_camera(mesh.vertices, mesh.faces, prepared.mask, start, fov_deg=fov,
                                       turn_deg=INPUT_VIEW_TURN_DEG)
        return view, iou, fit, (f"{given}the generator's input view, its scale and offset fitted to the subject's "
                                f"silhouette (IoU {fit['initial_iou']:.3f} -> {iou:.3f})")
    yaw = {} if known_yaw is None else {"yaw_deg": known_yaw, "yaw_range_deg": 0.0}
    view, iou, fit = fit_camera(mesh.vertices, mesh.faces, prepared.mask, fov_deg=fov, **yaw)
    return view, iou, fit, f"{given}fitted to the subject's silhouette (IoU {iou:.3f})"


def _input_view(input_view: dict, size: tuple[int, int]) -> View:
    """The camera a generator assumed (its report's input_view), on the photo of `size` (width, height): its square
    is in the cut-out's pixels, a scaled copy of the photo's (_subject_png)."""
    scale = _subject_scale(size)
    return generator_view([value / scale for value in input_view["square"]], float(input_view["camera_distance"]),
                          float(input_view["fov_y_degrees"]), size)


def _subject_png(rgb: np.ndarray, mask: np.ndarray, path: Path) -> Path:
    """The photo with its background cut away (alpha = the subject mask), as the generator reads it."""
    image = Image.fromarray(np.dstack([rgb, np.where(mask, 255, 0).astype(np.uint8)]))
    scale = _subject_scale(image.size)
    if scale < 1.0:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.Resampling.LANCZOS)
    image.save(path, compress_level=1)
    return path


def _subject_scale(size: tuple[int, int]) -> float:
    """The cut-out's pixels per photo pixel."""
    return min(1.0, SUBJECT_MAX_SIDE / max(size))


def _stage_reporter(models: ModelAccess):
    if models.stage is None:
        return None

    def report(progress: Progress) -> None:
        models.stage(f"Generating: {STAGES.get(progress.stage, progress.stage)}", progress.step, progress.steps)

    return report


def _welded(vertices, faces, uvs, colours) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The atlas's seam-split vertices merged back (one vertex per position), the UVs moved to face corners."""
    ids = weld(vertices)
    first = np.zeros(int(ids.max()) + 1, np.int64)
    first[ids[::-1]] = np.arange(len(ids))[::-1]  # the first vertex at each position
    corner_uvs = np.ascontiguousarray(uvs[faces].reshape(-1, 2), dtype=np.float32)
    return (np.ascontiguousarray(vertices[first], np.float32), ids[faces].astype(np.int32), corner_uvs,
            np.ascontiguousarray(colours[first], np.float32))


def _is_watertight(faces: np.ndarray) -> bool:
    edges = np.sort(np.stack([faces, np.roll(faces, -1, axis=1)], axis=2).reshape(-1, 2), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    return bool(len(counts)) and bool((counts == 2).all())


def _notices(settings, ious: dict[str, float], watertight: bool, multiview: bool) -> list[str]:
    notices = ["The sides the photos do not show were invented by the generator: only what they show follows them."
               if multiview else "The sides the photo does not show were invented by the generator: only the visible "
               "side follows the photo."]
    for tag, iou in ious.items():
        if iou < 0.85:
            which = f"the {tag} photo's" if multiview else "the photo's"
            notices.append(f"The object's silhouette matches {which} subject only {iou:.0%}: the generator misread "
                           "it (try another seed, a plainer background, or a more frontal photo).")
    if not watertight:
        notices.append("The generated mesh is not watertight (some edges are open or shared by more than two "
                       "faces): check it before 3D printing.")
    if settings.height is None and settings.width is None:
        notices.append("A photo has no scale: the object's size is the generator's (about 2 m across); give its "
                       "real height or width for true size.")
    return notices


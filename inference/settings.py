"""Every setting a user can choose, declared once.

A setting is a dataclass field whose metadata (`option(...)`) holds what a person reads: label, help, choices,
range, unit. The Blender properties (operator, sidebar, preferences: operators/properties.py) and the CLI's
options (cli.py) are both derived from these declarations, so adding a setting is one edit here; where a
setting is shown only on one side, `shown_in` says so and `why` says why (a test holds every field to that).

A setting whose default is None ("automatic") is 0 or "" on the Blender side, where a property cannot be
empty: `blender_value`/`from_blender` translate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

from .errors import InputError
from .depth.kinds import DEPTH_KINDS
from .geometry.closure import CLOSURES
from .geometry.grid_mesh import DEFAULT_EDGE_THRESHOLD_DEG, DEFAULT_RESOLUTION
from .geometry.occlusion_fill import DEFAULT_OCCLUSION_FILL_SHARE
from .geometry.remesh import REMESHES, VOXEL_FACES
from .masks.subject import MASK_MODES
from .photo.lens import parse_lens
from .photo.upscale import UPSCALE_MODES
from .runtime.cards import DEFAULT_GENERATOR, DEFAULT_MODEL, model_card, model_cards, task_cards
from .runtime.onnx_session import DEVICES

BOTH = ("blender", "cli")


@dataclass(frozen=True)
class Option:
    label: str
    help: str
    choices: tuple[tuple[str, str, str], ...] = ()  # (id, label, description)
    minimum: float | None = None
    maximum: float | None = None
    soft_maximum: float | None = None  # Blender's slider end, where the hard maximum is far
    unit: str = ""  # "metres", "degrees", "pixels" or "percent": Blender shows lengths in the scene's units
    kind: type | None = None  # the value's type where the default (None) does not say
    flag: str = ""  # the CLI's option, when not --<field-name>
    aliases: tuple[str, ...] = ()  # more CLI options for the same setting (a name users know from elsewhere)
    metavar: str | None = None
    path: str = ""  # "file" or "folder": a path the user picks
    shown_in: tuple[str, ...] = BOTH
    why: str = ""  # why a setting is not shown in both


def option(default, label: str, help: str, **details):
    return field(default=default, metadata={"option": Option(label, help, **details)})


def options(settings_class) -> list[tuple[str, object, Option]]:
    """(name, default, Option) of every declared setting of a settings dataclass, in declaration order."""
    return [(f.name, f.default, f.metadata["option"]) for f in fields(settings_class) if "option" in f.metadata]


def cli_flags(name: str, opt: Option) -> tuple[str, ...]:
    """A setting's command-line options: its own, then its aliases."""
    return (opt.flag or "--" + name.replace("_", "-"), *opt.aliases)


def value_kind(default, opt: Option) -> type:
    return opt.kind or type(default)


def blender_value(value, default, opt: Option):
    """A setting's value as its Blender property holds it (0 for an automatic number, "" for an unset path)."""
    if value is None:
        return 0 if value_kind(default, opt) in (int, float) else ""
    return value


def from_blender(value, default, opt: Option):
    """A Blender property's value as the setting (0 or "" for an automatic value is None)."""
    return None if default is None and not value else value


def _choices(described: dict) -> tuple[tuple[str, str, str], ...]:
    """Blender-style (id, label, description) items from a module's {id: (label, description)} vocabulary."""
    return tuple((key, *text[-2:]) for key, text in described.items())


# The depth sources the pipeline dispatches over (pipeline.py).
METHODS = {
    "auto": ("Automatic", "The depth map when one is given, else a depth model"),
    "model": ("Depth Model", "Estimate depth from the photo with a depth model (downloaded once)"),
    "depth-map": ("Depth Map File", "A depth map you already have: EXR, PNG, TIFF, PFM or .npy"),
    "inflate": ("Inflate", "Round the subject's silhouette into a closed object: no model, fully offline"),
    "generate": ("Generate Full Object", "A whole object, back included, by a diffusion model in its own Python "
                 "environment (set up once; a GPU is advised)"),
}


def _card_choices(task: str):
    return _choices({i: (c.name, f"{c.best_for} ({c.license}, {c.size_mb:g} MB)") for i, c in task_cards(task).items()})


# White balance: none, or the grey-world rule (photo/exposure.py).
WHITE_BALANCE = {"off": ("Off", "The photo's colours as they are"),
                 "auto": ("Automatic", "Grey world: the photo's average colour made neutral")}
DEFAULT_UPSCALE_MODEL = "realesr-general-x4v3"

# "default" lets the closure decide: a subject mask for an object, none for a relief.
_DEFAULT_MASK = {"default": ("Automatic", "A subject mask when closing or inflating an object, none for a relief")}


@dataclass
class MeshSettings:
    """What shapes one conversion: the depth source, the camera, the mesh, the object and its finish."""

    method: str = option("auto", "Method", "where the depth comes from", choices=_choices(METHODS))
    model: str = option(DEFAULT_MODEL, "Model", "the depth model (see --list-models)", choices=_card_choices("depth"))
    model_file: str | None = option(
        None, "Model File", "local weights for the model's card, used instead of a download (no hash check)",
        kind=str, path="file", metavar="PATH",
    )
    accept_license: bool = option(
        False, "Accept Licence", "accept the licence of a non-commercial model so it may be downloaded",
    )
    generator: str = option(DEFAULT_GENERATOR, "Generator", "the object generator of --method generate",
                            choices=_card_choices("object"))
    steps: int | None = option(
        None, "Steps", "diffusion steps of the generator; automatic: the generator's own (5 for Turbo, else 30)",
        kind=int, minimum=1, maximum=200, metavar="N",
    )
    guidance: float | None = option(
        None, "Guidance", "how closely the generator follows the photo (classifier-free guidance); automatic: 5",
        kind=float, minimum=1.0, maximum=50.0, soft_maximum=15.0, metavar="SCALE",
    )
    octree_resolution: int | None = option(
        None, "Shape Resolution",
        "the grid a generated shape is decoded on (Hunyuan3D-2's octree, TripoSR's marching cubes): finer detail, "
        "longer decoding; automatic: 256", kind=int, minimum=32, maximum=512, metavar="N",
        aliases=("--mc-resolution",),
    )
    seed: int = option(0, "Seed", "the generator's random seed: the same seed and settings give the same object",
                       minimum=0, maximum=2**31 - 1)
    depth_kind: str = option("metric", "Depth Kind", "what a depth map's values are", choices=_choices(DEPTH_KINDS))
    depth_scale: float = option(
        1.0, "Depth Scale", "multiplies the depth, e.g. 0.001 for a depth map in millimetres",
        minimum=1e-6, maximum=1e6, soft_maximum=1000.0,
    )
    near: float = option(1.0, "Near", "nearest depth of relative depth, metres", minimum=1e-3, maximum=1e6,
                         unit="metres")
    far: float = option(5.0, "Far", "farthest depth of relative depth, metres", minimum=1e-3, maximum=1e6,
                        unit="metres")
    fov: float | None = option(
        None, "Field of View",
        "horizontal field of view in degrees; automatic: the model's, else the photo's EXIF, else 55 degrees "
        "across the long side",
        kind=float, minimum=0.0, maximum=179.0, unit="degrees", metavar="DEG",
    )
    focal_px: float | None = option(
        None, "Focal Length (px)", "focal length in the photo's pixels; wins over the field of view",
        kind=float, minimum=1.0, maximum=1e6, soft_maximum=20000.0, metavar="PX",
    )
    resolution: int = option(
        DEFAULT_RESOLUTION, "Resolution", "vertices along the photo's long side (capped at one per pixel)",
        minimum=2, soft_maximum=4096, maximum=16384,
    )
    edge_threshold: float = option(
        DEFAULT_EDGE_THRESHOLD_DEG, "Edge Threshold",
        "faces more oblique to the view than this many degrees are depth jumps and are cut; 90 keeps all",
        minimum=1.0, maximum=90.0, unit="degrees", metavar="DEG",
    )
    occlusion_fill: float = option(
        DEFAULT_OCCLUSION_FILL_SHARE * 100, "Occlusion Fill",
        "how far the background continues under the foreground at each depth cut, in % of the long side of the "
        "photo (or its crop), so no seam shows through the camera; 0 = off (closed objects get none: their back "
        "fills in)",
        minimum=0.0, maximum=10.0, unit="percent", metavar="PCT",
    )
    mask: str = option(
        "default", "Mask",
        "the subject mask: auto (alpha, else U2-Net-p) when closing or inflating an object, none for a relief",
        choices=_choices({**_DEFAULT_MASK, **MASK_MODES}) + _card_choices("mask"),
    )
    feather: float = option(
        0.0, "Feather", "fade the texture out over this many photo pixels inside the mask's edge",
        minimum=0.0, maximum=1e4, soft_maximum=50.0, unit="pixels", metavar="PX",
    )
    undistort: str | None = option(
        None, "Undistort",
        "remove lens distortion: OpenCV's coefficients K1[,K2[,P1,P2]] for the photo's own camera, or a "
        "calibration file (OpenCV YAML/JSON: camera_matrix, distortion_coefficients)",
        kind=str, metavar="K1[,K2[,P1,P2]]|FILE",
    )
    white_balance: str = option("off", "White Balance", "correct a colour cast before masks and models",
                                choices=_choices(WHITE_BALANCE))
    auto_exposure: bool = option(
        False, "Auto Exposure", "stretch the levels (clipping-aware) of an under-exposed photo before masks and models",
    )
    crop_subject: bool = option(
        False, "Crop to Subject",
        "crop the photo to the subject (mask box and a margin) so it fills 60 %+ of what the models see; the "
        "camera still lines the mesh up with the whole photo",
    )
    upscale: str = option(
        "off", "Upscale", "enlarge a small photo with a super-resolution model (bicubic when it is not here)",
        choices=_choices(UPSCALE_MODES),
    )
    upscale_model: str = option(DEFAULT_UPSCALE_MODEL, "Upscale Model", "the super-resolution model",
                                choices=_card_choices("upscale"))
    closure: str = option("none", "Close", "close the subject into a watertight object", choices=_choices(CLOSURES))
    thickness: float | None = option(
        None, "Thickness", "solidify thickness in metres; automatic: 10 % of the width",
        kind=float, minimum=0.0, maximum=1e4, unit="metres", metavar="M",
    )
    height: float | None = option(
        None, "Real Height", "the subject's real height in metres (its extent along the photo's vertical)",
        kind=float, minimum=0.0, maximum=1e4, unit="metres", metavar="M",
    )
    width: float | None = option(
        None, "Real Width", "the subject's real width in metres (its extent along the photo's horizontal)",
        kind=float, minimum=0.0, maximum=1e4, unit="metres", metavar="M",
    )
    texture_size: int = option(
        4096, "Texture Size", "long side of the texture in pixels (capped by the photo's)",
        minimum=16, maximum=16384, unit="pixels", metavar="PX",
    )
    target_faces: int = option(
        0, "Target Faces",
        "decimate to about this many faces (Blender's Decimate), or a remesh's face budget; 0 keeps every face "
        "(a generated object: 50000)",
        minimum=0, maximum=10**9, metavar="N",
    )
    smooth: int = option(0, "Smooth", "smoothing iterations; 0 = none", minimum=0, maximum=100, metavar="N")
    remesh: str = option(
        "none", "Remesh", "rebuild the mesh as a base mesh to sculpt on, the photo on its new UVs (baked; a relief's "
        "projected through its camera): quad (QuadriFlow, --target-faces faces) or voxel (--voxel-size)", choices=_choices(REMESHES),
    )
    voxel_size: float | None = option(
        None, "Voxel Size",
        f"the voxel remesh's detail in metres; automatic: about --target-faces faces (else {VOXEL_FACES})",
        kind=float, minimum=0.0, maximum=1e4, unit="metres", metavar="M",
    )
    apply_finish: bool = option(
        False, "Apply", "bake smoothing and decimation into the mesh instead of keeping live modifiers",
        shown_in=("blender",), why="exported files always carry the finished mesh",
    )

    @property
    def mask_mode(self) -> str:
        if self.mask != "default":
            return self.mask
        return "auto" if self.closure_mode != "none" or self.method == "generate" else "none"

    @property
    def closure_mode(self) -> str:
        """The closure that runs: an inflated object is closed by mirroring unless told otherwise."""
        return "inflate" if self.method == "inflate" and self.closure == "none" else self.closure

    def check(self) -> None:
        """Raise InputError for settings no photo could satisfy (before any photo is read, so once per run)."""
        if getattr(model_cards().get(self.model), "task", "") == "object":
            raise InputError(f"{self.model} is an object generator: use --method generate --generator {self.model}.")
        _check_declared(self)
        if not 0 < self.near < self.far:
            raise InputError(f"Near ({self.near:g}) and far ({self.far:g}) must satisfy 0 < near < far.")
        if self.fov is not None and not 0 < self.fov < 180:
            raise InputError(f"The field of view must be between 0 and 180 degrees, not {self.fov:g}.")
        if self.fov is not None and self.focal_px is not None:
            raise InputError("Give the field of view or the focal length, not both.")
        if self.method in ("inflate", "generate") and self.mask_mode == "none":
            raise InputError(f"--method {self.method} shapes the subject from its mask: choose a mask other than "
                             "'none'.")
        if self.method == "generate" and self.closure != "none":
            raise InputError("A generated object is closed already: leave --closure at none.")
        if self.remesh == "quad" and not self.target_faces:
            raise InputError("A quad remesh needs a face budget: give --target-faces, e.g. 5000.")
        if self.undistort:
            lens = parse_lens(self.undistort)
            if lens.matrix is not None and (self.fov is not None or self.focal_px is not None):
                raise InputError("A calibration file gives the focal length: do not give the field of view or "
                                 "the focal length as well.")
        if self.height is not None and self.width is not None:
            raise InputError("Give the subject's real height or its width, not both.")
        for name in ("height", "width", "thickness", "focal_px", "voxel_size"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise InputError(f"The {_label(self, name).lower()} must be a positive number, not {value:g}.")


# Starting points for the common jobs: each sets the settings it names, the rest keep their values (CLI: --preset,
# explicit options win; sidebar: the preset buttons).
PRESETS = {
    "relief": ("Relief", "The surface the photo sees, at full detail: a wall, a carving, a face", {
        "method": "auto", "closure": "none", "mask": "none", "resolution": 1024, "edge_threshold": DEFAULT_EDGE_THRESHOLD_DEG,
    }),
    "product": ("Product Object", "A cut-out object with a mirrored back, standing on the ground", {
        "method": "auto", "closure": "mirror", "mask": "auto", "feather": 2.0, "resolution": 512,
    }),
    "backdrop": ("Environment Backdrop", "A whole scene in metres behind your set: metric depth, no mask", {
        "method": "model", "model": "moge-2-vitb", "closure": "none", "mask": "none", "resolution": 1024,
        "edge_threshold": 80.0,
    }),
}


def apply_preset(settings: MeshSettings, name: str, keep: set[str] = frozenset()) -> MeshSettings:
    """`settings` with preset `name`'s values, except for the settings in `keep` (given explicitly)."""
    if name not in PRESETS:
        raise InputError(f"Unknown preset '{name}': use one of {', '.join(PRESETS)}.")
    return replace(settings, **{key: value for key, value in PRESETS[name][2].items() if key not in keep})


@dataclass
class RuntimeSettings:
    """Where inference runs: Blender's add-on preferences, the CLI's options."""

    device: str = option(
        "cpu", "Device", "where models run; anything unavailable falls back to the CPU with a message",
        choices=_choices(DEVICES),
    )
    threads: int = option(0, "Threads", "CPU threads for inference; 0 = all cores", minimum=0, maximum=256)
    models_folder: str | None = option(
        None, "Models Folder", "where downloaded models are kept; empty = the extension's user folder",
        kind=str, path="folder", flag="--cache-dir", metavar="DIR",
    )
    cache_mb: int = option(
        0, "Disk Cache (MB)",
        "keep model outputs (depth, masks, generated shapes) on disk in the models folder, up to this many MB, so a "
        "photo meshed again later skips its model; 0 = in memory only, for this session",
        minimum=0, maximum=10**7, metavar="MB",
    )
    generator_python: str | None = option(
        None, "Generator Python",
        "the Python (3.10 or newer) that object generation's environment is made from; empty = Blender's own",
        kind=str, path="file", metavar="PATH",
    )


def _label(settings, name: str) -> str:
    return next(opt.label for n, _, opt in options(type(settings)) if n == name)


def _check_declared(settings) -> None:
    """Every value against its declaration: a known choice, a finite number within the range."""
    for name, default, opt in options(type(settings)):
        value = getattr(settings, name)
        if value is None:
            continue
        if opt.choices and value not in [c[0] for c in opt.choices]:
            ids = ", ".join(c[0] for c in opt.choices)
            raise InputError(f"Unknown {opt.label.lower()} '{value}': use one of {ids}.")
        if value_kind(default, opt) in (int, float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise InputError(f"The {opt.label.lower()} must be a finite number, not {value}.")
            low, high = opt.minimum, opt.maximum
            if (low is not None and value < low) or (high is not None and value > high):
                bounds = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"
                raise InputError(f"The {opt.label.lower()} must be {bounds}, not {value:g}.")

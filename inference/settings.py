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
from dataclasses import dataclass, field, fields

from .errors import InputError
from .depth.kinds import DEPTH_KINDS
from .geometry.closure import CLOSURES
from .geometry.grid_mesh import DEFAULT_EDGE_THRESHOLD_DEG, DEFAULT_RESOLUTION
from .masks.subject import MASK_MODES
from .runtime.cards import DEFAULT_MODEL, model_card, task_cards
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
    unit: str = ""  # "metres", "degrees" or "pixels": Blender shows lengths in the scene's units
    kind: type | None = None  # the value's type where the default (None) does not say
    flag: str = ""  # the CLI's option, when not --<field-name>
    metavar: str | None = None
    path: str = ""  # "file" or "folder": a path the user picks
    shown_in: tuple[str, ...] = BOTH
    why: str = ""  # why a setting is not shown in both


def option(default, label: str, help: str, **details):
    return field(default=default, metadata={"option": Option(label, help, **details)})


def options(settings_class) -> list[tuple[str, object, Option]]:
    """(name, default, Option) of every declared setting of a settings dataclass, in declaration order."""
    return [(f.name, f.default, f.metadata["option"]) for f in fields(settings_class) if "option" in f.metadata]


def value_kind(default, opt: Option) -> type:
    return opt.kind or type(default)


def blender_value(value, default, opt: Option):
    """A setting's value as its Blender property holds it (0 for an automatic number)."""
    return 0 if value is None and value_kind(default, opt) in (int, float) else value


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
}


def _card_choices(task: str):
    return _choices({i: (c.name, f"{c.best_for} ({c.license}, {c.size_mb:g} MB)") for i, c in task_cards(task).items()})


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
    mask: str = option(
        "default", "Mask",
        "the subject mask: auto (alpha, else U2-Net-p) when closing or inflating an object, none for a relief",
        choices=_choices({**_DEFAULT_MASK, **MASK_MODES}) + _card_choices("mask"),
    )
    feather: float = option(
        0.0, "Feather", "fade the texture out over this many photo pixels inside the mask's edge",
        minimum=0.0, maximum=1e4, soft_maximum=50.0, unit="pixels", metavar="PX",
    )
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
        0, "Target Faces", "decimate to about this many faces (Blender's Decimate); 0 keeps every face",
        minimum=0, maximum=10**9, metavar="N",
    )
    smooth: int = option(0, "Smooth", "smoothing iterations; 0 = none", minimum=0, maximum=100, metavar="N")
    apply_finish: bool = option(
        False, "Apply", "bake smoothing and decimation into the mesh instead of keeping live modifiers",
        shown_in=("blender",), why="exported files always carry the finished mesh",
    )

    @property
    def mask_mode(self) -> str:
        if self.mask != "default":
            return self.mask
        return "auto" if self.closure_mode != "none" else "none"

    @property
    def closure_mode(self) -> str:
        """The closure that runs: an inflated object is closed by mirroring unless told otherwise."""
        return "inflate" if self.method == "inflate" and self.closure == "none" else self.closure

    def check(self) -> None:
        """Raise InputError for settings no photo could satisfy (before any photo is read, so once per run)."""
        _check_declared(self)
        model_card(self.model)
        if not 0 < self.near < self.far:
            raise InputError(f"Near ({self.near:g}) and far ({self.far:g}) must satisfy 0 < near < far.")
        if self.fov is not None and not 0 < self.fov < 180:
            raise InputError(f"The field of view must be between 0 and 180 degrees, not {self.fov:g}.")
        if self.fov is not None and self.focal_px is not None:
            raise InputError("Give the field of view or the focal length, not both.")
        if self.method == "inflate" and self.mask_mode == "none":
            raise InputError("--method inflate shapes the subject from its mask: choose a mask other than 'none'.")
        if self.height is not None and self.width is not None:
            raise InputError("Give the subject's real height or its width, not both.")
        for name in ("height", "width", "thickness", "focal_px"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise InputError(f"The {_label(self, name).lower()} must be a positive number, not {value:g}.")


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

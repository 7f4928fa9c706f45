"""The settings a user picks: declared once, shared by the scene's panel settings and the operator."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from ..inference.geometry.grid_mesh import DEFAULT_EDGE_THRESHOLD_DEG, DEFAULT_RESOLUTION
from ..inference.runtime.cards import DEFAULT_MODEL, task_cards
from ..inference.pipeline import MeshSettings
from .builders.finish import MeshFinish
from .photo_check import refresh_quality

DEPTH_KIND_ITEMS = [
    ("metric", "Metric", "Depth in metres along the camera axis (times Depth Scale)"),
    ("relative-depth", "Relative Depth", "Depth up to an unknown scale and shift; mapped onto Near..Far"),
    ("relative-disparity", "Relative Disparity", "Inverse depth as MiDaS / Depth Anything output it; mapped onto Near..Far"),
]


MASK_ITEMS = [
    ("default", "Automatic", "A subject mask when closing or inflating an object, none for a relief"),
    ("auto", "Auto", "The photo's alpha channel if it has one, else U2-Net-p"),
    ("alpha", "Alpha", "Keep only where the photo is opaque"),
    ("u2netp", "U2-Net-p", "Salient-object segmentation, bundled (4.6 MB), offline"),
    ("u2net", "U2-Net", "The full U2-Net (176 MB, downloaded once)"),
    ("grabcut", "GrabCut", "Refined by colour: for product shots on a clean background"),
    ("none", "None", "Keep the whole photo"),
]


def _model_items() -> list[tuple[str, str, str]]:
    return [(c.id, c.name, f"{c.best_for} ({c.license}, {c.size_mb:g} MB)") for c in task_cards("depth").values()]


def mesh_properties() -> dict:
    """Fresh property declarations (one set per class) for everything that shapes the mesh."""
    return {
        "depth_source": EnumProperty(
            name="Depth Source",
            items=[
                ("MODEL", "Depth Model", "Estimate depth from the photo with a depth model (downloaded once)"),
                ("DEPTH_MAP", "Depth Map File", "A depth map you already have: EXR, PNG, TIFF, PFM or .npy"),
                ("INFLATE", "Inflate", "Round the subject's silhouette into a closed object: no model, fully offline"),
            ],
        ),
        "model": EnumProperty(name="Model", items=_model_items(), default=DEFAULT_MODEL),
        "accept_license": BoolProperty(
            name="Accept Non-Commercial Licence",
            description="Accept the licence of a non-commercial model (e.g. CC-BY-NC-4.0) so it may be downloaded",
        ),
        "depth_path": StringProperty(name="Depth Map", subtype="FILE_PATH", description="The photo's depth map"),
        "depth_kind": EnumProperty(name="Depth Kind", items=DEPTH_KIND_ITEMS, default="metric"),
        "depth_scale": FloatProperty(
            name="Depth Scale", default=1.0, min=1e-6, soft_max=1000.0, precision=4,
            description="Multiplies the depth, e.g. 0.001 for a depth map in millimetres",
        ),
        "near": FloatProperty(name="Near", default=1.0, min=1e-3, unit="LENGTH", description="Nearest depth, relative kinds"),
        "far": FloatProperty(name="Far", default=5.0, min=1e-3, unit="LENGTH", description="Farthest depth, relative kinds"),
        "fov": FloatProperty(
            name="Field of View", default=0.0, min=0.0, max=179.0, precision=1,
            description="Horizontal field of view in degrees; 0 = from the photo's EXIF, else 55 degrees across the long side",
        ),
        "resolution": IntProperty(
            name="Resolution", default=DEFAULT_RESOLUTION, min=2, soft_max=4096, max=16384,
            description="Vertices along the photo's long side (capped at one per pixel)",
        ),
        "edge_threshold": FloatProperty(
            name="Edge Threshold", default=DEFAULT_EDGE_THRESHOLD_DEG, min=1.0, max=90.0, precision=1,
            description="Faces more oblique to the view than this (degrees) are depth jumps and are cut; 90 keeps all",
        ),
        "mask": EnumProperty(name="Mask", items=MASK_ITEMS, default="default"),
        "feather": FloatProperty(
            name="Feather", default=0.0, min=0.0, soft_max=50.0, subtype="PIXEL",
            description="Fade the texture out over this many photo pixels inside the mask's edge",
        ),
        "closure": EnumProperty(
            name="Close",
            items=[
                ("none", "Open Relief", "Only the surface the photo sees"),
                ("solidify", "Solidify", "A back at a uniform thickness behind the front"),
                ("mirror", "Mirror", "The front mirrored about the silhouette: a guess at the hidden back"),
                ("inflate", "Inflate", "Rounded like a balloon from the silhouette, with the depth's detail on top"),
            ],
        ),
        "thickness": FloatProperty(
            name="Thickness", default=0.0, min=0.0, unit="LENGTH", description="Solidify thickness; 0 = 10 % of the width",
        ),
        "height": FloatProperty(
            name="Real Height", default=0.0, min=0.0, unit="LENGTH",
            description="The subject's real height (its extent along the photo's vertical); 0 = no scale",
        ),
        "width": FloatProperty(
            name="Real Width", default=0.0, min=0.0, unit="LENGTH",
            description="The subject's real width, used when Real Height is 0; 0 = no scale",
        ),
        "target_faces": IntProperty(
            name="Target Faces", default=0, min=0, description="Decimate to about this many faces; 0 keeps every face",
        ),
        "smooth": IntProperty(name="Smooth", default=0, min=0, max=100, description="Smoothing iterations; 0 = none"),
        "apply_finish": BoolProperty(
            name="Apply", description="Bake smoothing and decimation into the mesh instead of keeping modifiers",
        ),
    }


class ImageToMeshSettings(bpy.types.PropertyGroup):
    __annotations__ = {
        "photo_source": EnumProperty(
            name="Photo Source",
            items=[("FILE", "File", "A photo file on disk"), ("IMAGE", "Image", "An image already in this .blend")],
            update=refresh_quality,
        ),
        "photo_path": StringProperty(
            name="Photo", subtype="FILE_PATH", description="The photo to turn into a mesh", update=refresh_quality,
        ),
        "image": PointerProperty(
            name="Image", type=bpy.types.Image, description="An image already in this .blend", update=refresh_quality,
        ),
        "quality_report": StringProperty(options={"HIDDEN", "SKIP_SAVE"}),
        **mesh_properties(),
    }


def to_mesh_settings(props) -> MeshSettings:
    """MeshSettings from the operator's (or the scene's) properties."""
    return MeshSettings(
        method={"MODEL": "model", "DEPTH_MAP": "depth-map", "INFLATE": "inflate"}[props.depth_source],
        model=props.model,
        depth_kind=props.depth_kind,
        depth_scale=props.depth_scale,
        near=props.near,
        far=props.far,
        fov_deg=props.fov or None,
        resolution=props.resolution,
        edge_threshold=props.edge_threshold,
        mask=None if props.mask == "default" else props.mask,
        feather=props.feather,
        closure=props.closure,
        thickness=props.thickness or None,
        height=props.height or None,
        width=None if props.height else props.width or None,
    )


def to_mesh_finish(props) -> MeshFinish:
    return MeshFinish(props.target_faces, props.smooth, props.apply_finish)

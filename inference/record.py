"""The one value that crosses from inference/ into Blender: plain arrays, images and a typed report.

Every backend (depth: a depth map, a depth model or inflation; later generative models) returns a MeshRecord,
and the builders on the Blender side decide only from its typed fields.

Frame: vertices are in metres in the record's own frame, x right, y up, z towards the viewer. For a depth mesh
that is the frame of the camera that took the photo (the camera sits at the origin, looking down -z); a
generated object is upright in it, and its camera is wherever the fit placed it (geometry.view.View).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .geometry.view import View
from .photo.photo import Texture
from .photo.prepared import PreparationStep


@dataclass
class ModelRun:
    """Which model ran, under what licence, where."""

    id: str
    name: str
    license: str
    commercial: bool
    file: str
    provider: str
    output: str
    cached: bool = False  # its output came from the cache: the model did not run


@dataclass
class CameraReport:
    width: int
    height: int
    focal_px: float
    fov_x_deg: float
    source: str  # where the focal length came from, in words
    # When the models saw a crop of the photo (--crop-subject): that crop's camera, in its own (prepared) pixels.
    crop_principal_point: tuple[float, float] | None = None
    crop_fov_x_deg: float | None = None


@dataclass
class DepthEdgesReport:
    """What the depth-edge rule found (geometry.depth_edges) and the occlusion fill added."""

    blur_px: float  # the depth's blur measured at its steps (a Gaussian's sigma, photo pixels; 0: sharp)
    fill_vertices: int  # vertices of the background continued under silhouettes (0: no fill)


@dataclass
class GenerationReport:
    """How a generated object was made and placed."""

    steps: int
    guidance: float
    octree_resolution: int
    seed: int
    device: str
    faces: int
    watertight: bool  # every edge in exactly two faces
    silhouette_iou: float  # the fitted camera's view of the object against the (front) photo's subject mask
    view_ious: dict[str, float]  # the same for each photo, by view ("front"; "left", "back", "right": multi-view)
    camera_fit: dict[str, dict]  # objects.camera_fit's report per view: yaw, elevation, fov, IoU per level, seconds
    texture: dict  # objects.texture_bake's report: atlas size, share of it seen by the photo, seconds
    worker: dict  # the worker's report: what was decoded, face counts, seconds per stage


@dataclass
class Report:
    """What ran and what it found: the CLI's --json and the operator's messages are made from it."""

    method: str  # what gave the shape: "depth-map", "model", "inflate", "generate"
    settings: dict  # the MeshSettings that ran
    model: ModelRun | None = None
    mask: dict = field(default_factory=dict)  # masks.subject_mask's report
    quality: dict = field(default_factory=dict)  # photo.quality.assess_photo's checklist of the prepared photo
    preparation: list[PreparationStep] = field(default_factory=list)  # what was done to the photo, in order
    quality_before: dict = field(default_factory=dict)  # the checklist of the photo as given, when it was changed
    closure: str = "none"
    scale: float = 1.0  # the factor that gave the subject its real size (1: none asked)
    camera: CameraReport | None = None
    grid: tuple[int, int] | None = None  # (columns, rows) of a depth grid
    depth_edges: DepthEdgesReport | None = None  # a depth grid's edges and occlusion fill
    generation: GenerationReport | None = None  # a generated object's
    notices: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PhotoCamera:
    """Another photo of the object (multi-view generation) and the camera that took it."""

    view: str  # "left", "back" or "right"
    camera: View
    photo: Texture


@dataclass
class MeshRecord:
    name: str
    vertices: np.ndarray  # (N, 3) float32, metres, the record's frame (module notes)
    quads: np.ndarray  # (Q, 4) int32, counter-clockwise seen from outside (from the camera for a relief)
    triangles: np.ndarray  # (T, 3) int32, likewise
    uvs: np.ndarray | None  # (N, 2) float32 per vertex, (0, 0) at the texture's bottom-left; or None and:
    corner_uvs: np.ndarray | None  # (4Q + 3T, 2) float32 per face corner, quads' corners then triangles'
    vertex_colors: np.ndarray  # (N, 4) float32 sRGB in [0, 1], the photo's colour at each vertex
    texture: Texture  # what the UVs map
    camera: View | None  # the camera that took the photo, if known
    photo: Texture | None  # the photo seen through the camera, when it is not the texture itself
    closed: bool  # watertight: the builders stand it on the ground
    report: Report
    vertex_normals: np.ndarray | None = None  # (N, 3) float32 unit normals, if a model predicted them
    edges: np.ndarray | None = None  # (E, 2) int32, every face edge once; None: Blender finds them (slower)
    corner_edges: np.ndarray | None = None  # (4Q + 3T,) int32, the edge from each corner to the next
    more_cameras: tuple[PhotoCamera, ...] = ()  # a multi-view object's other photos; `camera` is the front one

    @property
    def face_count(self) -> int:
        return len(self.quads) + len(self.triangles)

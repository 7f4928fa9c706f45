"""Memory: what a conversion needs at its peak, what this machine has free, and a refusal in one sentence when
it does not fit, decided before the mesh is built.

The pipeline (pipeline.image_to_mesh) describes the mesh to come as soon as its size is known, after the photo's
subject mask and before any depth model runs or any mesh is made (`MeshPlan`: the vertex grid, the share of it
inside the mask, closed or not, the texture, the depth model still to load); the caller adds what will be
written (`formats`), and `require_memory` compares the estimate with the memory available.

The estimate, in bytes above a process that has imported Blender and is idle, is the largest of the
conversion's stages, each linear in the mesh's vertices N and the loaded photo's pixels P:

  pipeline   image_to_mesh: the depth on the grid, the discontinuity cut, the record
  glb        the record, then the GLB written straight from it (operators/builders/glb.py)
  build      the record, and the Blender mesh built from it
  each format Blender writes: the Blender mesh (the record let go), and Blender's exporter at work

The coefficients were calibrated from a per-stage profile (peak RSS of each stage, Blender 5.3, Linux, 2 cores)
at 1 M and 4.1 M vertices, one format per process, and checked with scripts/bench_memory.py: at 4.1 M and 16.4 M
vertices the estimate is 1.09 to 1.22 times the measured peak for GLB and .blend (GLB 2.34 GB measured, 2.86 GB
estimated at 16.4 M; .blend 3.73 GB and 4.27 GB). Blender 4.5 needs about 80 MB less to import bpy and
about as much per vertex (GLB 204, .blend 205 bytes per vertex at peak at 4.1 M: its .blend is not compressed).
The depth-edge rule (geometry.depth_edges: disparity, snapping and cuts on the grid) raised a relief's pipeline
peak by about 40 bytes per vertex (GLB at 4.1 M vertices: 1.06 GB measured, 1.10 GB estimated); a closed
object's stays below its estimate (2.17 GB measured, 2.25 GB estimated at 8.2 M). They are rounded up: the
estimate is meant to be a little above the peak, never far below it. The loaded photo is already in memory when the check runs and is counted again: a margin too. Not
calibrated: depth models (their file size, twice) and Blender's undo in the sidebar (not counted).
"""

from __future__ import annotations

import ctypes
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .geometry.grid_mesh import grid_size, sample_nearest
from .geometry.remesh import voxel_faces, voxel_size_for
from .photo.prepared import PreparedPhoto
from .runtime.cards import model_card
from .settings import MeshSettings

MB = 1 << 20
BPY_IMPORT = 400 * MB  # importing bpy (5.3: about 370 MB resident; 4.5: about 290 MB), when not done yet

# Stage peaks above an idle process with bpy imported: bytes per vertex, per photo pixel, and fixed.
PIPELINE_PER_VERTEX = 180  # the grid's arrays, depth edges and cuts, the record's arrays (about 110 of them stay)
PIPELINE_PER_VERTEX_CLOSED = 230  # closing the front into an object (210 measured per vertex of the result)
PIPELINE_PER_PIXEL = 12  # the photo, its mask and the depth map at the photo's size
GLB_PER_VERTEX = 115  # the record held, normals, one chunk at a time
GLB_PER_PIXEL = 4
GLB_FIXED = 160 * MB  # the chunks, the encoded texture
BUILD_PER_VERTEX = 210  # the record (let go as Blender takes it), the Blender mesh (about 100), corner UVs: 198 (5.3), 214 (4.5)
BUILD_PER_PIXEL = 7
BUILD_FIXED = 50 * MB
# Blender's writers, the record let go: bytes per vertex at the peak of writing each format (the Blender mesh,
# about 100 of them, included). Measured at 1 M and 4.1 M vertices, one format per process.
EXPORT_PER_VERTEX = {
    ".blend": 230,  # compressed (5.x's default): Blender queues blocks for its compression threads
    ".glb": 1650,  # Blender's glTF exporter (1510 measured): only when a finish (smoothing, decimation) is asked
    ".gltf": 1650,
    ".obj": 410,  # 375 measured
    ".fbx": 680,  # 590 to 660 measured
    ".usdc": 300,  # 250 to 270
    ".usda": 300,
    ".usd": 300,
    ".ply": 230,  # 200 to 205
    ".stl": 190,  # 130 to 170
}
EXPORT_PER_PIXEL = 4  # the texture, packed or written beside
EXPORT_FIXED = 30 * MB
MODEL_FACTOR = 2.0  # an ONNX model in memory: its weights and about as much again for its activations
HEADROOM = 0.9  # use at most this share of the memory available: the system and other programs move too


@dataclass(frozen=True)
class MeshPlan:
    """What the estimate needs to know of one conversion before its mesh is built."""

    source_size: tuple[int, int]  # the photo's own (width, height)
    resolution: int  # vertices along the long side (capped at one per pixel)
    texture_size: int  # the texture's long side (capped by the photo's)
    coverage: float = 1.0  # the share of the vertex grid inside the subject's mask
    closed: bool = False  # a closed object has a back: twice the vertices
    model_bytes: int = 0  # a depth model still to be loaded, as a file
    formats: tuple[str, ...] = ()  # output suffixes (".glb", ".blend", ...); none: into a Blender scene
    glb_by_blender: bool = False  # a finish only Blender does is asked: GLBs go through Blender's exporter

    def vertices(self, resolution: int | None = None) -> int:
        """At most this many vertices at `resolution` (default: the plan's)."""
        cols, rows = grid_size(self.source_size, self.resolution if resolution is None else resolution)
        return math.ceil(cols * rows * self.coverage) * (2 if self.closed else 1)

    def photo_pixels(self, resolution: int | None = None) -> int:
        """Pixels of the photo as loaded for `resolution`: its long side the larger of the texture's and the
        grid's (pipeline.photo_load_side), never above the photo's own."""
        w, h = self.source_size
        side = max(self.texture_size, self.resolution if resolution is None else resolution)
        scale = min(1.0, side / max(w, h))
        return math.ceil(w * scale) * math.ceil(h * scale)


def plan_of(prepared: PreparedPhoto, settings: MeshSettings, method: str) -> MeshPlan:
    """The plan of a conversion whose photo is prepared (its mask known) and whose backend is `method`."""
    photo = prepared.photo
    coverage = 1.0
    if prepared.mask is not None:
        coverage = float(sample_nearest(prepared.mask, grid_size(photo.source_size, settings.resolution)).mean())
    model_bytes = 0
    if method == "model":
        card = model_card(settings.model)
        if card.runtime == "onnx":
            model_file = Path(settings.model_file) if settings.model_file else None
            model_bytes = model_file.stat().st_size if model_file and model_file.is_file() else int(card.size_mb * 1e6)
    return MeshPlan(photo.source_size, settings.resolution, settings.texture_size, coverage,
                    settings.closure_mode != "none", model_bytes)


def estimate_peak(plan: MeshPlan, resolution: int | None = None) -> int:
    """The conversion's peak memory in bytes above an idle process with bpy imported (module notes)."""
    n, p = plan.vertices(resolution), plan.photo_pixels(resolution)
    stages = [(PIPELINE_PER_VERTEX_CLOSED if plan.closed else PIPELINE_PER_VERTEX) * n + PIPELINE_PER_PIXEL * p]
    direct_glb = ".glb" in plan.formats and not plan.glb_by_blender
    if direct_glb:
        stages.append(GLB_PER_VERTEX * n + GLB_PER_PIXEL * p + GLB_FIXED)
    by_blender = [f for f in plan.formats if not (f == ".glb" and direct_glb)]
    if by_blender or not plan.formats:
        stages.append(BUILD_PER_VERTEX * n + BUILD_PER_PIXEL * p + BUILD_FIXED)
    stages += [EXPORT_PER_VERTEX.get(f, max(EXPORT_PER_VERTEX.values())) * n + EXPORT_PER_PIXEL * p + EXPORT_FIXED
               for f in by_blender]
    return int(max(stages) + MODEL_FACTOR * plan.model_bytes)


def require_memory(plan: MeshPlan, name: str, available: int | None = None, cli: bool = True) -> None:
    """Raise InputError, one sentence naming the largest resolution that fits, when the conversion's estimated
    peak exceeds the memory available (`available`: measured now when not given; unknown: never refuse).
    `cli`: name the options as the command line spells them, else as the sidebar labels them."""
    available = available_memory() if available is None else available
    if available is None:
        return
    needed = estimate_peak(plan) + (0 if "bpy" in sys.modules else BPY_IMPORT)
    budget = HEADROOM * available
    if needed <= budget:
        return
    base = needed - estimate_peak(plan)
    fits = _largest_resolution(plan, budget - base)
    what = f"a mesh of up to {plan.vertices():,} vertices from '{name}'"
    if plan.formats:
        what += " written to " + ", ".join(dict.fromkeys(plan.formats))
    if fits is None:
        advice = "close other programs or choose a smaller " + ("--texture-size" if cli else "Texture Size")
    else:
        advice = f"use --resolution {fits} or lower" if cli else f"set Resolution to {fits} or lower"
    raise InputError(
        f"Not enough memory for {what}: it needs about {_gb(needed)} and {_gb(available)} is available; {advice}."
    )


# Peak bytes per face of a voxel remesh's result: OpenVDB's narrow band, Blender's mesh of it, its UVs and bake
# (scripts/bench_remesh.py: 1.4 KB on 5.3 at 400 k faces), with headroom.
VOXEL_BYTES_PER_FACE = 2000


def check_voxel_memory(area: float, voxel_size: float, name: str, available: int | None = None) -> None:
    """Raise InputError, one sentence naming a voxel size that fits, when a voxel remesh of `area` at
    `voxel_size` would need more memory than is available (`available`: measured now when not given)."""
    available = available_memory() if available is None else available
    faces = voxel_faces(area, voxel_size)
    if available is None or faces * VOXEL_BYTES_PER_FACE <= HEADROOM * available:
        return
    fits = voxel_size_for(area, int(HEADROOM * available / VOXEL_BYTES_PER_FACE)) * 1.05  # rounded up
    raise InputError(
        f"A voxel size of {voxel_size:.3g} m is too small for '{name}': about {faces:,.0f} faces would need "
        f"{faces * VOXEL_BYTES_PER_FACE / 2**30:.1f} GB and {available / 2**30:.1f} GB is available; "
        f"use a voxel size of {fits:.2g} m or more."
    )


def _largest_resolution(plan: MeshPlan, budget: float) -> int | None:
    """The largest resolution below the plan's whose estimate fits `budget` (None: not even the smallest)."""
    low, high = 2, min(plan.resolution, max(plan.source_size)) - 1
    if high < low or estimate_peak(plan, low) > budget:
        return None
    while low < high:  # the estimate grows with the resolution
        middle = (low + high + 1) // 2
        if estimate_peak(plan, middle) <= budget:
            low = middle
        else:
            high = middle - 1
    return low


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


# --- what this machine has free ------------------------------------------------------------------------------


LIMIT_VARIABLE = "IMAGE_TO_MESH_MEMORY_LIMIT"  # e.g. "8G": at most this much for a conversion (a shared machine)


def available_memory() -> int | None:
    """Bytes of memory a new allocation can use without swapping, or None where this cannot be told; at most
    IMAGE_TO_MESH_MEMORY_LIMIT when that is set (bytes, or with a K, M or G suffix: powers of 1024).

    Linux: /proc/meminfo's MemAvailable, and the cgroup's limit less its usage when a container sets one.
    Windows: GlobalMemoryStatusEx's available physical memory. macOS: the physical memory times the kernel's
    memory-pressure level (kern.memorystatus_level, the percentage Activity Monitor shows as available).
    """
    limit = _limit_from_environment()
    try:
        if sys.platform.startswith("linux"):
            available = _linux_available()
        elif sys.platform == "win32":
            available = _windows_available()
        elif sys.platform == "darwin":
            available = _macos_available()
        else:
            available = None
    except (OSError, ValueError, AttributeError):
        available = None
    if limit is None or available is None:
        return available if limit is None else limit
    return min(available, limit)


def _limit_from_environment() -> int | None:
    text = os.environ.get(LIMIT_VARIABLE, "").strip().upper().removesuffix("B")
    if not text:
        return None
    scale = 1024 ** (" KMGT".index(text[-1])) if text[-1] in "KMGT" else 1
    try:
        return int(float(text.rstrip("KMGT")) * scale)
    except ValueError:
        raise InputError(f"{LIMIT_VARIABLE} must be a size such as 8G or 512M, not '{os.environ[LIMIT_VARIABLE]}'.")


def _linux_available(root: Path = Path("/")) -> int | None:
    available = None
    for line in (root / "proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            available = int(line.split()[1]) * 1024
    limit = _cgroup_room(root)
    if limit is not None:
        available = limit if available is None else min(available, limit)
    return available


def _cgroup_room(root: Path) -> int | None:
    """The memory left under this process's cgroup limit (v2 memory.max, v1 memory.limit_in_bytes), if one is
    set: looked up at the process's cgroup path, then at the mount's root (a container's own cgroup)."""
    for line in (root / "proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2
            mount, limit_file, usage_file = root / "sys/fs/cgroup", "memory.max", "memory.current"
        elif "memory" in controllers.split(","):
            mount, limit_file, usage_file = root / "sys/fs/cgroup/memory", "memory.limit_in_bytes", "memory.usage_in_bytes"
        else:
            continue
        for folder in (mount / path.lstrip("/"), mount):
            try:
                limit = (folder / limit_file).read_text().strip()
                usage = int((folder / usage_file).read_text())
            except (OSError, ValueError):
                continue
            if limit == "max" or int(limit) >= 1 << 60:  # no limit
                return None
            return max(0, int(limit) - usage)
    return None


def _windows_available() -> int:
    class MemoryStatusEx(ctypes.Structure):
        _fields_ = [("dwLength", ctypes.c_ulong), ("dwMemoryLoad", ctypes.c_ulong),
                    ("ullTotalPhys", ctypes.c_ulonglong), ("ullAvailPhys", ctypes.c_ulonglong),
                    ("ullTotalPageFile", ctypes.c_ulonglong), ("ullAvailPageFile", ctypes.c_ulonglong),
                    ("ullTotalVirtual", ctypes.c_ulonglong), ("ullAvailVirtual", ctypes.c_ulonglong),
                    ("ullAvailExtendedVirtual", ctypes.c_ulonglong)]

    status = MemoryStatusEx()
    status.dwLength = ctypes.sizeof(MemoryStatusEx)
    if not ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
        raise OSError("GlobalMemoryStatusEx failed")
    return int(status.ullAvailPhys)


def _macos_available() -> int:
    libc = ctypes.CDLL("/usr/lib/libc.dylib", use_errno=True)

    def sysctl(name: str, kind):
        value, size = kind(0), ctypes.c_size_t(ctypes.sizeof(kind))
        if libc.sysctlbyname(name.encode(), ctypes.byref(value), ctypes.byref(size), None, ctypes.c_size_t(0)):
            raise OSError(ctypes.get_errno(), f"sysctl {name} failed")
        return value.value

    total = sysctl("hw.memsize", ctypes.c_uint64)
    level = sysctl("kern.memorystatus_level", ctypes.c_uint32)  # percent of memory available
    return total * min(level, 100) // 100

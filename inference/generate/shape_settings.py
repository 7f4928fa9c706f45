"""How a shape is generated: shared by Blender's side (worker_client.ShapeRequest, no torch) and the worker
(hunyuan.py imports it as a sibling module)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ShapeSettings:
    steps: int = 30
    guidance: float = 5.0
    octree_resolution: int = 256
    seed: int = 0
    num_chunks: int = 8000
    # The face budget before the UV atlas. 0 keeps every face, but xatlas then takes minutes past 100 k faces
    # (50 k: 40 s, 200 k: 5 min, 440 k at octree 380: over 50 min on a 2-core CPU).
    target_faces: int = 50000
    remove_floaters: bool = True
    uv: bool = True

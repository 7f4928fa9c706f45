"""Edge-aware upsampling of a low-resolution depth prediction, guided by the photo.

Joint bilateral upsampling over the four nearest low-resolution samples: each gets its bilinear weight times a
colour-similarity weight between the output pixel and the photo at that sample. In flat colour regions it is
plain bilinear; across a colour edge the samples from the other side get ~no weight, so depth edges stay
where the photo's edges are instead of being smeared into ramps.
"""

from __future__ import annotations

import cv2
import numpy as np

SIGMA_COLOUR = 12.0  # in 8-bit colour units


def upsample_depth(low: np.ndarray, photo_rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`low` (h, w) resampled to `size` (width, height); NaN samples never contribute."""
    width, height = size
    h, w = low.shape
    guide_out = cv2.resize(photo_rgb, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)
    guide_low = cv2.resize(photo_rgb, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)

    # Output pixel centres in low-resolution pixel coordinates.
    y = (np.arange(height, dtype=np.float32) + 0.5) * h / height - 0.5
    x = (np.arange(width, dtype=np.float32) + 0.5) * w / width - 0.5
    y0 = np.clip(np.floor(y).astype(np.int64), 0, h - 1)
    x0 = np.clip(np.floor(x).astype(np.int64), 0, w - 1)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy = np.clip(y - y0, 0, 1)[:, None]
    fx = np.clip(x - x0, 0, 1)[None, :]

    total = np.zeros((height, width), np.float32)
    weights = np.zeros((height, width), np.float32)
    for rows, cols, spatial in (
        (y0, x0, (1 - fy) * (1 - fx)),
        (y0, x1, (1 - fy) * fx),
        (y1, x0, fy * (1 - fx)),
        (y1, x1, fy * fx),
    ):
        value = low[rows[:, None], cols[None, :]]
        colour = np.sum((guide_low[rows[:, None], cols[None, :]] - guide_out) ** 2, axis=2)
        # The small floor keeps plain bilinear weights where no neighbour matches the pixel's colour.
        weight = (spatial + 1e-4) * (np.exp(-colour / (2 * SIGMA_COLOUR**2)) + 1e-6) * np.isfinite(value)
        total += weight * np.nan_to_num(value)
        weights += weight
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weights > 1e-12, total / weights, np.nan).astype(np.float32)

"""Framing: the photo cropped to its subject, so the subject fills most of what the models see.

The crop is the subject mask's bounding box grown by a margin on every side (MARGIN of the box's long side,
for context at the outline), but never so much that the subject fills less than TARGET_COVERAGE of the crop,
and never past the photo's edges. A subject that fills less than that of its own box (a thin, sprawling shape)
gets the box with no margin.
"""

from __future__ import annotations

import numpy as np

MARGIN = 0.08
TARGET_COVERAGE = 0.60


def subject_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), end-exclusive, in the mask's pixels: the crop for a subject `mask` (H, W) bool, or
    None when the mask is empty."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return None
    h, w = mask.shape
    x0, x1, y0, y1 = int(cols[0]), int(cols[-1]) + 1, int(rows[0]), int(rows[-1]) + 1
    area = float(np.count_nonzero(mask))
    margin = round(MARGIN * max(x1 - x0, y1 - y0))
    while margin > 0:
        box = (max(0, x0 - margin), max(0, y0 - margin), min(w, x1 + margin), min(h, y1 + margin))
        if area >= TARGET_COVERAGE * (box[2] - box[0]) * (box[3] - box[1]):
            return box
        margin //= 2
    return x0, y0, x1, y1

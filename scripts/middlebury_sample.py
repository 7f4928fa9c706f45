"""Write scikit-image's Middlebury motorcycle as a photo and its true metric depth (EXR, metres).

The data is the Middlebury 2014 stereo set shipped with scikit-image, with its published calibration at that
size: depth_mm = baseline * f / (disparity + doffs). Nothing is committed; `make demo` runs this at setup.
Usage: python scripts/middlebury_sample.py OUT_FOLDER
"""

import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
import cv2  # noqa: E402
from skimage.data import stereo_motorcycle  # noqa: E402

FOCAL_PX = 994.978
BASELINE_MM = 193.001
DOFFS = 31.086


def motorcycle() -> tuple[np.ndarray, np.ndarray]:
    """The left photo (RGB uint8) and its true depth in metres (NaN where unknown)."""
    left, _right, disparity = stereo_motorcycle()
    depth = BASELINE_MM * FOCAL_PX / (disparity + DOFFS) / 1000.0
    depth[~np.isfinite(disparity)] = np.nan
    return left, depth.astype(np.float32)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    photo, depth = motorcycle()
    cv2.imwrite(str(out / "motorcycle.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(out / "motorcycle_depth.exr"), np.nan_to_num(depth, nan=0.0))
    print(out / "motorcycle.png", out / "motorcycle_depth.exr", f"focal {FOCAL_PX} px")

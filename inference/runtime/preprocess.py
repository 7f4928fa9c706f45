"""A photo as an ONNX model's input tensor: one vocabulary of normalisations for every card.

Layout is NCHW float32 RGB for every model. `normalise` names how 8-bit pixels become the model's numbers:
  imagenet      pixels / 255, then ImageNet mean/std (Depth Anything, BiRefNet)
  imagenet-max  pixels / the image's own maximum, then ImageNet mean/std (U²-Net, as rembg feeds it)
  unit          pixels / 255 (MiDaS, MoGe)
  symmetric     pixels / 255 * 2 - 1 (Depth Pro)
  centred       pixels / 255 - 0.5 (IS-Net)
"""

from __future__ import annotations

import cv2
import numpy as np

_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
# name -> (pixel divisor: None = the image's own maximum, mean, std)
NORMALISATIONS = {
    "imagenet": (255.0, _IMAGENET_MEAN, _IMAGENET_STD),
    "imagenet-max": (None, _IMAGENET_MEAN, _IMAGENET_STD),
    "unit": (255.0, np.zeros(3, np.float32), np.ones(3, np.float32)),
    "symmetric": (255.0, np.full(3, 0.5, np.float32), np.full(3, 0.5, np.float32)),
    "centred": (255.0, np.full(3, 0.5, np.float32), np.ones(3, np.float32)),
}


def image_tensor(rgb: np.ndarray, size: tuple[int, int], normalise: str) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> (1, 3, h, w) float32 resized to `size` = (w, h) and normalised.

    Area averaging when shrinking (no aliasing), bicubic when enlarging.
    """
    if normalise not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation '{normalise}'")
    shrinking = size[0] <= rgb.shape[1] and size[1] <= rgb.shape[0]
    resized = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
    divisor, mean, std = NORMALISATIONS[normalise]
    scale = divisor if divisor is not None else max(float(resized.max()), 1.0)
    pixels = (resized.astype(np.float32) / np.float32(scale) - mean) / std
    return np.ascontiguousarray(pixels.transpose(2, 0, 1)[None])

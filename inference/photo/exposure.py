"""Exposure and colour: a photo's levels and white balance corrected in linear light, before masks and models.

Both work on linear RGB (sRGB decoded), where a camera's exposure and a light's colour are plain gains:
  exposure       clipping-aware levels on luminance: the black point (the LOW_PERCENTILE-th percentile) goes to
                 black and the white point (the HIGH_PERCENTILE-th) to white, so at most that share of pixels
                 clips at either end; one gain for all three channels, so colours keep their hue. The gain is
                 held within MAX_GAIN (noise in a near-black photo is not detail) and never darkens.
  white balance  grey world: each channel is scaled so the photo's mean is neutral grey at the same luminance.
                 Because a colour cast is a per-channel gain in linear light, the result does not depend on the
                 cast: a photo and any tinted copy of it come out the same.
"""

from __future__ import annotations

import numpy as np

LOW_PERCENTILE = 0.1
HIGH_PERCENTILE = 99.5
MAX_GAIN = 16.0  # four stops
MIN_CHANGE = 0.02  # a correction smaller than this (as a gain) leaves the photo as it was
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)  # Rec. 709 / sRGB primaries, linear light


def srgb_to_linear_table() -> np.ndarray:
    """The linear value (float32, 0..1) of each 8-bit sRGB level."""
    c = np.arange(256, dtype=np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """Linear values (any shape, clipped to 0..1) -> 8-bit sRGB levels."""
    c = np.clip(linear, 0.0, 1.0)
    srgb = np.where(c <= 0.0031308, c * 12.92, 1.055 * np.power(c, 1 / 2.4) - 0.055)
    return (srgb * 255.0 + 0.5).astype(np.uint8)


def auto_exposure(rgb: np.ndarray) -> tuple[np.ndarray, dict]:
    """`rgb` (H, W, 3) uint8 with its levels stretched (module notes), and what was done: gain in stops,
    black and white points (linear luminance)."""
    linear = srgb_to_linear_table()[rgb]
    luma = linear @ _LUMA
    black, white = np.percentile(luma, [LOW_PERCENTILE, HIGH_PERCENTILE])
    black = float(black) if white > black else 0.0
    gain = float(np.clip(1.0 / max(float(white) - black, 1e-6), 1.0, MAX_GAIN))
    details = {"stops": float(np.log2(gain)), "black_point": black, "white_point": float(white)}
    if gain < 1 + MIN_CHANGE and black < 1e-3:
        return rgb, {**details, "changed": False}
    return linear_to_srgb((linear - black) * gain), {**details, "changed": True}


def grey_world(rgb: np.ndarray) -> tuple[np.ndarray, dict]:
    """`rgb` (H, W, 3) uint8 white-balanced by the grey-world rule (module notes), and the channel gains.

    Clipped pixels (any channel at 255) say nothing of the light's colour: they are left out of the means.
    """
    linear = srgb_to_linear_table()[rgb]
    unclipped = (rgb < 255).all(axis=-1)
    means = (linear[unclipped] if unclipped.any() else linear.reshape(-1, 3)).mean(axis=0)
    gains = float(means @ _LUMA) / np.maximum(means, 1e-6)
    details = {"gains": [float(g) for g in gains]}
    if np.abs(gains - 1).max() < MIN_CHANGE:
        return rgb, {**details, "changed": False}
    return linear_to_srgb(linear * gains.astype(np.float32)), {**details, "changed": True}

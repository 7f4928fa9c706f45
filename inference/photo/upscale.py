"""Upscaling a photo with a super-resolution network (Real-ESRGAN), tile by tile, or by bicubic resampling.

Tiles. The network runs on tiles of at most its card's `side` input pixels (or exactly the graph's size when
its input is static), so memory stays bounded whatever the photo's size: a float accumulator one band of tiles high,
and the 8-bit result. Neighbouring tiles overlap by 2 * MARGIN + RAMP pixels: the MARGIN next to each tile's
own border (where the network saw zero padding instead of the photo) is never used, and across the RAMP in
the middle of the overlap one tile's weight falls linearly from 1 to 0 while its neighbour's rises, so the
weights sum to exactly 1 everywhere and the joins carry no seam. Tiles along an axis are spread evenly, the
first and last flush with the photo's edges (a photo smaller than a static tile is mirror-padded to it).

Factor. The networks enlarge 4x (a graph's factor is read from its first tile's output); a smaller or
fractional factor is the network's 4x result area-averaged down to the target, so detail still comes from
the network.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..errors import InputError
from ..runtime.cards import InputContract
from ..runtime.jobs import CancelToken
from ..runtime.onnx_session import run_session
from ..runtime.preprocess import NORMALISATIONS

MARGIN = 8  # input pixels next to a tile's border that are never used (the network saw padding there)
RAMP = 16  # input pixels over which a tile hands over to its neighbour

UPSCALE_TARGET = 2048  # "auto": the long side a smaller photo is brought up to
UPSCALE_MODES = {
    "off": ("Off", "The photo as it is"),
    "auto": ("Automatic", f"Up to {UPSCALE_TARGET} px on the long side when the photo is smaller"),
    "2": ("2x", "Twice the photo's size"),
    "4": ("4x", "Four times the photo's size"),
}


def upscaled_size(size: tuple[int, int], mode: str, max_side: int) -> tuple[int, int]:
    """(width, height) a photo of `size` is upscaled to for `mode` ("off", "auto", "2", "4"): never smaller
    than it is, and its long side never above max_side (what the texture and the mesh can use)."""
    w, h = size
    long_side = max(w, h)
    wanted = {"off": long_side, "auto": max(long_side, UPSCALE_TARGET)}.get(mode)
    if wanted is None:
        wanted = long_side * int(mode)
    side = max(long_side, min(wanted, max_side))
    scale = side / long_side
    return (side, max(1, round(h * scale))) if w >= h else (max(1, round(w * scale)), side)


def bicubic_upscale(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)


def upscale_with_network(session, rgb: np.ndarray, size: tuple[int, int], contract: InputContract,
                         cancel: CancelToken | None = None) -> np.ndarray:
    """`rgb` (H, W, 3) uint8 enlarged by the network, tile by tile, then area-averaged to `size` (width, height)."""
    enlarged = run_tiled(session, rgb, contract.normalise, contract.side, cancel)
    if enlarged.shape[1] == size[0] and enlarged.shape[0] == size[1]:
        return enlarged
    if enlarged.shape[1] < size[0]:
        raise InputError(f"The upscaling model enlarges {enlarged.shape[1] // rgb.shape[1]}x, less than the "
                         f"{size[0] / rgb.shape[1]:g}x asked.")
    return cv2.resize(enlarged, size, interpolation=cv2.INTER_AREA)


def run_tiled(session, rgb: np.ndarray, normalise: str, tile: int, cancel: CancelToken | None = None) -> np.ndarray:
    """The network's output for the whole of `rgb`, run on overlapping tiles of at most `tile` pixels (module
    notes): (sH, sW, 3) uint8."""
    divisor, mean, std = NORMALISATIONS[normalise]
    if divisor is None:
        raise ValueError("an upscaling network needs a fixed pixel scale")
    static = _static_side(session.get_inputs()[0].shape)
    h, w = rgb.shape[:2]
    tile_h = static[0] if static else _tile_side(h, tile)
    tile_w = static[1] if static else _tile_side(w, tile)
    padded = _pad_to(rgb, tile_h, tile_w)
    rows, cols = _positions(padded.shape[0], tile_h), _positions(padded.shape[1], tile_w)
    row_weights, col_weights = _weights(rows, tile_h), _weights(cols, tile_w)
    name = session.get_inputs()[0].name

    def network(y: int, x: int) -> np.ndarray:
        pixels = padded[y:y + tile_h, x:x + tile_w].astype(np.float32) / np.float32(divisor)
        feed = ((pixels - mean) / std).transpose(2, 0, 1)[None]
        out = run_session(session, [session.get_outputs()[0].name], {name: np.ascontiguousarray(feed)}, cancel)[0]
        return (out[0].transpose(1, 2, 0) * std + mean) * np.float32(255.0)  # (s*th, s*tw, 3) levels

    first = network(rows[0], cols[0])
    scale = first.shape[0] // tile_h
    if scale < 1 or first.shape[:2] != (tile_h * scale, tile_w * scale):
        raise InputError(f"The upscaling model returned {first.shape[1]}x{first.shape[0]} pixels for a "
                         f"{tile_w}x{tile_h} tile: not a whole enlargement.")
    out = np.empty((padded.shape[0] * scale, padded.shape[1] * scale, 3), np.uint8)
    # One band of tiles at a time: a row of output is final once every tile row that weighs on it has run.
    band_top = 0
    band = np.zeros((tile_h * scale, out.shape[1], 3), np.float32)
    for i, y in enumerate(rows):
        top = y * scale
        if top > band_top:  # rows above this tile row are final: store them and slide the band down
            shift = top - band_top
            _store(out, band[:shift], band_top)
            band = np.concatenate([band[shift:], np.zeros((shift, *band.shape[1:]), np.float32)])
            band_top = top
        wy = np.repeat(row_weights[i], scale)[:, None, None]
        for j, x in enumerate(cols):
            result = first if i == j == 0 else network(y, x)
            wx = np.repeat(col_weights[j], scale)[None, :, None]
            band[:, x * scale:(x + tile_w) * scale] += result * wy * wx
    _store(out, band, band_top)
    return out[: h * scale, : w * scale]


def _store(out: np.ndarray, rows: np.ndarray, top: int) -> None:
    out[top:top + len(rows)] = np.clip(rows + 0.5, 0, 255).astype(np.uint8)


def _static_side(shape) -> tuple[int, int] | None:
    if len(shape) == 4 and isinstance(shape[2], int) and isinstance(shape[3], int):
        return shape[2], shape[3]
    return None


def _tile_side(length: int, tile: int) -> int:
    """The smallest tile that covers `length` with as few tiles of at most `tile` as possible."""
    overlap = 2 * MARGIN + RAMP
    if length <= tile:
        return length
    n = math.ceil((length - overlap) / (tile - overlap))
    return math.ceil((length + (n - 1) * overlap) / n)


def _pad_to(rgb: np.ndarray, tile_h: int, tile_w: int) -> np.ndarray:
    """`rgb` mirror-padded on the bottom and right to at least one tile (a static graph's size)."""
    h, w = rgb.shape[:2]
    if h >= tile_h and w >= tile_w:
        return rgb
    return cv2.copyMakeBorder(rgb, 0, max(0, tile_h - h), 0, max(0, tile_w - w), cv2.BORDER_REFLECT_101)


def _positions(length: int, tile: int) -> list[int]:
    """Tile starts along an axis: evenly spread, the first at 0 and the last flush with the end, neighbours
    overlapping by at least 2 * MARGIN + RAMP."""
    if length <= tile:
        return [0]
    n = math.ceil((length - tile) / (tile - 2 * MARGIN - RAMP)) + 1
    return [round(k * (length - tile) / (n - 1)) for k in range(n)]


def _weights(starts: list[int], tile: int) -> list[np.ndarray]:
    """Per tile, its weight (tile,) along the axis: 1 inside, ramping down to 0 across the middle of each
    overlap with a neighbour (the mirror of the neighbour's ramp up, so weights sum to 1)."""
    weights = []
    ramp = (np.arange(RAMP, dtype=np.float32) + 0.5) / RAMP  # 0 -> 1 over RAMP pixels
    for k, start in enumerate(starts):
        w = np.ones(tile, np.float32)
        if k > 0:  # the ramp up, centred in the overlap with the previous tile
            a = (starts[k - 1] + tile + start) // 2 - RAMP // 2 - start
            w[:a] = 0
            w[a:a + RAMP] = ramp
        if k + 1 < len(starts):  # the ramp down, centred in the overlap with the next tile
            nxt = starts[k + 1]
            a = (start + tile + nxt) // 2 - RAMP // 2 - start
            w[a:a + RAMP] = np.minimum(w[a:a + RAMP], 1 - ramp)
            w[a + RAMP:] = 0
        weights.append(w)
    return weights

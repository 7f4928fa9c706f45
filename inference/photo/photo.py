"""Loading the photo: orientation, colour, alpha, and a size bounded by what the mesh and texture need."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InputError

# EXIF tags: 0x8769 is the Exif sub-IFD, 0xA405 its FocalLengthIn35mmFilm.
_EXIF_IFD = 0x8769
_FOCAL_35MM = 0xA405


@dataclass
class Texture:
    """An image a mesh's UVs map: upright 8-bit sRGB, with an optional alpha channel."""

    name: str
    rgb: np.ndarray  # (H, W, 3) uint8
    alpha: np.ndarray | None = None  # (H, W) uint8


@dataclass
class Photo:
    """A photo as the pipeline uses it: upright 8-bit RGB, optional alpha, and its original upright size."""

    name: str
    rgb: np.ndarray  # (H, W, 3) uint8, possibly downscaled from the original
    alpha: np.ndarray | None  # (H, W) uint8, or None when the photo has no alpha channel
    source_size: tuple[int, int]  # (width, height) of the original photo, upright
    focal_35mm: float | None = None  # the camera's 35 mm-equivalent focal length from EXIF, if recorded

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]

    @property
    def texture(self) -> Texture:
        return Texture(self.name, self.rgb, self.alpha)


# What a photo file is called: the formats Pillow reads that cameras and phones write (load_photo itself reads any
# format Pillow knows; file browsers and batches pick photos by these).
PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"})


def load_photo(path: str | Path, max_side: int = 4096) -> Photo:
    """Read a photo file, apply its EXIF orientation and downscale it so its long side is at most max_side.

    JPEGs are decoded directly at a reduced scale, so a 50-megapixel photo never sits in memory at full size.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"The photo '{path}' does not exist.")
    if path.stat().st_size == 0:
        raise InputError(f"The photo '{path}' is an empty file.")
    try:
        with Image.open(path) as im:
            exif = im.getexif()
            source_size = _upright(im.size, exif.get(0x0112, 1))  # read first: turning upright clears the tag
            # A JPEG decodes at 1/2, 1/4 or 1/8 scale while the result still covers the requested size in
            # both directions: ask for the photo's own shape, which a (max_side, max_side) box never fits.
            im.draft("RGB", _fitted(im.size, max_side))
            im.load()
            photo = _photo_from_pil(im, path.stem, max_side)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as err:
        raise InputError(f"The photo '{path}' is not a readable image ({_reason(err)}).") from err
    photo.source_size = source_size
    focal = exif.get_ifd(_EXIF_IFD).get(_FOCAL_35MM)
    photo.focal_35mm = float(focal) if focal else None
    return photo


def photo_from_pixels(name: str, rgba: np.ndarray) -> Photo:
    """A photo from float RGBA pixels in [0, 1], rows bottom-up (Blender's Image.pixels layout)."""
    pixels = np.clip(np.flipud(rgba) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    alpha = pixels[..., 3] if rgba.shape[2] == 4 and (pixels[..., 3] < 255).any() else None
    h, w = pixels.shape[:2]
    return Photo(name, np.ascontiguousarray(pixels[..., :3]), alpha, (w, h))


def fit_texture(texture: Texture, max_side: int) -> Texture:
    """`texture` downscaled (Lanczos) so its long side is max_side; unchanged when it is no larger already."""
    h, w = texture.rgb.shape[:2]
    if max(w, h) <= max_side:
        return texture
    size = (max_side, max(1, round(h * max_side / w))) if w >= h else (max(1, round(w * max_side / h)), max_side)
    if texture.alpha is None:
        return Texture(texture.name, np.asarray(Image.fromarray(texture.rgb).resize(size, Image.Resampling.LANCZOS)))
    # RGBA together: Pillow resamples it with premultiplied alpha, so no colour bleeds in from transparent pixels.
    rgba = np.asarray(Image.fromarray(np.dstack([texture.rgb, texture.alpha])).resize(size, Image.Resampling.LANCZOS))
    return Texture(texture.name, np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3]))


def encode_texture(texture: Texture) -> tuple[bytes, str]:
    """A texture as image-file bytes: JPEG, or PNG when it has an alpha channel."""
    buf = io.BytesIO()
    if texture.alpha is None:
        Image.fromarray(texture.rgb).save(buf, "JPEG", quality=95, subsampling=0)
        return buf.getvalue(), ".jpg"
    Image.fromarray(np.dstack([texture.rgb, texture.alpha])).save(buf, "PNG", compress_level=1)
    return buf.getvalue(), ".png"


def _photo_from_pil(im: Image.Image, name: str, max_side: int) -> Photo:
    # In place, and no conversion to the mode it already has: each copy of a large photo costs its full size.
    ImageOps.exif_transpose(im, in_place=True)
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # High bit-depth greyscale: PIL's own conversion clips, so rescale to 8 bits here.
        grey = np.asarray(im, dtype=np.float32)
        top = 65535.0 if grey.max() > 255 else 255.0
        im = Image.fromarray(np.clip(grey * (255.0 / top) + 0.5, 0, 255).astype(np.uint8))
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if im.mode != ("RGBA" if has_alpha else "RGB"):
        im = im.convert("RGBA" if has_alpha else "RGB")
    if max(im.size) > max_side:
        im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    pixels = np.asarray(im)
    alpha = np.ascontiguousarray(pixels[..., 3]) if has_alpha else None
    return Photo(name, np.ascontiguousarray(pixels[..., :3]), alpha, im.size)


def _fitted(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """`size` scaled down so its long side is at most max_side, rounded up."""
    scale = min(1.0, max_side / max(size))
    return math.ceil(size[0] * scale), math.ceil(size[1] * scale)


def _upright(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    # EXIF orientations 5-8 turn the picture by 90 degrees.
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size


def _reason(err: Exception) -> str:
    if isinstance(err, UnidentifiedImageError):
        return "not an image format this tool knows"
    if isinstance(err, Image.DecompressionBombError):
        return "too many pixels"
    return "the file is damaged or truncated"

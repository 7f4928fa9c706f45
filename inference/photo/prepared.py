"""The photo as every backend gets it: its subject found, its quality checked, its texture's edges feathered."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..masks.subject import MASK_MODES, feather_alpha, subject_mask
from ..runtime.access import ModelAccess
from ..runtime.cards import model_card
from .photo import Photo
from .quality import assess_photo

PHOTO_CHECK_SIDE = 1024  # the photo check works at this long side: load photos for it no larger


@dataclass
class PreparedPhoto:
    photo: Photo  # upright; its alpha is the feathered mask when a feather was asked
    mask: np.ndarray | None  # (H, W) bool at photo.rgb's size: the subject (None = the whole photo)
    mask_report: dict  # masks.subject_mask's report
    quality: dict  # quality.assess_photo's checklist
    seconds: float


def prepare_photo(photo: Photo, mask_mode: str, feather_px: float, models: ModelAccess | None) -> PreparedPhoto:
    """Find the subject (`mask_mode`, see masks.subject), check the photo, feather the texture's edge."""
    start = time.perf_counter()
    mask, mask_report = _subject(photo, mask_mode, models)
    quality = assess_photo(photo, mask)
    if feather_px and mask is not None:  # soft texture edges instead of a fringe of background colour
        alpha = feather_alpha(mask, feather_px * photo.size[0] / photo.source_size[0])
        photo = replace(photo, alpha=(alpha * 255 + 0.5).astype(np.uint8))
    return PreparedPhoto(photo, mask, mask_report, quality, time.perf_counter() - start)


def check_photo(photo: Photo, u2netp: Path | None, u2netp_hint: str) -> dict:
    """The photographer's checklist for a photo, its subject found the way an object's is (alpha or U²-Net-p)."""
    return assess_photo(photo, subject_mask(photo, "auto", u2netp, u2netp_hint)[0])


def _subject(photo: Photo, mode: str, models: ModelAccess | None) -> tuple[np.ndarray | None, dict]:
    """The subject's mask at the photo's size (None = the whole photo) and its report."""
    if models is None:  # masks that need no model file: alpha, none (the others say what is missing)
        if mode not in MASK_MODES:
            raise InputError(f"The mask model {model_card(mode, task='mask').name} needs a models folder.")
        return subject_mask(photo, mode, None)
    downloaded = mode not in MASK_MODES or mode == "u2net"  # a mask model's card, fetched like a depth model
    return subject_mask(
        photo, mode, models.u2netp, models.u2netp_hint,
        model_path=models.fetch(model_card(mode, task="mask"))[0] if downloaded else None,
        device=models.device, threads=models.threads, cancel=models.cancel,
    )

"""Is the photo the problem? An input-quality report that follows the photographer's checklist.

Users should hear before they wait that the photo, not the tool, will spoil the mesh: too few pixels, missed
focus, a subject lost in the frame or in its background, clipped exposure, mirror-like highlights. The report
is advice and never blocks anything.

Every check runs on one downscaled working copy (long side WORK_SIDE), so the cost does not grow with the
photo: only `resolution` looks at the original size (`photo.source_size`; `photo.rgb` may already be smaller).
Checks that depend on the subject measure inside the subject mask when there is one (the caller's, or the
photo's own alpha when it has transparent parts), and say "unknown" when they need one and there is none.

Each check is {"value": float | None, "verdict": "good" | "fair" | "poor" | "unknown", "advice": one sentence
(empty when good), "hint": the same in a few words for a UI line (empty when good)}; some add the
measurements behind the value. The report is plain JSON-serialisable data.
"""

from __future__ import annotations

import cv2
import numpy as np

from .photo import Photo

GOOD, FAIR, POOR, UNKNOWN = "good", "fair", "poor", "unknown"

# Every check except `resolution` works on a copy whose long side is this many pixels. It also fixes the
# scale of the sharpness value: a Laplacian measures detail per pixel, so the same scene at 4096 px or at
# 1024 px must be brought to one size before the numbers can be compared.
WORK_SIDE = 1024

# Resolution: the long side of the original photo. Textures are baked from it and image-to-3D models crop
# the subject out of it, so 2048 px leaves a sharp texture; below 1024 px the texture is visibly soft.
RESOLUTION_GOOD = 2048
RESOLUTION_FAIR = 1024

# Sharpness: variance of the Laplacian of the grey working copy (long side WORK_SIDE), after two steps that
# keep it about focus alone: the region's 8-bit levels are stretched so its 1st-99th percentile spans 0-255
# (gain at most MAX_STRETCH_GAIN), so a dim or flat-lit photo is not called blurry; and a Gaussian of
# sigma SHARPNESS_SMOOTHING px (a Laplacian of Gaussian) removes the pixel-level noise and the banding of
# few levels that the stretch would otherwise count as detail. Measured on scikit-image's real photos
# (central region, no mask):
#   original, upscaled to 1024: astronaut 63, coffee 61, chelsea 54, rocket 80, immunohistochemistry 50,
#     motorcycle 258 (x0.2 darker copies: 54-266);
#   Gaussian blur at their own size (300-740 px), sigma 1: 4-9 (motorcycle 44); sigma 2: 0.7-7.3; sigma 3: < 2.5;
#   Gaussian blur at the 1024 px working size, sigma 0.5: 43-57; 0.75: 31-36; 1: 20-27; 1.5: 7-16.
# So poor is a blur of sigma >= ~1.5 px at 1024 px (6 px on a 4096 px photo), fair about 0.75-1.5 px.
SHARPNESS_GOOD = 40.0
SHARPNESS_FAIR = 15.0
SHARPNESS_SMOOTHING = 0.7
MAX_STRETCH_GAIN = 8.0  # a near-black photo's noise must not pass for detail

# Coverage: the subject's share of the frame. Depth and image-to-3D models see the photo at ~512 px, so a
# small subject gets few of their pixels.
COVERAGE_GOOD = 0.60
COVERAGE_FAIR = 0.30

# Framing: share of the frame's outer edge that the subject touches. More than a stray pixel or two means a
# part of the subject is cut off, and no model can rebuild what the photo does not show.
FRAMING_TOLERANCE = 0.01

# Contrast: CIE76 colour difference (delta E in Lab) between the subject and the background just across its
# outline, taken at the weak end of the outline (25th percentile): where a quarter of the outline blends in,
# segmentation and depth edges fail there. Delta E 2 is just noticeable; 10 is "similar colours"; a red
# object on white is ~100. (The motorcycle, masked by its true depth < 3 m: 12 at the 25th percentile, median 21.)
CONTRAST_GOOD = 20.0
CONTRAST_FAIR = 10.0
CONTRAST_PERCENTILE = 25
RING_GAP = 2  # px at WORK_SIDE: skip the outline itself, where masks are off by a pixel or two
RING_WIDTH = 6  # px at WORK_SIDE: how far into the subject and the background the colours are sampled
LAB8_SCALE = np.array([100 / 255, 1.0, 1.0])  # OpenCV's 8-bit Lab stores L*255/100, a+128, b+128

# Exposure: luma (0-255) at or above BLOWN is clipped white, at or below CRUSHED clipped black. Measured on
# scikit-image's photos (whole frame): originals are at most ~1 % blown and mostly < 1 % crushed (the
# astronaut's black backdrop 14 %), mean luma 60-165; x0.2 copies have a mean luma of 12-32; x3 copies (clipped)
# are 10-87 % blown.
BLOWN = 250
CRUSHED = 5
BLOWN_FAIR = 0.03  # share of the region; a few specular spots stay below it (they are `highlights`)
BLOWN_POOR = 0.10
CRUSHED_FAIR = 0.25  # a black backdrop is deliberate: only a large share counts
CRUSHED_POOR = 0.50
DARK_MEAN_FAIR = 70.0  # mean luma: a dark photo has little clipping yet few levels left for detail
DARK_MEAN_POOR = 45.0

# Highlights: near-white, unsaturated pixels that are much brighter than their surroundings in blobs smaller
# than HIGHLIGHT_BLOB of the long side (a white top-hat): the mirror images of lights on glass, chrome and
# glossy paint. Large white areas (a white shirt, a blown sky) are not blobs and are left to `exposure`.
# Whole-frame shares on scikit-image's photos: astronaut 0.95 % (the helmet's visor and glossy shell), coffee
# 0.4 % (the spoon), motorcycle 0.1 % (chrome, a small part of the frame), chelsea and rocket ~0.
HIGHLIGHT_BLOB = 1 / 24
HIGHLIGHT_LUMA = BLOWN  # a reflection of a light is clipped; a white surface usually is not
HIGHLIGHT_RISE = 50  # levels above the surroundings
HIGHLIGHT_MAX_SATURATION = 0.2  # (max - min) / max of RGB: a reflection has the light's colour, not the surface's
HIGHLIGHTS_FAIR = 0.003
HIGHLIGHTS_POOR = 0.015

MIN_REGION_PIXELS = 256  # at WORK_SIDE; a smaller subject mask says too little, so the centre is used instead

# The summary lists problems from the one that spoils the mesh most to the one that spoils it least.
IMPORTANCE = ("sharpness", "exposure", "coverage", "framing", "contrast", "highlights", "resolution")


def assess_photo(photo: Photo, subject_mask: np.ndarray | None = None) -> dict:
    """The input-quality report of `photo`, measured inside `subject_mask` (H, W) where given.

    The mask may be bool, 0/1 or 0-255, at the photo's size or any size of the same shape (it is resized).
    Without a mask, the photo's alpha is the subject when it has transparent parts.
    """
    rgb = _working_copy(photo.rgb)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    subject = _subject(photo, subject_mask, grey.shape)
    has_subject = subject is not None and int(np.count_nonzero(subject)) >= MIN_REGION_PIXELS
    # Sharpness where it matters: the subject, else the centre, where photographers put it.
    focus_region = subject if has_subject else _central_region(grey.shape)
    # Exposure and highlights: the subject, else everything the photo shows.
    light_region = subject if has_subject else np.ones(grey.shape, bool)

    report = {
        "resolution": _resolution(photo.source_size),
        "sharpness": _sharpness(grey, focus_region, has_subject),
        "coverage": _coverage(subject),
        "framing": _framing(subject),
        "contrast": _contrast(rgb, subject),
        "exposure": _exposure(grey, light_region, has_subject),
    }
    report["highlights"] = _highlights(rgb, grey, light_region, has_subject, report["exposure"]["blown"])
    report["summary"] = _summary(report)
    report["verdict"] = _overall(report)
    return report


def format_quality(report: dict) -> list[str]:
    """Short lines for a UI panel, one per check that could be measured, problems first."""
    checks = [name for name in IMPORTANCE if name in report and report[name]["verdict"] != UNKNOWN]
    rank = {POOR: 0, FAIR: 1, GOOD: 2}
    checks.sort(key=lambda name: rank[report[name]["verdict"]])  # stable: importance order within a verdict
    lines = []
    for name in checks:
        entry = report[name]
        said = entry["verdict"] if entry["verdict"] == GOOD else entry["hint"] or entry["verdict"]
        lines.append(f"{_label(name, entry['value'])}: {said}")
    return lines


# --- the working copy and the regions ---------------------------------------------------------------------


def _working_copy(rgb: np.ndarray) -> np.ndarray:
    """`rgb` resized so its long side is WORK_SIDE: area-averaged down, cubic up."""
    h, w = rgb.shape[:2]
    size = _work_size(w, h)
    if size == (w, h):
        return np.ascontiguousarray(rgb)
    interpolation = cv2.INTER_AREA if max(w, h) > WORK_SIDE else cv2.INTER_CUBIC
    return cv2.resize(rgb, size, interpolation=interpolation)


def _work_size(w: int, h: int) -> tuple[int, int]:
    scale = WORK_SIDE / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _subject(photo: Photo, mask: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    """The subject as a bool array of the working size, or None when nothing says where the subject is."""
    if mask is None:
        # A cut-out's alpha is its subject; an alpha channel that is opaque everywhere says nothing.
        if photo.alpha is None or not (photo.alpha < 128).any():
            return None
        mask = photo.alpha
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"The subject mask must be 2-D (H, W), not {mask.shape}.")
    h, w = mask.shape
    # Same shape: equal aspect ratios, up to 2 % or the one pixel a very thin photo's sizes round by.
    if mask.size == 0 or abs(w * shape[0] / h - shape[1]) > max(1.0, 0.02 * shape[1]):
        raise ValueError(f"The subject mask ({w}x{h}) does not have the photo's shape ({shape[1]}x{shape[0]}).")
    # Threshold at full size into 0/1 bytes: one cheap pass, and no float copy of a 12-megapixel mask.
    if mask.dtype != bool:
        mask = mask >= (128 if mask.max() > 1 else 0.5)  # 0-255 masks, or 0/1 and 0.0-1.0 ones
    # An area average of 0/1 bytes rounds to 1 where at least half the pixels are set: a majority vote.
    votes = np.ascontiguousarray(mask).view(np.uint8)
    small = cv2.resize(votes, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    return small.astype(bool)


def _central_region(shape: tuple[int, int]) -> np.ndarray:
    """The middle three fifths of each side: where a centred subject is, without the frame's edges."""
    h, w = shape
    region = np.zeros(shape, bool)
    region[h // 5 : h - h // 5, w // 5 : w - w // 5] = True
    return region


# --- the checks --------------------------------------------------------------------------------------------


def _resolution(source_size: tuple[int, int]) -> dict:
    long_side = float(max(source_size))
    verdict = _grade(long_side, RESOLUTION_GOOD, RESOLUTION_FAIR)
    if verdict == GOOD:
        return _entry(long_side, GOOD)
    return _entry(
        long_side,
        verdict,
        f"Use a larger photo: {RESOLUTION_GOOD} px or more on the long side (this one is {long_side:.0f} px).",
        f"use {RESOLUTION_GOOD} px or more",
    )


def _sharpness(grey: np.ndarray, region: np.ndarray, on_subject: bool) -> dict:
    # Blur is about how fast the levels change, not how far apart they are (exposure is its own check).
    smoothed = cv2.GaussianBlur(_stretch(grey, region), (0, 0), SHARPNESS_SMOOTHING)
    laplacian = cv2.Laplacian(smoothed, cv2.CV_32F, ksize=1)
    _, deviation = cv2.meanStdDev(laplacian, mask=region.view(np.uint8))
    value = float(deviation[0, 0]) ** 2
    verdict = _grade(value, SHARPNESS_GOOD, SHARPNESS_FAIR)
    where = "subject" if on_subject else "photo"
    if verdict == GOOD:
        return _entry(value, GOOD, measured_on=where)
    if verdict == POOR:
        advice = f"The {where} is blurry: refocus on the subject and hold the camera steady (or use a tripod)."
        hint = "blurry, refocus"
    else:
        advice = f"The {where} is a little soft: check the focus and hold the camera steady."
        hint = "a little soft"
    return _entry(value, verdict, advice, hint, measured_on=where)


def _stretch(grey: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Grey levels as float32, stretched so the region's 1st to 99th percentile spans 0-255."""
    counts = cv2.calcHist([grey], [0], region.view(np.uint8), [256], [0, 256])[:, 0]
    cumulative = np.cumsum(counts) / max(int(counts.sum()), 1)
    low = float(np.searchsorted(cumulative, 0.01))
    high = float(np.searchsorted(cumulative, 0.99))
    gain = 255.0 / max(high - low, 255.0 / MAX_STRETCH_GAIN)
    return (grey.astype(np.float32) - low) * gain


def _coverage(subject: np.ndarray | None) -> dict:
    if subject is None:
        return _entry(None, UNKNOWN)
    share = float(np.count_nonzero(subject)) / subject.size
    verdict = _grade(share, COVERAGE_GOOD, COVERAGE_FAIR)
    if verdict == GOOD:
        return _entry(share, GOOD)
    return _entry(
        share,
        verdict,
        f"The subject fills {_percent(share)} of the frame: move closer or zoom in until it fills "
        f"{_percent(COVERAGE_GOOD)} or more.",
        f"fill more of the frame ({_percent(COVERAGE_GOOD)}+)",
    )


def _framing(subject: np.ndarray | None) -> dict:
    if subject is None or not subject.any():
        return _entry(None, UNKNOWN)
    edge = np.concatenate([subject[0], subject[-1], subject[1:-1, 0], subject[1:-1, -1]])
    touching = float(edge.mean())
    if touching <= FRAMING_TOLERANCE:
        return _entry(touching, GOOD)
    return _entry(
        touching,
        FAIR,
        "The subject runs off the edge of the frame: step back or leave a margin so no part is cut off.",
        "cut off at the frame edge",
    )


def _contrast(rgb: np.ndarray, subject: np.ndarray | None) -> dict:
    """Colour difference across the subject's outline, at the weak end of the outline."""
    if subject is None or subject.all() or not subject.any():
        return _entry(None, UNKNOWN)
    inside = subject.astype(np.uint8)
    # Outline pixels: the subject's pixels with a background neighbour (the frame's edge is not one).
    outline = subject & ~cv2.erode(inside, np.ones((3, 3), np.uint8)).astype(bool)
    rows, cols = np.nonzero(outline)
    # Only the outline's surroundings are read: crop to them, so a small subject costs little.
    reach = RING_GAP + RING_WIDTH + 1
    top, left = max(int(rows.min()) - reach, 0), max(int(cols.min()) - reach, 0)
    bottom, right = int(rows.max()) + reach + 1, int(cols.max()) + reach + 1
    inside = inside[top:bottom, left:right]
    lab = cv2.cvtColor(np.ascontiguousarray(rgb[top:bottom, left:right]), cv2.COLOR_RGB2Lab)
    rows, cols = rows - top, cols - left
    # Mean colours of rings RING_GAP..RING_GAP+RING_WIDTH px from the outline, on either side, near each pixel.
    mean_in, has_in = _local_mean(lab, _ring(inside), rows, cols)
    mean_out, has_out = _local_mean(lab, _ring(1 - inside), rows, cols)
    both = has_in & has_out
    if not both.any():
        return _entry(None, UNKNOWN)
    delta_e = np.linalg.norm((mean_in[both] - mean_out[both]) * LAB8_SCALE, axis=1)
    value = float(np.percentile(delta_e, CONTRAST_PERCENTILE))
    median = float(np.median(delta_e))
    verdict = _grade(value, CONTRAST_GOOD, CONTRAST_FAIR)
    if verdict == GOOD:
        return _entry(value, GOOD, median=median)
    return _entry(
        value,
        verdict,
        "The subject blends into the background: use a plain background of a clearly different colour or brightness.",
        "blends into the background",
        median=median,
    )


def _ring(inside: np.ndarray) -> np.ndarray:
    """The band of `inside` (uint8 0/1) that lies RING_GAP to RING_GAP + RING_WIDTH px from its border."""
    # Distance to the nearest pixel outside; the array's edge is not a border (the photo just stops there).
    padded = cv2.copyMakeBorder(inside, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]
    return ((distance > RING_GAP) & (distance <= RING_GAP + RING_WIDTH)).astype(np.uint8)


def _local_mean(
    lab: np.ndarray, ring: np.ndarray, rows: np.ndarray, cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The mean 8-bit Lab colour of the ring's pixels in a window around each (row, col), and where there is one.

    The window reaches both rings from an outline pixel. Its sums come from integral images, read only at the
    outline's pixels.
    """
    h, w = ring.shape
    half = RING_GAP + RING_WIDTH
    top, bottom = np.clip(rows - half, 0, h), np.clip(rows + half + 1, 0, h)
    left, right = np.clip(cols - half, 0, w), np.clip(cols + half + 1, 0, w)

    def window_sum(integral: np.ndarray) -> np.ndarray:
        return integral[bottom, right] - integral[top, right] - integral[bottom, left] + integral[top, left]

    # 8-bit values over at most a few megapixels: exact int32 sums.
    total = window_sum(cv2.integral(cv2.bitwise_and(lab, lab, mask=ring), sdepth=cv2.CV_32S)).astype(np.float64)
    count = window_sum(cv2.integral(ring, sdepth=cv2.CV_32S))
    has = count > 0.5
    return total / np.maximum(count, 1.0)[:, None], has


def _exposure(grey: np.ndarray, region: np.ndarray, on_subject: bool) -> dict:
    levels = grey[region]
    blown = float(np.count_nonzero(levels >= BLOWN)) / levels.size
    crushed = float(np.count_nonzero(levels <= CRUSHED)) / levels.size
    mean = float(levels.mean())
    over = _grade(-blown, -BLOWN_FAIR, -BLOWN_POOR)  # lower is better: grade the negated share
    under = _worse(_grade(-crushed, -CRUSHED_FAIR, -CRUSHED_POOR), _grade(mean, DARK_MEAN_FAIR, DARK_MEAN_POOR))
    measured = {"blown": blown, "crushed": crushed, "mean_luma": mean}
    value = blown + crushed
    what = "subject" if on_subject else "photo"
    if over == GOOD and under == GOOD:
        return _entry(value, GOOD, **measured)
    # When both ends are off, say the worse one; a tie goes to over-exposure, whose lost detail never returns.
    if _rank(over) >= _rank(under):
        return _entry(
            value,
            over,
            f"The {what} is over-exposed ({_percent(blown)} blown out to white): "
            "lower the exposure or soften the light.",
            f"over-exposed, {_percent(blown)} blown out",
            direction="over",
            **measured,
        )
    return _entry(
        value,
        under,
        f"The {what} is under-exposed (too dark): add light or raise the exposure.",
        "under-exposed, too dark",
        direction="under",
        **measured,
    )


def _highlights(rgb: np.ndarray, grey: np.ndarray, region: np.ndarray, on_subject: bool, blown: float) -> dict:
    if blown >= BLOWN_POOR:
        # In a blown-out photo every narrow clipped patch looks like a reflection: exposure says what is wrong.
        return _entry(None, UNKNOWN)
    # Only clipped pixels can be highlights: most photos have few, and then nothing else needs computing.
    specular = (grey >= HIGHLIGHT_LUMA) & region
    if specular.any():
        blob = max(3, int(round(max(grey.shape) * HIGHLIGHT_BLOB)) | 1)
        # White top-hat: how much brighter each pixel is than the brightest level a blob-sized square fits.
        rise = cv2.morphologyEx(grey, cv2.MORPH_TOPHAT, np.ones((blob, blob), np.uint8))
        r, g, b = cv2.split(rgb)
        top = cv2.max(cv2.max(r, g), b).astype(np.float32)
        spread = top - cv2.min(cv2.min(r, g), b)
        specular &= (rise >= HIGHLIGHT_RISE) & (spread <= HIGHLIGHT_MAX_SATURATION * top)
    share = float(np.count_nonzero(specular)) / max(int(np.count_nonzero(region)), 1)
    verdict = _grade(-share, -HIGHLIGHTS_FAIR, -HIGHLIGHTS_POOR)
    if verdict == GOOD:
        return _entry(share, GOOD)
    what = "subject" if on_subject else "photo"
    return _entry(
        share,
        verdict,
        f"The {what} has strong reflections: glass, chrome and glossy surfaces fool depth estimation, "
        "so use soft, diffuse light (or a polariser).",
        "strong reflections, diffuse the light",
    )


# --- verdicts and the summary -------------------------------------------------------------------------------


def _grade(value: float, good: float, fair: float) -> str:
    """good at or above `good`, fair at or above `fair`, else poor (negate all three for lower-is-better)."""
    if value >= good:
        return GOOD
    return FAIR if value >= fair else POOR


def _rank(verdict: str) -> int:
    """How bad a verdict is: unknown and good 0, fair 1, poor 2."""
    return {POOR: 2, FAIR: 1}.get(verdict, 0)


def _worse(a: str, b: str) -> str:
    return a if _rank(a) >= _rank(b) else b


def _entry(value: float | None, verdict: str, advice: str = "", hint: str = "", **measured: float | str) -> dict:
    entry = {"value": None if value is None else float(value), "verdict": verdict, "advice": advice, "hint": hint}
    entry.update({k: v if isinstance(v, str) else float(v) for k, v in measured.items()})
    return entry


def _summary(report: dict) -> list[str]:
    """The advice of every check that is not good: poor before fair, each in order of IMPORTANCE."""
    problems = [name for name in IMPORTANCE if _rank(report[name]["verdict"]) > 0]
    problems.sort(key=lambda name: -_rank(report[name]["verdict"]))  # stable: keeps the importance order
    return [report[name]["advice"] for name in problems]


def _overall(report: dict) -> str:
    worst = max((_rank(report[name]["verdict"]) for name in IMPORTANCE), default=0)
    return (GOOD, FAIR, POOR)[worst]


def _label(name: str, value: float | None) -> str:
    """What a UI line calls a check, with its measurement where a number means something to a photographer."""
    if name == "resolution":
        return f"Resolution {value:.0f} px"
    if name == "coverage":
        return f"Subject {_percent(value)} of frame"
    return {
        "sharpness": "Sharpness",
        "exposure": "Exposure",
        "framing": "Framing",
        "contrast": "Subject/background contrast",
        "highlights": "Highlights",
    }.get(name, name.capitalize())


def _percent(share: float) -> str:
    return f"{share * 100:.0f} %"

"""The input-quality report: a user hears before waiting when the photo itself will spoil the mesh.

Real photos from scikit-image and copies of them spoiled the way photos really are spoiled (missed focus,
too few pixels, wrong exposure); synthetic scenes only where the property is about the scene (a subject's
share of the frame, its colour against the background, mirror-like spots).
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from skimage import data

from image_to_mesh.inference.photo.photo import Photo, load_photo
from image_to_mesh.inference.photo.quality import assess_photo, format_quality

VERDICTS = {"good", "fair", "poor", "unknown"}
CHECKS = ("resolution", "sharpness", "coverage", "contrast", "exposure", "highlights", "framing")
REAL = {
    "astronaut": data.astronaut,
    "coffee": data.coffee,
    "chelsea": data.chelsea,
    "motorcycle": lambda: data.stereo_motorcycle()[0],
}


def as_photo(rgb: np.ndarray, source_size: tuple[int, int] | None = None, alpha=None) -> Photo:
    """A Photo of `rgb`; its original size is its own unless `source_size` says it was downscaled."""
    h, w = rgb.shape[:2]
    return Photo("test", np.ascontiguousarray(rgb), alpha, source_size or (w, h))


def blurred(rgb: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(rgb, (0, 0), sigma)


def centred_subject(shape: tuple[int, int], share: float) -> np.ndarray:
    """A centred ellipse of the frame's proportions covering `share` of a frame of `shape` (H, W)."""
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    k = np.sqrt(4 * share / np.pi)  # the ellipse's axes as a fraction of the frame's sides
    return ((yy + 0.5 - h / 2) / (k * h / 2)) ** 2 + ((xx + 0.5 - w / 2) / (k * w / 2)) ** 2 <= 1


@pytest.fixture(params=sorted(REAL), scope="module")
def real_photo(request) -> tuple[str, np.ndarray]:
    return request.param, REAL[request.param]()


# --- sharpness ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [2.0, 3.0])
def test_a_blurred_copy_of_a_real_photo_is_flagged_blurry_and_the_original_is_not(real_photo, sigma):
    name, rgb = real_photo
    original = assess_photo(as_photo(rgb))["sharpness"]
    soft = assess_photo(as_photo(blurred(rgb, sigma)))["sharpness"]

    assert original["verdict"] in ("good", "fair"), (name, original)
    assert soft["verdict"] == "poor", (name, soft)
    assert soft["value"] < original["value"] / 4, (name, original["value"], soft["value"])
    assert "blurry" in soft["advice"] and "focus" in soft["advice"]


def test_sharpness_does_not_depend_on_the_photos_pixel_count():
    # The same picture handed over at 4096 px and at 2048 px (what load_photo's max_side does) measures alike.
    large = cv2.resize(data.coffee(), (4096, 2731), interpolation=cv2.INTER_CUBIC)
    half = cv2.resize(large, (2048, 1366), interpolation=cv2.INTER_AREA)
    at_4096 = assess_photo(as_photo(large))["sharpness"]["value"]
    at_2048 = assess_photo(as_photo(half))["sharpness"]["value"]
    assert at_2048 == pytest.approx(at_4096, rel=0.1)


def test_sharpness_is_measured_on_the_subject_when_there_is_a_mask():
    # The subject (left part of the motorcycle photo) is out of focus; the rest of the frame is sharp.
    rgb = data.stereo_motorcycle()[0].copy()
    subject = np.zeros(rgb.shape[:2], bool)
    subject[:, : rgb.shape[1] * 2 // 5] = True
    rgb[subject] = blurred(rgb, 3.0)[subject]

    on_subject = assess_photo(as_photo(rgb), subject)["sharpness"]
    whole = assess_photo(as_photo(rgb))["sharpness"]
    assert on_subject["verdict"] == "poor" and "subject" in on_subject["advice"]
    assert whole["verdict"] != "poor"


def test_a_dim_photo_is_not_called_blurry():
    # Exposure is its own check: a sharp photo taken in poor light must not also be told to refocus.
    dim = (data.astronaut() * 0.4).astype(np.uint8)
    assert assess_photo(as_photo(dim))["sharpness"]["verdict"] == "good"


# --- resolution --------------------------------------------------------------------------------------------


def test_resolution_judges_the_original_size_not_the_working_copy(real_photo):
    name, rgb = real_photo
    h, w = rgb.shape[:2]
    quarter = cv2.resize(rgb, (w // 4, h // 4), interpolation=cv2.INTER_AREA)

    small = assess_photo(as_photo(quarter))["resolution"]
    own = assess_photo(as_photo(rgb))["resolution"]
    assert small["verdict"] == "poor" and small["value"] == max(w // 4, h // 4)
    assert "2048" in small["advice"]
    assert small["value"] < own["value"] and own["verdict"] in ("poor", "fair")  # scikit-image's are small

    # The same pixels, said to come from larger originals (photo.rgb is often a downscaled copy).
    assert assess_photo(as_photo(rgb, (4000, 3000)))["resolution"] == {
        "value": 4000.0, "verdict": "good", "advice": "", "hint": ""
    }
    assert assess_photo(as_photo(rgb, (1200, 1600)))["resolution"]["verdict"] == "fair"
    assert assess_photo(as_photo(rgb, (1000, 750)))["resolution"]["verdict"] == "poor"


def test_resolution_of_a_loaded_photo_is_the_files_size(tmp_path):
    path = tmp_path / "large.png"
    large = cv2.resize(data.chelsea(), (3000, 1995), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(path), cv2.cvtColor(large, cv2.COLOR_RGB2BGR))
    photo = load_photo(path, max_side=1024)

    assert max(photo.size) == 1024
    assert assess_photo(photo)["resolution"]["value"] == 3000.0
    assert assess_photo(photo)["resolution"]["verdict"] == "good"


# --- exposure ----------------------------------------------------------------------------------------------


def test_a_dark_copy_is_flagged_under_exposed(real_photo):
    name, rgb = real_photo
    assert assess_photo(as_photo(rgb))["exposure"]["verdict"] == "good", name

    dark = assess_photo(as_photo((rgb * 0.2).astype(np.uint8)))["exposure"]
    assert dark["verdict"] == "poor", (name, dark)
    assert dark["direction"] == "under"
    assert "under-exposed" in dark["advice"] and "over" not in dark["advice"]


def test_a_blown_out_copy_is_flagged_over_exposed(real_photo):
    name, rgb = real_photo
    bright = assess_photo(as_photo(np.clip(rgb * 3.0, 0, 255).astype(np.uint8)))["exposure"]
    assert bright["verdict"] == "poor", (name, bright)
    assert bright["direction"] == "over"
    assert "over-exposed" in bright["advice"] and "under" not in bright["advice"]
    assert bright["blown"] > 0.1


def test_exposure_is_measured_on_the_subject():
    # A correctly lit subject on a deliberately black backdrop is fine; the backdrop is not the subject.
    rgb = np.zeros((600, 800, 3), np.uint8)
    subject = centred_subject(rgb.shape[:2], 0.3)
    rgb[subject] = cv2.resize(data.coffee(), (800, 600))[subject]
    assert assess_photo(as_photo(rgb), subject)["exposure"]["verdict"] == "good"
    assert assess_photo(as_photo(rgb))["exposure"]["verdict"] != "good"


# --- coverage and framing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("share, verdict", [(0.10, "poor"), (0.45, "fair"), (0.70, "good")])
def test_coverage_is_the_subjects_share_of_the_frame(share, verdict):
    rgb = data.coffee()
    mask = centred_subject(rgb.shape[:2], share)
    coverage = assess_photo(as_photo(rgb), mask)["coverage"]
    assert coverage["value"] == pytest.approx(share, abs=0.01)
    assert coverage["verdict"] == verdict
    assert ("60 %" in coverage["advice"]) == (verdict != "good")


def test_a_mask_can_be_bytes_or_floats_at_another_size():
    rgb = data.coffee()
    mask = centred_subject(rgb.shape[:2], 0.10)
    shares = [
        assess_photo(as_photo(rgb), m)["coverage"]["value"]
        for m in (
            mask,
            mask.astype(np.uint8) * 255,
            mask.astype(np.uint8),
            cv2.resize(mask.astype(np.float32), (300, 200), interpolation=cv2.INTER_AREA),
        )
    ]
    assert shares == pytest.approx([0.10] * 4, abs=0.01)


def test_without_a_mask_the_subject_checks_are_unknown():
    report = assess_photo(as_photo(data.coffee()))
    for name in ("coverage", "contrast", "framing"):
        assert report[name]["verdict"] == "unknown" and report[name]["value"] is None, name
        assert report[name]["advice"] == ""


def test_a_cut_outs_alpha_is_its_subject():
    rgb = data.chelsea()
    subject = centred_subject(rgb.shape[:2], 0.2)
    cut_out = assess_photo(as_photo(rgb, alpha=np.where(subject, 255, 0).astype(np.uint8)))
    opaque = assess_photo(as_photo(rgb, alpha=np.full(rgb.shape[:2], 255, np.uint8)))
    assert cut_out["coverage"]["value"] == pytest.approx(0.2, abs=0.01)
    assert opaque["coverage"]["verdict"] == "unknown"


def test_a_subject_cut_off_by_the_frame_edge_is_flagged():
    rgb = data.coffee()
    centred = centred_subject(rgb.shape[:2], 0.5)
    cut_off = np.zeros(rgb.shape[:2], bool)
    cut_off[100:, 150:450] = True  # runs off the bottom edge
    assert assess_photo(as_photo(rgb), centred)["framing"]["verdict"] == "good"
    framing = assess_photo(as_photo(rgb), cut_off)["framing"]
    assert framing["verdict"] == "fair" and "cut off" in framing["advice"]


def test_a_mask_of_another_shape_is_a_mistake():
    with pytest.raises(ValueError):
        assess_photo(as_photo(data.coffee()), np.ones((400, 400), bool))
    with pytest.raises(ValueError):
        assess_photo(as_photo(data.coffee()), np.ones((400, 600, 3), bool))


# --- contrast ----------------------------------------------------------------------------------------------


def scene(subject_rgb, background_rgb, share=0.3, shape=(600, 800)) -> tuple[np.ndarray, np.ndarray]:
    """A flat-coloured subject on a flat background, with a little sensor noise."""
    mask = centred_subject(shape, share)
    rgb = np.where(mask[..., None], np.uint8(subject_rgb), np.uint8(background_rgb)).astype(np.int16)
    rgb += np.random.default_rng(0).integers(-3, 4, rgb.shape, dtype=np.int16)
    return np.clip(rgb, 0, 255).astype(np.uint8), mask


def test_contrast_is_high_for_red_on_white_and_low_for_grey_on_grey():
    red, mask = scene((200, 30, 30), (245, 245, 245))
    red_on_white = assess_photo(as_photo(red), mask)["contrast"]
    grey, mask = scene((120, 120, 120), (128, 128, 128))
    grey_on_grey = assess_photo(as_photo(grey), mask)["contrast"]

    assert red_on_white["verdict"] == "good" and red_on_white["value"] > 50
    assert grey_on_grey["verdict"] == "poor" and grey_on_grey["value"] < 5
    assert "background" in grey_on_grey["advice"]


def test_contrast_is_judged_at_the_weak_part_of_the_outline():
    # A red subject on white, except that a third of the outline runs along a red band: that third blends in.
    rgb, mask = scene((200, 30, 30), (245, 245, 245))
    cols = np.nonzero(mask.any(axis=0))[0]
    rgb[:, : cols[0] + (cols[-1] - cols[0]) // 3] = (200, 30, 30)
    rgb[mask] = (200, 30, 30)
    assert assess_photo(as_photo(rgb), mask)["contrast"]["verdict"] == "poor"


# --- highlights --------------------------------------------------------------------------------------------


def spots(rgb: np.ndarray, centres, radius: int) -> np.ndarray:
    """Clipped white spots with a soft edge: the reflections of a light on a glossy surface."""
    glare = np.zeros(rgb.shape[:2], np.float32)
    for x, y in centres:
        cv2.circle(glare, (x, y), radius, 1.0, -1)
    glare = np.maximum(glare, cv2.GaussianBlur(glare, (0, 0), radius / 2))
    return (rgb * (1 - glare[..., None]) + 255 * glare[..., None]).astype(np.uint8)


def test_a_few_specular_spots_on_the_subject_are_flagged():
    rgb = data.chelsea()  # a matte cat
    subject = np.zeros(rgb.shape[:2], bool)
    subject[60:280, 80:360] = True
    shiny = spots(rgb, [(120, 100), (200, 150), (260, 110), (300, 220), (160, 240), (230, 260)], 6)

    assert assess_photo(as_photo(rgb), subject)["highlights"]["verdict"] == "good"
    highlights = assess_photo(as_photo(shiny), subject)["highlights"]
    assert highlights["verdict"] in ("fair", "poor"), highlights
    assert "depth" in highlights["advice"] and "chrome" in highlights["advice"]


def test_a_white_object_is_not_a_reflection():
    # Clipped white, but the size of an object, not of a glint.
    rgb, _ = scene((253, 253, 253), (90, 110, 160), share=0.06)
    report = assess_photo(as_photo(rgb))
    assert report["exposure"]["blown"] > 0.03
    assert report["highlights"]["verdict"] == "good"


# --- the report as a whole ---------------------------------------------------------------------------------


def test_the_report_is_plain_json_with_one_entry_per_check():
    rgb = data.coffee()
    report = assess_photo(as_photo(rgb), centred_subject(rgb.shape[:2], 0.4))
    assert json.loads(json.dumps(report)) == report
    for name in CHECKS:
        entry = report[name]
        assert entry["verdict"] in VERDICTS
        assert entry["value"] is None or isinstance(entry["value"], float)
        assert (entry["advice"] == "") == (entry["verdict"] in ("good", "unknown")), name
        assert entry["advice"].count(". ") == 0 and (not entry["advice"] or entry["advice"].endswith(".")), name


def test_the_summary_lists_problems_worst_and_most_important_first():
    # Blurry, dark and small: focus and light matter more than pixels; all three are poor.
    small = cv2.resize(data.chelsea(), (225, 150), interpolation=cv2.INTER_AREA)
    report = assess_photo(as_photo((blurred(small, 3.0) * 0.2).astype(np.uint8)))
    assert report["summary"] == [
        report["sharpness"]["advice"],
        report["exposure"]["advice"],
        report["resolution"]["advice"],
    ]
    assert report["verdict"] == "poor"

    # A sharp, well exposed photo from a 4000 px original: nothing to say.
    good = assess_photo(as_photo(data.stereo_motorcycle()[0], (4000, 2699)))
    assert good["summary"] == [] and good["verdict"] == "good"


def test_format_quality_gives_short_panel_lines_problems_first():
    rgb = data.coffee()
    report = assess_photo(as_photo(rgb, (4000, 2667)), centred_subject(rgb.shape[:2], 0.42))
    lines = format_quality(report)

    assert "Subject 42 % of frame: fill more of the frame (60 %+)" in lines
    assert "Sharpness: good" in lines and "Resolution 4000 px: good" in lines
    assert all(len(line) <= 60 for line in lines)
    rank = {"poor": 0, "fair": 1, "good": 2}
    verdicts = [rank[report[name]["verdict"]] for name in CHECKS if report[name]["verdict"] != "unknown"]
    assert len(lines) == len(verdicts)
    assert lines.index("Subject 42 % of frame: fill more of the frame (60 %+)") < lines.index("Sharpness: good")
    # Checks that could not be measured take no space in the panel.
    no_mask = format_quality(assess_photo(as_photo(rgb, (4000, 2667))))
    assert not any(line.startswith(("Subject", "Framing")) for line in no_mask)


def test_tiny_and_flat_photos_get_a_report_not_an_error():
    for rgb in (data.coffee()[:6, :8], np.full((300, 400, 3), 128, np.uint8)):
        report = assess_photo(as_photo(rgb), np.ones(rgb.shape[:2], bool))
        assert all(report[name]["verdict"] in VERDICTS for name in CHECKS)
    flat = assess_photo(as_photo(np.full((300, 400, 3), 128, np.uint8)))
    assert flat["sharpness"]["verdict"] == "poor"  # nothing in focus: no detail to see

"""Subject masks (background removal): which pixels of the photo belong to the object, not its background.

One entry point, `subject_mask(photo, mode, ...)`, returns a bool (H, W) mask at the photo's size and a small
report. Every method produces a soft map (0..255) at its own resolution; the same finishing step then
thresholds it, cleans it up at a bounded working resolution (long side <= WORK_SIDE: keep the subject's
connected components, fill small holes) and only at the end upsamples to the photo's size, so a 50-megapixel
photo never costs more than a few full-size uint8 images.

Modes:
  auto     the photo's alpha channel when it has a meaningful one, else U²-Net-p;
  alpha    alpha >= 128;
  u2netp   U²-Net-p (4.6 MB, shipped with the tool, fetched by scripts/fetch_u2netp.py);
  u2net    U²-Net full (176 MB, downloaded through the model registry: card "u2net");
  grabcut  OpenCV GrabCut, seeded from U²-Net-p's mask when the model is there, else from a centred rectangle:
           for product shots on a clean background, where colour separates the object well;
  none     no mask.
The id of any other registry card with task = "mask" (IS-Net, BiRefNet) is accepted as a mode too.

`feather_alpha(mask, radius_px)` turns a mask into a float alpha for texture edges, separately, when wanted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..runtime.cards import InputContract, ModelCard, task_cards
from ..runtime.jobs import CancelToken
from ..runtime.onnx_session import onnx_session, run_session
from ..runtime.preprocess import image_tensor
from ..photo.photo import Photo

# Each mode with its label and description, as the sidebar and --help show them.
MASK_MODES = {
    "auto": ("Auto", "The photo's alpha channel if it has one, else U2-Net-p"),
    "alpha": ("Alpha", "Keep only where the photo is opaque"),
    "u2netp": ("U2-Net-p", "Salient-object segmentation, bundled (4.6 MB), offline"),
    "u2net": ("U2-Net", "The full U2-Net (176 MB, downloaded once)"),
    "grabcut": ("GrabCut", "Refined by colour: for product shots on a clean background"),
    "none": ("None", "Keep the whole photo"),
}
WORK_SIDE = 1024  # cleanup runs at most at this long side; masks are upsampled to the photo at the very end
GRABCUT_SIDE = 512  # GrabCut's cost grows with pixels x iterations: half a megapixel keeps it near a second

# U²-Net-p ships with the tool rather than through the registry; its contract is rembg's, and U²-Net's own:
# RGB at 320 x 320, pixels divided by the image's maximum, ImageNet mean/std, NCHW float32.
U2NETP_CONTRACT = InputContract(size_rule="fixed", side=320, normalise="imagenet-max")

SessionFactory = Callable[[Path], tuple]  # path -> (onnxruntime session, notices), like runtime.onnx_session.onnx_session


@dataclass(frozen=True)
class Cleanup:
    """How a raw mask is tidied. Fractions are of the image's area, so they mean the same at any resolution.

    min_component: keep every connected component at least this large (the largest is always kept);
        None keeps the largest only. 0 keeps everything.
    max_hole: fill background regions enclosed by the subject (not touching the image border) smaller than
        this. Larger enclosed regions are real holes the model saw through (a mug's handle, a ring) and stay.
    """

    min_component: float | None = 0.005
    max_hole: float = 0.001


def subject_mask(
    photo: Photo,
    mode: str,
    u2netp_path: Path | None,
    u2netp_hint: str = "reinstall Image to Mesh",
    session_factory: SessionFactory | None = None,
    *,
    model_path: Path | None = None,
    device: str = "cpu",
    threads: int = 0,
    cleanup: Cleanup = Cleanup(),
    cancel: CancelToken | None = None,
) -> tuple[np.ndarray | None, dict]:
    """The subject's mask, bool (H, W) at photo.rgb's size (None for mode "none"), and a report.

    u2netp_path: U²-Net-p's file (used by u2netp, auto without alpha, and to seed grabcut); the extension
        carries it, and u2netp_hint says how to get it back when it is missing.
    model_path: the file of a registry mask model (mode "u2net" or another mask card's id), as the model store
        found or fetched it.
    session_factory: path -> (session, notices); default runtime.onnx_session.onnx_session on `device` with `threads`.
    The report: mode, method (what actually ran), coverage (fraction of the photo), components_removed,
    holes_filled, notices, timings; plus model/provider for ONNX methods.
    """
    cards = task_cards("mask")
    if mode not in MASK_MODES and mode not in cards:
        raise InputError(f"Unknown mask mode '{mode}': use one of {', '.join(dict.fromkeys([*MASK_MODES, *cards]))}.")
    factory = session_factory or (lambda path: onnx_session(path, device, threads))
    report = {"mode": mode, "method": mode, "notices": [], "timings": {}}
    if mode == "none":
        report["coverage"] = 1.0
        return None, report

    start = time.perf_counter()
    soft = _soft_mask(photo, mode, (u2netp_path, u2netp_hint), model_path, factory, cards, report, cancel)
    mask, stats = finish_mask(soft, photo.size, cleanup)
    report.update(stats)
    report["coverage"] = float(mask.mean())
    report["timings"]["total"] = time.perf_counter() - start
    if not mask.any():
        report["notices"].append("The subject mask is empty: no subject was found in the photo.")
    return mask, report


def _soft_mask(photo, mode, u2netp, model_path, factory, cards, report, cancel) -> np.ndarray:
    """The chosen method's soft mask: uint8 0..255 (>= 128 = subject) at whatever resolution it works at."""
    if mode == "auto":
        if _has_meaningful_alpha(photo):
            mode = "alpha"
        else:
            if photo.alpha is not None:
                report["notices"].append("The photo's alpha channel does not separate a subject: using U²-Net-p.")
            mode = "u2netp"
        report["method"] = mode
    if mode == "alpha":
        if photo.alpha is None:
            raise InputError(
                f"The photo '{photo.name}' has no alpha channel: use another mask mode, e.g. auto or u2netp."
            )
        return photo.alpha
    if mode == "u2netp":
        return _model_soft(photo.rgb, _u2netp_file(*u2netp), U2NETP_CONTRACT, factory, report, cancel)
    if mode == "grabcut":
        return _grabcut_soft(photo.rgb, u2netp, factory, report, cancel)
    card = cards[mode]
    return _model_soft(photo.rgb, _card_file(card, model_path), card.input, factory, report, cancel)


# --- ONNX models --------------------------------------------------------------------------------------------


def _model_soft(rgb, path: Path, contract: InputContract, factory, report, cancel=None) -> np.ndarray:
    start = time.perf_counter()
    session, notices = factory(path)
    loaded = time.perf_counter()
    probability = model_probability(session, rgb, contract, cancel)
    report["notices"].extend(notices)
    report["model"] = str(path)
    report["provider"] = session.get_providers()[0]
    report["timings"].update(model=loaded - start, inference=time.perf_counter() - loaded)
    return _to_uint8(probability)


def model_probability(session, rgb: np.ndarray, contract: InputContract, cancel=None) -> np.ndarray:
    """A mask model's foreground probability (float32 0..1) at the model's own input size.

    Input and output names come from the session; output 0's first channel is the prediction (U²-Net's
    other outputs are its side branches). Min-max normalised, as U²-Net's and IS-Net's authors do, so the
    0.5 threshold sits between the model's own idea of background and subject.
    """
    first = session.get_inputs()[0]
    height, width = _input_size(first.shape, contract.side)
    pixels = image_tensor(rgb, (width, height), contract.normalise)
    output = run_session(session, [session.get_outputs()[0].name], {first.name: pixels}, cancel)[0]
    prediction = np.asarray(output, dtype=np.float32).reshape(-1, *output.shape[-2:])[0]
    if prediction.min() < 0.0 or prediction.max() > 1.0:
        # A graph that ends without a sigmoid (BiRefNet) gives logits; U²-Net and IS-Net end with one.
        prediction = 1.0 / (1.0 + np.exp(-np.clip(prediction, -60.0, 60.0)))
    low, high = float(prediction.min()), float(prediction.max())
    if high - low < 1e-6:  # a flat prediction carries no subject
        return np.zeros_like(prediction)
    return (prediction - low) / (high - low)


def _input_size(shape, side: int) -> tuple[int, int]:
    """(height, width): the graph's static spatial dims where it has them, else side x side."""
    dims = list(shape)[-2:]
    if len(dims) == 2 and all(isinstance(d, int) and d > 0 for d in dims):
        return dims[0], dims[1]
    return side, side


def _u2netp_file(path: Path | None, hint: str) -> Path:
    if path is None or not Path(path).is_file():
        where = f"at '{path}'" if path is not None else "configured"
        raise InputError(f"The subject-mask model U²-Net-p (u2netp.onnx) is not {where}: {hint}.")
    return Path(path)


def _card_file(card: ModelCard, path: Path | None) -> Path:
    if path is None or not Path(path).is_file():
        raise InputError(f"{card.name} is not downloaded: download model '{card.id}' ({card.size_mb:g} MB) first.")
    return Path(path)


# --- Alpha --------------------------------------------------------------------------------------------------


def _has_meaningful_alpha(photo: Photo) -> bool:
    """An alpha channel that separates something: neither fully opaque nor fully transparent."""
    if photo.alpha is None:
        return False
    inside = photo.alpha >= 128
    return bool(inside.any()) and not bool(inside.all())


# --- GrabCut ------------------------------------------------------------------------------------------------


def _grabcut_soft(rgb, u2netp, factory, report, cancel) -> np.ndarray:
    seed = None
    path, hint = u2netp
    if path is not None and Path(path).is_file():
        seed = _model_soft(rgb, Path(path), U2NETP_CONTRACT, factory, report, cancel)
        report["method"] = "grabcut (seeded by u2netp)"
    else:
        report["method"] = "grabcut (centred rectangle)"
        report["notices"].append(
            f"U²-Net-p is not available, so GrabCut starts from a centred rectangle ({hint})."
        )
    start = time.perf_counter()
    result = grabcut(rgb, seed)
    report["timings"]["grabcut"] = time.perf_counter() - start
    return result.astype(np.uint8) * 255


def grabcut(
    rgb: np.ndarray, seed: np.ndarray | None = None, side: int = GRABCUT_SIDE, iterations: int = 5
) -> np.ndarray:
    """GrabCut's foreground (bool) at a long side of at most `side`.

    seed: a soft mask (uint8, any size, >= 128 = subject) to start from, or None for a centred rectangle.
    """
    size = _fit(rgb.shape[1], rgb.shape[0], side)
    small = np.ascontiguousarray(_resized(rgb, size))
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    if seed is None:
        w, h = size
        mx, my = max(1, w // 16), max(1, h // 16)
        labels = np.zeros((h, w), np.uint8)
        cv2.grabCut(small, labels, (mx, my, w - 2 * mx, h - 2 * my), bgd, fgd, iterations, cv2.GC_INIT_WITH_RECT)
    else:
        labels = _grabcut_labels(_resized(seed, size) >= 128)
        sure_bg = (labels == cv2.GC_BGD) | (labels == cv2.GC_PR_BGD)
        if not sure_bg.any() or sure_bg.all():  # GrabCut needs samples of both: nothing to refine
            return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
        cv2.grabCut(small, labels, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)


def _grabcut_labels(inside: np.ndarray) -> np.ndarray:
    """GrabCut's four labels from a seed mask: the seed's core is surely subject, the seed and a ring around
    it are GrabCut's to decide, everything further out (and the image border) is surely background."""
    h, w = inside.shape
    radius = max(2, round(0.02 * max(w, h)))  # 2 % of the side: about the seed model's edge uncertainty
    core = _morph(inside, cv2.erode, radius)
    near = _morph(inside, cv2.dilate, 2 * radius)
    labels = np.full((h, w), cv2.GC_BGD, np.uint8)
    labels[near] = cv2.GC_PR_BGD
    labels[inside] = cv2.GC_PR_FGD
    labels[core] = cv2.GC_FGD
    border = max(1, radius // 2)
    frame = np.ones((h, w), bool)
    frame[border:-border, border:-border] = False
    labels[frame & ~core] = cv2.GC_BGD  # a subject cut by the frame keeps its sure core
    return labels


def _morph(mask: np.ndarray, op, radius: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return op(mask.astype(np.uint8), kernel).astype(bool)


# --- Finishing: threshold, clean up at the working size, upsample ------------------------------------------


def finish_mask(soft: np.ndarray, photo_size: tuple[int, int], cleanup: Cleanup = Cleanup()) -> tuple[np.ndarray, dict]:
    """A soft mask (uint8, any size, >= 128 = subject) -> the cleaned bool mask at photo_size = (W, H).

    The decision of what to remove or fill is made at WORK_SIDE; the photo-size mask is the soft mask
    upsampled (so edges keep the method's sub-pixel detail, and an alpha channel at the photo's size stays
    exact) with only those decisions applied on top.
    """
    work_size = _fit(*photo_size, WORK_SIDE)
    raw = _resized(soft, work_size) >= 128
    cleaned, stats = clean_mask(raw, cleanup)
    mask = _resized(soft, photo_size) >= 128
    removed, added = raw & ~cleaned, cleaned & ~raw
    if removed.any():
        mask &= ~_grown(removed, photo_size)
    if added.any():
        mask |= _grown(added, photo_size)
    return mask, stats


def clean_mask(mask: np.ndarray, cleanup: Cleanup = Cleanup()) -> tuple[np.ndarray, dict]:
    """Keep the subject's components and fill its small enclosed holes; also how many of each changed."""
    kept, removed = _keep_components(mask, cleanup.min_component)
    filled, holes = _fill_small_holes(kept, cleanup.max_hole)
    return filled, {"components_removed": removed, "holes_filled": holes}


def _keep_components(mask: np.ndarray, min_fraction: float | None) -> tuple[np.ndarray, int]:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 2:  # empty, or a single component: nothing to choose
        return mask.copy(), 0
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = areas >= min_fraction * mask.size if min_fraction is not None else np.zeros(len(areas), bool)
    keep[np.argmax(areas)] = True
    return np.concatenate([[False], keep])[labels], int((~keep).sum())


def _fill_small_holes(mask: np.ndarray, max_fraction: float) -> tuple[np.ndarray, int]:
    # Background regions, 4-connected: the dual of the subject's 8-connectivity, so an outline that is one
    # piece through diagonal steps also encloses what it surrounds. Label 0 is the subject itself.
    count, labels, stats, _ = cv2.connectedComponentsWithStats((~mask).astype(np.uint8), connectivity=4)
    if count <= 1:
        return mask.copy(), 0
    x, y, w, h, area = (stats[:, i] for i in range(5))
    height, width = mask.shape
    enclosed = (x > 0) & (y > 0) & (x + w < width) & (y + h < height)
    fill = enclosed & (area < max_fraction * mask.size)
    fill[0] = False
    return mask | fill[labels], int(fill.sum())


def _grown(region: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A working-size region at `size`, covering every photo pixel it touches (no seam left at its edge)."""
    return _resized(region.astype(np.uint8) * 255, size) > 0


# --- Feathering ---------------------------------------------------------------------------------------------


def feather_alpha(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """A float32 alpha (0..1) for texture edges: 0 outside the mask, rising to 1 at radius_px inside its edge.

    The ramp lies inside the mask, so a mesh cut along the mask's outline fades out at its silhouette instead
    of showing a fringe of background colour. Computed at the working size and upsampled.
    """
    height, width = mask.shape
    if radius_px <= 0:
        return mask.astype(np.float32)
    work_size = _fit(width, height, WORK_SIDE)
    scale = work_size[0] / width
    small = _resized(mask.astype(np.uint8) * 255, work_size) >= 128
    inside = cv2.distanceTransform(small.astype(np.uint8), cv2.DIST_L2, 5)  # distance to the nearest outside pixel
    ramp = np.clip(inside / max(radius_px * scale, 1.0), 0.0, 1.0)  # an edge pixel is at distance 1
    alpha = _resized(ramp.astype(np.float32), (width, height))
    alpha[~mask] = 0.0
    return alpha


# --- Small helpers ------------------------------------------------------------------------------------------


def _fit(width: int, height: int, side: int) -> tuple[int, int]:
    """(w, h) scaled down, never up, so the long side is at most `side`."""
    scale = min(1.0, side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _resized(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` at size (w, h): area-averaged when shrinking, bilinear when growing, untouched when equal."""
    if image.shape[1] == size[0] and image.shape[0] == size[1]:
        return image
    shrinking = size[0] <= image.shape[1] and size[1] <= image.shape[0]
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _to_uint8(probability: np.ndarray) -> np.ndarray:
    return np.clip(probability * 255.0 + 0.5, 0, 255).astype(np.uint8)

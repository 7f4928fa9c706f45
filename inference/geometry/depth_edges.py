"""Depth edges: where a depth map jumps, which side each vertex belongs to, and which grid edges to cut.

Why. Monocular depth networks blur depth across silhouettes: between a foreground and its background the
depth ramps smoothly over a few pixels ("flying pixels"). Meshed as it is, the ramp becomes a curtain of
stretched faces. A threshold on slope cannot remove it without also cutting real surfaces seen at grazing
angles, and whatever it cuts, the vertices left on the ramp sit at depths neither surface has. So instead of
choosing which ramp faces to drop, this module moves the ramp's vertices back onto the surfaces they came from
and then cuts exactly between the two surfaces.

Everything works on disparity q = 1 / depth, because a plane's disparity is affine in the image: a floor seen
at 89 degrees is as straight a line in q as a wall seen head on, so "a surface" can be told from "a jump"
without any angle limit, and extrapolating a surface in q continues planes exactly.

1. Profiles. Each vertex is read along one of four grid directions (row, column, two diagonals): the main
   axis of the squared Hessian of q, i.e. across the local edge, crease or thin structure. (The gradient
   would point along a steep floor instead of across the small step in front of it: planes have no Hessian.)
   A vertex lying in a clean window (WINDOW samples along its profile whose second differences stay within
   CLEAN_TOL of q, tightened beyond the median depth, where the same disparity error is a larger depth error)
   is on a surface and is left alone, as is any vertex with no step of JUMP_MIN within REACH; only the others
   are examined.
2. Plateaus. From each examined vertex, the nearest clean window on either side within REACH steps is the
   surface on that side; its least-squares line predicts that surface's disparity at the vertex. These are
   the local minimum and maximum of depth the vertex lies between, corrected for slope.
3. Blur. Across a step with clean plateaus on both sides that climbs from one to the other without turning
   back, the largest share of the step taken between two neighbouring samples is erf(1 / (2 sqrt(2) sigma))
   for a Gaussian blur of sigma (1 for a sharp step); its median over all strong steps gives the map's blur.
   Exact depth (a renderer, a depth sensor, Middlebury's ground truth with its occasional mixed pixel) reads as
   sharp, below SHARP_SIGMA, and passes through unchanged; the benchmark's network-like depth gives back the
   sigma it was made with.
4. Snapping. A vertex between its two plateaus is on a ramp: it belongs to the side whose predicted value is
   nearer (the ramp's midpoint is where a symmetric blur puts the true edge), its colour deciding near the
   middle where the plateaus' colours differ, and takes that side's value; the other side's value is kept as
   the background hidden behind it (for occlusion_fill). A vertex only counts as on a ramp when it climbs
   as a blurred step does there: at the share p of the step, the step's blur gives it the slope
   jump * phi(Phi^-1(p)) / sigma; one RAMP_SLACK times flatter is a surface that merely lies between two
   distant plateaus (a floor between a far wall and a near object), and is left where it is. A vertex
   beyond both plateaus by less than BUMP_MIN is a blurred crease and takes the nearer plateau. One beyond
   both by more is a thin structure (a chair leg, a lamp pole): blur keeps the mass of the excess over the
   background and adds its own variance to the structure's, so the excess's mass and spread give the true
   width and height of the bar (a bar of w samples has variance (w^2 - 1) / 12). Where no clean plateau lies
   within reach on one side (structures closer together than the blur), the vertex takes the nearer of the
   two surfaces: the plateau's line on the side that has one (a raw extreme on a slanted floor lies a few
   steps up its slope), the raw local extreme within the blur's reach on the side that has none.
   The Hessian's axis can run along an oblique or curved silhouette's ramp instead of across it; a vertex the
   first reading leaves undecided (neither snapped as a step nor rebuilt as a bar) is read again along the
   other three directions, and one that crosses a step between plateaus as near as a blurred step's, larger
   than half the range the blur spreads around the vertex, decides.
   A vertex only moves when that changes its depth by more than DEVIATION_Z of the scene's median depth.
5. Reconvolution. Where structures lie closer together than the blur, a profile's decision can be wrong;
   the band of examined vertices is then solved as a whole against the blur (see reconvolution), each vertex
   choosing among the plateau lines read around it in all four directions.
6. Cutting. After snapping, a grid edge crosses a discontinuity when its disparity step is not explained by
   the steps before and after it along the same line: for a surface, planar or curved, and for a crease,
   the step lies between its neighbours' steps; for a jump it lies outside them by more than JUMP_MIN of q
   (and than NOISE_K times the local noise, so noisy depth is not shredded). No angle is involved, so steep
   but continuous surfaces are kept whole and jumps of any size are cut.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .reconvolution import refine

WINDOW = 4  # samples in a plateau window
REACH = 16  # grid steps a plateau window may lie from the vertex it predicts
CLEAN_TOL = 1e-3  # a clean window: second differences of disparity within this share of the disparity
JUMP_MIN = 0.01  # a cut: a step outside its neighbours' steps by more than this share of the disparity
DEVIATION_Z = 0.002  # a vertex moves when that changes its depth by more than this share of the median depth
BUMP_MIN = 0.03  # beyond both plateaus by more than this share of the disparity: a structure, not a crease
SHARP_SIGMA = 0.6  # blur (grid steps) below which depth counts as sharp and is not deblurred
LONE_STEP = 0.04  # without a plateau on one side, only a local range this large (share of q) is a step to toggle
STRONG_STEP = 0.1  # steps whose plateaus differ by this share of the disparity measure the blur
NOISE_K = 6.0  # a cut's step also exceeds this many times the local median second difference (noise)
RAMP_SLACK = 3.0  # a ramp vertex climbs at least 1 / RAMP_SLACK as steeply as its blurred step predicts
COLOUR_MIN = 30.0  # plateau colours this far apart (RGB distance, 0..255) can decide a ramp vertex's side

# Profile directions as (row step, column step).
DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))


@dataclass
class DepthEdges:
    depth: np.ndarray  # (rows, cols) float32: the depth with ramp vertices moved onto their surfaces
    blur: float  # the depth's blur (Gaussian sigma) in grid steps, as measured from its steps
    broken: list[np.ndarray]  # per DIRECTIONS[k]: (rows, cols) bool, the edge to the point one step on is cut
    # (rows, cols) float64: at ramp vertices moved onto the nearer surface, the farther surface's disparity
    # there (the background the blur hid behind them); NaN elsewhere.
    behind: np.ndarray | None = None
    disparity: np.ndarray | None = None  # (rows, cols) float64, 1 / depth after snapping
    floors: list[np.ndarray] | None = None  # per DIRECTIONS[k], the noise a cut along it exceeds (roughness)


def find_depth_edges(depth: np.ndarray, guide: np.ndarray | None = None) -> DepthEdges:
    """Snap blurred ramps onto their surfaces and find the edges to cut (NaN depth = no surface).

    `guide` is the photo (H x W x 3, any size; resampled to the depth's) whose colours help decide sides.
    """
    snapped, blur, behind = snap_ramps(depth, guide)
    q = disparity(snapped)
    floors = roughness(q)
    return DepthEdges(snapped, blur, broken_edges(snapped, floors=floors), behind, q, floors)


def disparity(depth: np.ndarray) -> np.ndarray:
    """1 / depth as float64, NaN where there is no surface."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(depth) & (depth > 0), 1.0 / depth.astype(np.float64), np.nan)


# --- snapping ------------------------------------------------------------------------------------------------


def snap_ramps(depth: np.ndarray, guide: np.ndarray | None = None):
    """The depth with every vertex on a blurred step moved onto its surface, the measured blur, and the
    farther surface's disparity behind vertices moved onto the nearer one (NaN elsewhere)."""
    rows, cols = depth.shape
    q = disparity(depth)
    valid = np.isfinite(q)
    behind = np.full(depth.shape, np.nan)
    if not valid.any():
        return depth, 0.0, behind
    z_scale = float(np.median(1.0 / q[valid]))
    q_scale = 1.0 / z_scale
    direction = _directions(q)
    candidate = valid & ~_on_surface(q, direction, q_scale) & _near_step(q)
    half = REACH + WINDOW
    qp = np.pad(q, half, constant_values=np.nan)
    wp = cols + 2 * half
    steps = np.array([dr * wp + dc for dr, dc in DIRECTIONS])
    ii, jj = np.nonzero(candidate)
    if len(ii) == 0:
        return depth, 0.0, behind
    flat = (ii + half) * wp + (jj + half)
    t = np.arange(-half, half + 1)

    def read(which, k):
        """Profiles of vertices `which` along DIRECTIONS[k] (per vertex): disparity at t = -half .. half
        steps, t = 0 at the vertex, and the plateaus on both sides."""
        prof = qp.ravel()[flat[which, None] + t[None, :] * steps[k][:, None]]
        return prof, _plateau(prof, half, -1, q_scale) + _plateau(prof, half, 1, q_scale)

    prof, plateaus = read(slice(None), direction[ii, jj])
    r_l, e_l, _, r_r, e_r, _ = plateaus
    with np.errstate(invalid="ignore", divide="ignore"):
        q0 = prof[:, half]
        jump = e_r - e_l
        between = (r_l > 0) & (r_r > 0) & ((q0 - e_l) * (q0 - e_r) < 0)
        blur = _blur(prof, half, *plateaus, between & (np.abs(jump) > STRONG_STEP * q0))
    if blur < SHARP_SIGMA:  # sharp depth: nothing to undo
        return depth, blur, behind
    colour = None if guide is None else _Colours(guide, (rows, cols), ii, jj, wp)
    new, farther, decided = _snap(prof, half, steps[direction[ii, jj]], plateaus, blur, q_scale, z_scale, colour)

    # The main axis of the Hessian can run along an oblique or curved silhouette, where a plateau lies beyond
    # reach on one side or the profile follows the ramp. Vertices the first reading left undecided are read
    # along the other three directions; one that crosses a step, between plateaus as near as a blurred
    # step's and larger than half the range the blur spreads around the vertex, decides (the largest wins).
    retry = np.flatnonzero(~decided)
    near = 2 * (int(np.ceil(3 * blur)) + 1)
    h = _blur_reach(blur)
    with np.errstate(invalid="ignore"):
        local = prof[retry, half - h : half + h + 1]
        best = np.fmax(0.5 * (np.nanmax(local, axis=1) - np.nanmin(local, axis=1)), LONE_STEP * prof[retry, half])
    sub = None if colour is None or len(retry) == 0 else colour.subset(retry)
    for turn in (1, 2, 3):
        if len(retry) == 0:
            break
        k = (direction[ii[retry], jj[retry]] + turn) % 4
        prof_k, plateaus_k = read(retry, k)
        new_k, farther_k, stepped = _snap(prof_k, half, steps[k], plateaus_k, blur, q_scale, z_scale, sub)
        r_l, e_l, _, r_r, e_r, _ = plateaus_k
        q0 = prof_k[:, half]
        with np.errstate(invalid="ignore"):
            size = np.abs(e_r - e_l)
            take = stepped & (r_l > 0) & (r_r > 0) & (r_l + r_r <= near) & ((q0 - e_l) * (q0 - e_r) < 0)
            take &= size > best
        best[take] = size[take]
        new[retry[take]], farther[retry[take]] = new_k[take], farther_k[take]

    behind[ii, jj] = farther
    out = q.copy()
    out[ii, jj] = new

    # Step 5: the band reconsidered as a whole, against the blur (see reconvolution).
    around = [plateaus]
    for k in (1, 2, 3):
        around.append(read(slice(None), (direction[ii, jj] + k) % 4)[1])
    surfaces = np.stack([np.where(r > 0, e, np.nan) for r_l, e_l, _, r_r, e_r, _ in around
                         for r, e in ((r_l, e_l), (r_r, e_r))], axis=1)
    out = refine(q, out, candidate, surfaces, blur, q_scale, None if colour is None else colour.rgb)
    with np.errstate(invalid="ignore"):
        behind[~(out > behind)] = np.nan  # a vertex moved behind its hidden surface hides nothing
    with np.errstate(divide="ignore", invalid="ignore"):
        result = (1.0 / out).astype(np.float32)
    bad = ~(np.isfinite(result) & (result > 0))
    result[bad] = depth[bad]
    return result, blur, behind


def _snap(prof, half, offset, plateaus, blur, q_scale, z_scale, colour):
    """Each profile's vertex moved onto its surface (step 4 of the module's docstring): its new disparity,
    the farther surface's disparity hidden behind it where it moved onto the nearer one (NaN elsewhere), and
    whether it was decided: snapped as a step or rebuilt as a bar (else left, or moved by raw extremes)."""
    r_l, e_l, s_l, r_r, e_r, s_r = plateaus
    q0 = prof[:, half]
    both = (r_l > 0) & (r_r > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        dev_l, dev_r = q0 - e_l, q0 - e_r
        jump = e_r - e_l
        between = both & (dev_l * dev_r < 0)
        left_nearer = np.abs(dev_l) <= np.abs(dev_r)
        if colour is not None:
            left_nearer = colour.side(offset, r_l, r_r, left_nearer, between, np.abs(dev_l) / np.abs(jump))
        nearer = np.where(left_nearer, e_l, e_r)
        dev = np.minimum(np.abs(dev_l), np.abs(dev_r))
        moves = np.abs(1.0 / nearer - 1.0 / q0) > DEVIATION_Z * z_scale
        step = both & moves & (np.maximum(np.abs(jump), dev) > JUMP_MIN * q0)
        bump = both & ~between & (dev > BUMP_MIN * q0)
        step &= ~bump & ~(between & ~_fits_ramp(prof, half, q0, e_l, jump, blur))

    new = q0.copy()
    new[step] = nearer[step]
    farther = np.full(len(q0), np.nan)
    with np.errstate(invalid="ignore"):
        far = np.where(left_nearer, e_r, e_l)
        hidden = step & between & (far < nearer)
    farther[hidden] = far[hidden]
    bar = _thin_structures(prof, half, np.flatnonzero(bump), *plateaus, blur)
    done = np.isfinite(bar)
    new[np.flatnonzero(bump)[done]] = bar[done]
    both[np.flatnonzero(bump)[~done]] = False  # several structures in one span: toggled below
    # No plateau within reach on one side: the nearer of the two surfaces, the side without a plateau read
    # as the raw local extreme within the blur's reach (a plateau's line, where one side has it, is exact
    # on a slanted surface, where a raw extreme lies a few steps up the slope).
    h = _blur_reach(blur)
    local = prof[:, half - h : half + h + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        known = np.where(r_l > 0, e_l, np.where(r_r > 0, e_r, np.nan))
        known[(r_l > 0) & (r_r > 0)] = np.nan
        hi = np.where(known > q0, known, np.nanmax(local, axis=1))
        lo = np.where(known < q0, known, np.nanmin(local, axis=1))
        pick = np.where(hi - q0 <= q0 - lo, hi, lo)
        lone = ~both & (hi - lo > LONE_STEP * q0) & (np.abs(1.0 / pick - 1.0 / q0) > DEVIATION_Z * z_scale)
    new[lone] = pick[lone]
    decided = step.copy()
    decided[np.flatnonzero(bump)[done]] = True
    return new, farther, decided


def _blur_reach(blur: float) -> int:
    """Grid steps within which a step blurred by `blur` still moves its samples (2.5 sigma, and one more)."""
    return int(np.ceil(2.5 * blur)) + 1


def _directions(q: np.ndarray) -> np.ndarray:
    """Per vertex, the index into DIRECTIONS across the local structure: the main axis of the squared,
    smoothed Hessian of the disparity (planes have none, so a step is read across the step even on a floor
    whose own slope is far steeper)."""
    import cv2

    filled = np.where(np.isfinite(q), q, 0.0).astype(np.float32)
    hxx = cv2.Sobel(filled, cv2.CV_32F, 2, 0, ksize=3)
    hyy = cv2.Sobel(filled, cv2.CV_32F, 0, 2, ksize=3)
    hxy = cv2.Sobel(filled, cv2.CV_32F, 1, 1, ksize=3)
    mxx = cv2.GaussianBlur(hxx * hxx + hxy * hxy, (0, 0), 1.5)
    myy = cv2.GaussianBlur(hyy * hyy + hxy * hxy, (0, 0), 1.5)
    mxy = cv2.GaussianBlur(hxy * (hxx + hyy), (0, 0), 1.5)
    angle = 0.5 * np.arctan2(2 * mxy, mxx - myy)  # from +columns towards +rows
    octant = np.round(angle * (4 / np.pi)).astype(np.int64) % 4  # 0: columns, 1: down-right, 2: rows, 3: down-left
    return np.array([0, 2, 1, 3], dtype=np.int8)[octant]


def _near_step(q: np.ndarray) -> np.ndarray:
    """Vertices within REACH of a disparity range over JUMP_MIN of their own: the only ones a step can
    have moved (elsewhere the depth is a surface, up to noise)."""
    import cv2

    kernel = np.ones((2 * REACH + 1, 2 * REACH + 1), np.uint8)
    q32 = q.astype(np.float32)
    high = cv2.dilate(np.where(np.isfinite(q32), q32, -np.inf).astype(np.float32), kernel)
    low = cv2.erode(np.where(np.isfinite(q32), q32, np.inf).astype(np.float32), kernel)
    with np.errstate(invalid="ignore", over="ignore"):
        return (high - low) > JUMP_MIN * q32


def _shift(a: np.ndarray, dr: int, dc: int) -> np.ndarray:
    """a shifted so that out[i, j] = a[i + dr, j + dc] (NaN beyond the border)."""
    rows, cols = a.shape
    out = np.empty_like(a)
    out[max(0, -dr) : rows - max(0, dr), max(0, -dc) : cols - max(0, dc)] = a[
        max(0, dr) : rows + min(0, dr), max(0, dc) : cols + min(0, dc)
    ]
    # Only the strips shifted in from beyond the border are NaN.
    if dr > 0:
        out[rows - dr :] = np.nan
    elif dr < 0:
        out[:-dr] = np.nan
    if dc > 0:
        out[:, cols - dc :] = np.nan
    elif dc < 0:
        out[:, :-dc] = np.nan
    return out


def _tolerance(q, q_scale):
    """CLEAN_TOL of the disparity, tightened for surfaces beyond the median depth: a disparity error dq is a
    depth error dq / q^2, so the same relative error matters (q_scale / q) times more there."""
    return CLEAN_TOL * np.abs(q) * np.minimum(1.0, np.abs(q) / q_scale)


def _on_surface(q: np.ndarray, direction: np.ndarray, q_scale: float) -> np.ndarray:
    """Vertices lying in a clean window of WINDOW samples along their own profile direction."""
    q32 = q.astype(np.float32)
    out = np.zeros(q.shape, bool)
    tol = _tolerance(q32, np.float32(q_scale))
    for k, (dr, dc) in enumerate(DIRECTIONS):
        mine = direction == k
        if not mine.any():
            continue
        with np.errstate(invalid="ignore"):
            # ok[m]: the second difference centred m steps along is small, m = -(WINDOW - 2) .. WINDOW - 2.
            second = q32 * -2 + _shift(q32, dr, dc) + _shift(q32, -dr, -dc)
            clean = np.abs(second) <= tol
        ok = {m: _shift(clean.astype(np.float32), m * dr, m * dc) == 1 for m in range(-(WINDOW - 2), WINDOW - 1)}
        # A window of WINDOW samples starting s steps before the vertex holds second differences centred at
        # s + 1 .. s + WINDOW - 2.
        on = np.zeros(q.shape, bool)
        for s in range(-(WINDOW - 1), 1):
            window = np.ones(q.shape, bool)
            for m in range(s + 1, s + WINDOW - 1):
                window &= ok[m]
            on |= window
        out |= mine & on
    return out


def _clean(f0, f1, f2, f3, q_scale):
    scale = _tolerance((f1 + f2) * 0.5, q_scale)
    with np.errstate(invalid="ignore"):
        return (np.abs(f0 - 2 * f1 + f2) <= scale) & (np.abs(f1 - 2 * f2 + f3) <= scale)


def _plateau(prof: np.ndarray, half: int, side: int, q_scale: float):
    """The nearest clean window on one side of each profile's vertex: its distance (0: none within REACH),
    and its least-squares line as the value it predicts at the vertex and its slope per step."""
    n = prof.shape[0]
    found = np.zeros(n, np.int64)
    value = np.full(n, np.nan)
    slope = np.full(n, np.nan)
    offsets = np.arange(WINDOW) - (WINDOW - 1) / 2
    denom = float((offsets**2).sum())
    for r in range(1, REACH + 1):
        # Samples at t = side * (r .. r + WINDOW - 1), in increasing t.
        ts = sorted(side * (r + k) for k in range(WINDOW))
        f = [prof[:, half + t] for t in ts]
        take = (found == 0) & _clean(*f, q_scale)
        if not take.any():
            continue
        ft = [fk[take] for fk in f]
        b = sum(o * fk for o, fk in zip(offsets, ft)) / denom
        a = sum(ft) / WINDOW - b * (sum(ts) / WINDOW)
        found[take] = r
        value[take] = a
        slope[take] = b
    return found, value, slope


def _blur(prof, half, r_l, e_l, s_l, r_r, e_r, s_r, strong) -> float:
    """The depth's blur (Gaussian sigma, grid steps), from its strong steps: the largest single sample-to-
    sample share of a step is erf(1 / (2 sqrt(2) sigma)) when blurred by sigma (1 for a sharp step), read
    back through that relation and taken as the median over all steps. Other structure near a step (a crease,
    a second step) leaves its largest share alone, which a measure of spread would not."""
    idx = np.flatnonzero(strong)
    if len(idx) < 20:
        return 0.0
    t = np.arange(-half, half + 1)[None, :]
    low = e_l[idx][:, None] + s_l[idx][:, None] * t
    high = e_r[idx][:, None] + s_r[idx][:, None] * t
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = (prof[idx] - low) / (high - low)
    inside = (t >= -r_l[idx][:, None]) & (t <= r_r[idx][:, None])
    pair = inside[:, 1:] & inside[:, :-1]
    d = np.where(pair, np.diff(frac, axis=1), np.nan)
    # A step: between its plateaus the profile climbs from one to the other without turning back.
    with np.errstate(invalid="ignore"):
        step_like = (np.nansum(np.minimum(d, 0.0), axis=1) > -0.1) & (np.abs(np.nansum(d, axis=1) - 1) < 0.1)
    share = np.nanmax(d[step_like], axis=1) if step_like.any() else np.ones(1)
    share = np.median(share[np.isfinite(share)]) if np.isfinite(share).any() else 1.0
    sigmas = np.linspace(0.05, 8.0, 400)
    shares = np.array([math.erf(1 / (2 * math.sqrt(2) * s)) for s in sigmas])  # decreasing in sigma
    return float(np.interp(-share, -shares, sigmas, left=0.0, right=sigmas[-1]))


def _fits_ramp(prof, half, q0, e_l, jump, blur) -> np.ndarray:
    """Whether each vertex between its plateaus climbs as steeply as a step of `jump` blurred by `blur` does
    where it stands: at the share p of the step, the slope is jump * phi(Phi^-1(p)) / blur. A surface that
    merely lies between two distant plateaus (a floor between a far wall and a table) is far flatter."""
    x = np.linspace(-6.0, 6.0, 1201)
    cdf = 0.5 * (1 + np.array([math.erf(v / math.sqrt(2)) for v in x]))
    with np.errstate(invalid="ignore", divide="ignore"):
        quantile = np.interp((q0 - e_l) / jump, cdf, x)  # NaN stays NaN: no expectation, a ramp
        expected = np.abs(jump) * np.exp(-0.5 * quantile**2) / (math.sqrt(2 * math.pi) * blur)
        observed = 0.5 * np.abs(prof[:, half + 1] - prof[:, half - 1])
        return ~(observed * RAMP_SLACK < expected)


def _thin_structures(prof, half, idx, r_l, e_l, s_l, r_r, e_r, s_r, blur) -> np.ndarray:
    """For profiles `idx` beyond both plateaus: the vertex's value if the excess over the background is one
    blurred bar (its true height inside the bar, the background outside); NaN where it is not one bar."""
    if len(idx) == 0:
        return np.zeros(0)
    t = np.arange(-half, half + 1)[None, :]
    rl, rr = r_l[idx], r_r[idx]
    start = e_l[idx] - s_l[idx] * rl  # the background at the inner ends of the two windows
    end = e_r[idx] + s_r[idx] * rr
    background = start[:, None] + (end - start)[:, None] * (t + rl[:, None]) / (rl + rr)[:, None]
    inside = (t > -rl[:, None]) & (t < rr[:, None])
    excess = np.nan_to_num(np.where(inside, prof[idx] - background, 0.0))
    # One structure: the excess rises to one peak and falls.
    signed = excess * np.sign(excess.sum(axis=1))[:, None]
    tol = 1e-3 * np.abs(prof[idx, half])[:, None]
    diff = np.diff(signed, axis=1)
    single = ~((diff > tol) & (np.cumsum(diff < -tol, axis=1) > 0)).any(axis=1)
    mass = excess.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = (excess * t).sum(axis=1) / mass
        variance = (excess * (t - centre[:, None]) ** 2).sum(axis=1) / mass
        width = np.sqrt(np.maximum(12 * (variance - blur**2) + 1, 1.0))
        height = mass / width
    background0 = start + (end - start) * rl / (rl + rr)
    value = np.where(np.abs(centre) <= width / 2, background0 + height, background0)
    value[~single | ~(value > 0)] = np.nan
    return value


class _Colours:
    """The photo on the grid, to decide the side of ramp vertices near a ramp's middle: they take the side
    whose plateau colour is nearer their own, where the plateau colours differ by COLOUR_MIN or more."""

    def __init__(self, guide, size, ii, jj, wp, rgb=None):
        import cv2

        rows, cols = size
        if rgb is None:
            rgb = cv2.resize(guide, (cols, rows), interpolation=cv2.INTER_AREA).astype(np.float32)
        self.rgb, self.ii, self.jj, self.wp, self.guide, self.size = rgb, ii, jj, wp, guide, size

    def subset(self, idx) -> "_Colours":
        return _Colours(self.guide, self.size, self.ii[idx], self.jj[idx], self.wp, self.rgb)

    def side(self, offset, r_l, r_r, left_nearer, between, position):
        rows, cols = self.size
        ambiguous = between & (position > 0.3) & (position < 0.7)
        if not ambiguous.any():
            return left_nearer
        idx = np.flatnonzero(ambiguous)
        # Offsets in padded-grid units back to (row, column) steps.
        dr, dc = np.divmod(offset[idx] + 1, self.wp)
        dc -= 1
        ci, cj = self.ii[idx], self.jj[idx]

        def colour_at(distance):
            return self.rgb[np.clip(ci + dr * distance, 0, rows - 1), np.clip(cj + dc * distance, 0, cols - 1)]

        own = self.rgb[ci, cj]
        left, right = colour_at(-r_l[idx]), colour_at(r_r[idx])
        contrast = np.linalg.norm(left - right, axis=1)
        to_left = np.linalg.norm(own - left, axis=1)
        to_right = np.linalg.norm(own - right, axis=1)
        decided = contrast >= COLOUR_MIN
        out = left_nearer.copy()
        out[idx[decided]] = to_left[decided] <= to_right[decided]
        return out


# --- cutting -------------------------------------------------------------------------------------------------


def broken_edges(
    depth: np.ndarray, jump_min: float = JUMP_MIN, floors: list[np.ndarray] | None = None
) -> list[np.ndarray]:
    """For each of DIRECTIONS, a (rows, cols) bool array: the edge from each grid point to its neighbour one
    step on crosses a discontinuity: its disparity step lies outside the steps before and after it by more
    than jump_min of the disparity and than the local noise (see roughness)."""
    q = disparity(depth).astype(np.float32)
    floors = roughness(q) if floors is None else floors
    rows, cols = q.shape
    out = []
    for (dr, dc), floor in zip(DIRECTIONS, floors):
        broken = np.zeros((rows, cols), bool)
        after = _shift(q, dr, dc)
        with np.errstate(invalid="ignore"):
            step = after - q
            scale = np.fmax(np.fmax(q, after) * np.float32(jump_min), floor)
            big = np.abs(step) > scale  # only a step this large can lie that far outside its neighbours
        i, j = np.nonzero(big)
        if len(i):
            broken[i, j] = _step_outside(q, i, j, dr, dc, step[i, j], scale[i, j])
        out.append(broken)
    return out


def roughness(q: np.ndarray) -> list[np.ndarray]:
    """Per DIRECTIONS[k], the noise a cut along it must exceed: NOISE_K times the local median (5 x 5) of
    the disparity's absolute second differences across that direction. Zero on clean surfaces; noise raises
    it in every direction, while a step or a thin structure only raises the differences across itself, not
    along it, so it does not hide itself."""
    import cv2

    q32 = q.astype(np.float32)

    def median_second(dr, dc):
        with np.errstate(invalid="ignore"):
            second = np.abs(_shift(q32, dr, dc) - 2 * q32 + _shift(q32, -dr, -dc))
        # The first and last row (or column) have no second difference: take their neighbours', not zero.
        if dr:
            second[0], second[-1] = second[min(1, len(second) - 1)], second[max(-2, -len(second))]
        else:
            second[:, 0], second[:, -1] = second[:, min(1, second.shape[1] - 1)], second[:, max(-2, -second.shape[1])]
        return np.float32(NOISE_K) * cv2.medianBlur(np.nan_to_num(second, nan=0.0, posinf=0.0), 5)

    along_rows, along_cols = median_second(0, 1), median_second(1, 0)
    diagonal = np.minimum(along_rows, along_cols)
    return [along_cols, along_rows, diagonal, diagonal]


def edges_broken_at(values, shape: tuple[int, int], points: np.ndarray, k: int, floor: np.ndarray | None = None,
                    jump_min: float = JUMP_MIN):
    """broken_edges for the edges from grid points `points` (row * columns + column) one step of
    DIRECTIONS[k] on only; `values(p)` gives the disparity at grid points p, `floor` the roughness term."""
    rows, cols = shape
    dr, dc = DIRECTIONS[k]
    i, j = np.divmod(points, cols)

    def at(m):
        r, c = i + m * dr, j + m * dc
        ok = (r >= 0) & (r < rows) & (c >= 0) & (c < cols)
        v = np.full(len(points), np.nan)
        v[ok] = values(r[ok] * cols + c[ok])
        return v

    here, after = at(0), at(1)
    with np.errstate(invalid="ignore"):
        step = after - here
        scale = np.fmax(here, after) * jump_min
        if floor is not None:
            scale = np.fmax(scale, floor.ravel()[points])
        lo = np.minimum(here - at(-1), at(2) - after)
        hi = np.maximum(here - at(-1), at(2) - after)
        return (np.abs(step) > scale) & (np.maximum(lo - step, step - hi) > scale)


def _step_outside(q, i, j, dr, dc, step, scale) -> np.ndarray:
    """Whether each step from (i, j) lies outside [min, max] of the steps before and after it by > scale
    (not judged where either neighbour has no depth: a surface's last step before a border may be its
    steepest)."""
    rows, cols = q.shape

    def at(m):
        r, c = i + m * dr, j + m * dc
        ok = (r >= 0) & (r < rows) & (c >= 0) & (c < cols)
        v = np.full(len(i), np.nan, dtype=q.dtype)
        v[ok] = q[r[ok], c[ok]]
        return v

    here = at(0)
    with np.errstate(invalid="ignore"):
        before = here - at(-1)
        beyond = at(2) - at(1)
        lo, hi = np.minimum(before, beyond), np.maximum(before, beyond)
        return np.maximum(lo - step, step - hi) > scale

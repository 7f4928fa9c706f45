"""Reconvolution: the depth near edges chosen so that, blurred as the map was blurred, it gives the map back.

Why. depth_edges decides each vertex near a blurred step from one profile through it. Where structures lie
closer together than the blur (a chair's front and back legs, a post beside a wall's crease, the corner where a
rail meets a post) no profile sees clean surfaces on both sides, and its decision can be wrong: a strip of wall
between two posts is snapped onto a post, a thin post comes out too near. The blur itself says which answer is
right: the true depth, blurred by the measured Gaussian (normalised over the pixels that have depth, as the
blur was), gives back the observed map exactly, and the wrong answers do not.

How. Over the band of vertices depth_edges examined (the rest is surface and stays), minimise
    |A q - q_observed|^2 + mu * TV(q) + lam * |q - z|^2
where A is the normalised blur, TV a total variation that keeps steps sharp and penalises the dithering a
discrete deconvolution falls into, weighted down across the photo's colour edges (where steps are) and on
surfaces beyond the median depth (where the same disparity error is a larger depth error), solved by conjugate
gradients with TV reweighted each round (iteratively reweighted least squares). z pulls each vertex onto a
surface: the nearest of the surfaces around it (the plateau lines depth_edges reads in four directions on
both sides). A vertex nearer than every surface around it is a thin structure (a leg, a pole) and keeps its
own reconvolved value. lam starts small and grows each round, so the band settles from a deconvolution onto
surfaces (annealing). Surfaces farther than anything the map shows nearby (a floor's plane extended beyond the
horizon) are not offered. Last, a vertex only takes the new value where the blurred squared residual around it
is lower than with depth_edges' own answer, so the refinement never makes a neighbourhood explain the map
worse.
"""

from __future__ import annotations

import numpy as np

TV_WEIGHT = 0.2  # mu, for disparity in units of the median disparity
TV_EPS = 0.005  # differences below this (same units) count as equal: TV is quadratic below it
COLOUR_SCALE = 10.0  # RGB distance (0..255) over which the TV weight across a colour edge falls by e^-0.5
PULL_START = 1e-3  # lam in the first round
PULL_GROWTH = 1.2  # lam's growth per round
ROUNDS = 50
CG_STEPS = 40  # conjugate-gradient steps per round
FRONT_MARGIN = 0.01  # a vertex this share nearer than every surface around it is a thin structure
FAR_MARGIN = 0.01  # surfaces this share farther than the farthest observed within FAR_REACH are not offered
FAR_REACH = 16
# The most work (pixels of the box the band's blur reaches, times the blur kernel's taps) refined: a 512-wide
# grid blurred by up to 4 steps, a few seconds. Beyond it (grids of 1024 and more over blurred depth) the band
# keeps depth_edges' answer.
MAX_WORK = 512 * 384 * 35

# Neighbour offsets (row, column) that TV couples: each pair once.
_PAIRS = ((0, 1), (1, 0), (1, 1), (1, -1))


def refine(q_obs: np.ndarray, q_snapped: np.ndarray, band: np.ndarray, surfaces: np.ndarray, blur: float,
           q_scale: float, rgb: np.ndarray | None = None) -> np.ndarray:
    """The snapped disparity with the vertices of `band` (bool, rows x cols) reconsidered.

    q_obs: the observed disparity (NaN: no depth); q_snapped: depth_edges' answer; surfaces: (n, k) disparity of
    the surfaces around each band vertex (row-major order of band), NaN where a reading found none; blur: the
    map's Gaussian sigma in grid steps; rgb: the photo on the grid (float32), or None.
    """
    import cv2

    valid = np.isfinite(q_obs)
    ii, jj = np.nonzero(band)
    if len(ii) == 0:
        return q_snapped
    # Work on the box the band's blur can reach, in median-disparity units; the budget is checked before the
    # blur is fitted (which reads the whole map) and after (which may widen it). Both readings of the blur
    # come out low, each for its own reason (see _fitted_blur): the larger is nearer.
    if _box(ii, jj, q_obs.shape, blur)[1] > MAX_WORK:
        return q_snapped
    blur = max(blur, _fitted_blur(q_obs, q_snapped, blur))
    (r0, r1, c0, c1), work = _box(ii, jj, q_obs.shape, blur)
    if work > MAX_WORK:
        return q_snapped
    surfaces = surfaces / q_scale
    window = np.ones((2 * FAR_REACH + 1,) * 2, np.uint8)
    farthest = cv2.erode(np.where(valid, q_obs / q_scale, np.inf).astype(np.float32), window)
    with np.errstate(invalid="ignore"):
        surfaces[surfaces < farthest[ii, jj, None] * (1 - FAR_MARGIN)] = np.nan

    box = (slice(r0, r1), slice(c0, c1))
    ii, jj = ii - r0, jj - c0
    flat = ii * (c1 - c0) + jj

    def gauss(a):
        return cv2.GaussianBlur(a, (0, 0), blur, borderType=cv2.BORDER_REFLECT)

    v = valid.astype(np.float32)
    weight = np.maximum(gauss(v), 1e-6)  # the blur's normalisation, from the whole map
    observed = np.where(valid, q_obs / q_scale, 0.0).astype(np.float32)
    snapped = np.where(valid, q_snapped / q_scale, 0.0).astype(np.float32)
    fixed = snapped.copy()
    fixed[band] = 0.0
    residual_fixed = (gauss(fixed) / weight - observed)[box] * v[box]  # A q_fixed - q_obs
    v, weight, observed, snapped, fixed = v[box], weight[box], observed[box], snapped[box], fixed[box]
    back = v / weight  # A^T r = v * G(r * v / weight)

    def normal(y):
        """A^T A y for y zero outside the band."""
        return v * gauss(gauss(y) / weight * back)

    # The photo's noise would scatter the TV weights: its 3 x 3 median keeps the edges and drops the noise.
    tv = _TotalVariation(v, observed, None if rgb is None else cv2.medianBlur(rgb[box], 3))
    data_rhs = -(v * gauss(residual_fixed * back)).ravel()[flat]
    x = snapped.ravel()[flat].copy()
    z = x.copy()
    pull = PULL_START
    image = np.zeros_like(fixed)
    for _ in range(ROUNDS):
        current = fixed.copy()
        current.ravel()[flat] = x
        tv.reweight(current)
        rhs = data_rhs - TV_WEIGHT * tv.apply(fixed).ravel()[flat] + pull * z

        def apply(p):
            image.ravel()[flat] = p
            return (normal(image) + TV_WEIGHT * tv.apply(image)).ravel()[flat] + pull * p

        x = _conjugate_gradients(apply, rhs, x, CG_STEPS)
        z = _nearest_surface(x, surfaces)
        pull *= PULL_GROWTH

    # Keep the new values where they explain the map better around each vertex than depth_edges' answer.
    def local_misfit(values):
        y = fixed.copy()
        y.ravel()[flat] = values
        r = (gauss(y) / weight - observed) * v
        return gauss(r * r).ravel()[flat]

    old = snapped.ravel()[flat]
    take = local_misfit(z) < local_misfit(old)
    out = q_snapped.copy()
    out[ii[take] + r0, jj[take] + c0] = z[take] * q_scale
    return out


def _box(ii, jj, shape, blur):
    """The box around vertices (ii, jj) that their blur reaches twice (A, then its transpose), as (first row,
    end row, first column, end column), and its work: pixels times the kernel's taps (OpenCV's Gaussian reaches
    4 sigma)."""
    kernel = int(np.ceil(4 * blur))
    pad = 2 * (kernel + 1)
    r0, r1 = max(ii.min() - pad, 0), min(ii.max() + pad + 1, shape[0])
    c0, c1 = max(jj.min() - pad, 0), min(jj.max() + pad + 1, shape[1])
    return (r0, r1, c0, c1), (r1 - r0) * (c1 - c0) * (2 * kernel + 1)


def _fitted_blur(q_obs, q_snapped, blur):
    """The Gaussian that best turns the snapped disparity into the observed one, near depth_edges' estimate
    (the minimum of a parabola through the best factor and its neighbours). That estimate reads single steps,
    which resampling and neighbouring structures sharpen (the Middlebury motorcycle's depth blurred by 1.38
    grid steps reads as 1.05; this fit, 1.3); this one reads low where the snapped depth keeps some of the
    blur itself (sigma 4 in the interior: 3.3, the steps' 3.5)."""
    import cv2

    valid = np.isfinite(q_obs)
    v = valid.astype(np.float32)
    snapped = np.where(valid, q_snapped, 0.0).astype(np.float32)
    observed = np.where(valid, q_obs, 0.0).astype(np.float32)
    factors = np.arange(0.6, 1.81, 0.1)
    misfit = []
    for f in factors:
        def gauss(a):
            return cv2.GaussianBlur(a, (0, 0), blur * f, borderType=cv2.BORDER_REFLECT)

        r = (gauss(snapped) / np.maximum(gauss(v), 1e-6) - observed) * v
        misfit.append(float((r * r).sum()))
    k = int(np.clip(np.argmin(misfit), 1, len(factors) - 2))
    m0, m1, m2 = misfit[k - 1 : k + 2]
    curvature = m0 - 2 * m1 + m2
    shift = 0.5 * (m0 - m2) / curvature if curvature > 0 else 0.0
    return blur * float(factors[k] + 0.1 * np.clip(shift, -1, 1))


def _nearest_surface(x, surfaces):
    """Each vertex's nearest offered surface, or its own value where it lies in front of all of them (or none
    is offered)."""
    d = np.abs(surfaces - x[:, None])
    d[~np.isfinite(d)] = np.inf
    pick = np.argmin(d, axis=1)
    z = surfaces[np.arange(len(x)), pick]
    with np.errstate(invalid="ignore"):
        nearest = np.max(np.where(np.isfinite(surfaces), surfaces, -np.inf), axis=1)
    free = ~np.isfinite(z) | (x > nearest * (1 + FRONT_MARGIN))
    return np.where(free, x, z).astype(np.float32)


class _TotalVariation:
    """TV over the box's neighbour pairs (p, p + d), d in _PAIRS, as reweighted least squares. Each pair's
    weight: 1 between equal colours (or without a photo), falling across colour edges, lowered beyond the
    median depth, 0 where either side has no depth. Only the band's values vary (the rest is zero in what
    `apply` is given, or fixed), so pairs away from the band add nothing the band sees."""

    def __init__(self, v, observed, rgb):
        self.slices = [_pair_slices(v.shape, dr, dc) for dr, dc in _PAIRS]
        self.base = []
        for a, b in self.slices:
            w = np.minimum(1.0, observed[a]) ** 2 * v[a] * v[b]
            if rgb is not None:
                w = w * np.exp(-((rgb[a] - rgb[b]) ** 2).sum(axis=-1) / (2 * COLOUR_SCALE**2))
            self.base.append(w.astype(np.float32))
        self.weights = self.base

    def reweight(self, values):
        """The IRLS weights at these values (box image): weight * eps / max(|difference|, eps)."""
        self.weights = [w * TV_EPS / np.maximum(np.abs(values[b] - values[a]), TV_EPS)
                        for w, (a, b) in zip(self.base, self.slices)]

    def apply(self, values):
        """D^T W D of a box image (half the gradient of TV's quadratic form)."""
        out = np.zeros_like(values)
        for w, (a, b) in zip(self.weights, self.slices):
            t = values[b] - values[a]
            t *= w
            out[a] -= t
            out[b] += t
        return out


def _pair_slices(shape, dr, dc):
    """Slices (a, b) of an array of `shape` such that b's element is a's neighbour at (dr, dc)."""
    rows, cols = shape
    a = (slice(0, rows - dr), slice(max(0, -dc), cols - max(0, dc)))
    b = (slice(dr, rows), slice(max(0, dc), cols + min(0, dc)))
    return a, b


def _conjugate_gradients(apply, rhs, x, steps):
    r = rhs - apply(x)
    p = r.copy()
    rs = float(r @ r)
    for _ in range(steps):
        if rs <= 1e-20:
            break
        ap = apply(p)
        alpha = rs / float(p @ ap)
        x = x + alpha * p
        r = r - alpha * ap
        rs_new = float(r @ r)
        p = r + (rs_new / rs) * p
        rs = rs_new
    return x

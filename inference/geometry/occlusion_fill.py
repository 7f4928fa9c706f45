"""Occlusion fill: the background surface continued under the foreground's silhouette, as a second layer.

A mesh cut along a depth discontinuity leaves a gap one grid cell wide between the foreground's last vertex
and the background's first: seen through the photo's camera it is a seam of void along every silhouette,
and a small camera move opens it further. Layered-depth "3D photo" tools fill it with background that
continues behind the foreground; this module does the same on the vertex grid:

- Depth: from every background vertex next to a cut (one the mesh keeps), the background is extended across
  the cut and under the foreground for `band` grid steps, along the direction of the cut edge, linearly in
  disparity (1/z): a plane's disparity is affine in the image, so planes continue exactly, and curved
  surfaces continue along their tangent. Where the depth was blurred, the line is anchored where the blur no
  longer reaches, and where depth_edges moved a ramp vertex onto the foreground, the background it found
  behind that vertex is used as is. On blurred depth a line is only drawn from a background that runs uncut
  past the blur and over the whole baseline: a sliver of background narrower than that (a floor between an
  object and the horizon, a gap between two legs) has no trustworthy slope, and guessing one put most of the
  fill's error at such places. The extension stops where it would come out in front of the foreground
  (it would then be visible, not hidden by it) or at a point with no depth. A point reached from several
  cut edges takes the mean of the extensions from the nearest ones; where those continue two different
  surfaces (a sliver between two backgrounds), each gets a layer of its own.
- Skirt: where no background can be continued under a cut's first step (or the one depth_edges found there
  belongs to another cut, and would not join this one's background), the seam is closed from the
  other side: the foreground continues one step over the background, at its own disparity and textured from
  its own pixel. It lies within a grid step of the foreground's true edge, so it adds no wrong geometry.
- Colour: the hidden layer needs the background's colour, which the photo does not have there. Each fill
  vertex is textured from the photo's background by reflection about the silhouette: k steps under the
  foreground it takes the UV of the background point k + 1 steps away on the other side of the cut (the last
  one before another cut if the background is narrower). So no second texture is needed, every output format
  carries it, and no fringe of foreground colour lands on the background layer to show as a halo when the
  camera moves.

The result is a list of layers of fill points (grid points that get a second vertex: background, or the
skirt's foreground), their disparity, and the grid point whose photo pixel textures each; grid_mesh meshes
them the same way as the front surface, into the cells whose corners are fill points or the front's own
vertices; any cell still open is closed last (grid_mesh._closures: at a junction of three surfaces within the
blur, or beside a point the front dropped, on the farthest surface the front keeps there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .depth_edges import SHARP_SIGMA

# Default band: this share of the photo's long side (a grid step at the default resolution, more above it).
DEFAULT_OCCLUSION_FILL_SHARE = 0.0025
# The extension must stay this much (relative disparity) behind the foreground it runs under.
_BEHIND_MARGIN = 0.01
# Extensions within this relative disparity of each other continue the same surface.
LAYER_TOLERANCE = 0.02

# Edge directions on the grid as (row step, column step), as depth_edges.DIRECTIONS.
_STEPS = ((0, 1), (1, 0), (1, 1), (1, -1))


@dataclass
class FillLayer:
    points: np.ndarray  # (M,) int64 grid point indices (row * columns + column), ascending
    disparity: np.ndarray  # (M,) float64, 1 / depth of the background layer at each point
    texture_points: np.ndarray  # (M,) int64 grid point whose photo pixel textures each fill vertex


def default_occlusion_fill_px(photo_size: tuple[int, int]) -> float:
    """The default fill band in photo pixels: DEFAULT_OCCLUSION_FILL_SHARE of the photo's long side."""
    return DEFAULT_OCCLUSION_FILL_SHARE * max(photo_size)


def fill_layers(disparity: np.ndarray, broken: list[np.ndarray], band: int, blur: float = 0.0,
                behind: np.ndarray | None = None, meshed: np.ndarray | None = None) -> list[FillLayer]:
    """The background layers under every silhouette, `band` grid steps deep.

    `disparity` is 1 / depth on the grid (NaN = no surface); `broken[k]` marks the grid edges from each point
    to its neighbour one step of _STEPS[k] away that cross a discontinuity; `blur` is the depth's measured
    blur (grid steps); `behind` the background disparity depth_edges found behind moved ramp vertices (NaN
    elsewhere); `meshed` (bool grid) the points the front mesh keeps: only those continue under a cut.
    """
    rows, cols = disparity.shape
    q = disparity.ravel()
    hidden = None if behind is None else behind.ravel()
    anchor = int(np.ceil(2 * blur))
    baseline = max(2, int(np.ceil(2 * blur)))
    found_points, found_values, found_steps, found_texture = [], [], [], []
    skirt_points, skirt_values, skirt_texture = [], [], []
    for k, (dr, dc) in enumerate(_STEPS):
        cut = broken[k]
        for sign in (1, -1):
            # Each cut edge from a foreground point p to its background neighbour b1 = p + sign * step.
            si, sj = np.nonzero(cut)  # edge from (si, sj) to (si + dr, sj + dc)
            if sign == 1:
                pi, pj, bi, bj = si, sj, si + dr, sj + dc
            else:
                pi, pj, bi, bj = si + dr, sj + dc, si, sj
            p, b1 = pi * cols + pj, bi * cols + bj
            front = q[p] > q[b1]
            if meshed is not None:  # only a background the mesh has continues
                front &= meshed.ravel()[b1]
            p, b1, pi, pj, bi, bj = p[front], b1[front], pi[front], pj[front], bi[front], bj[front]
            # The background's line along the step: anchored `anchor` steps beyond b1, where blur no longer
            # reaches, and sloped over `baseline` steps beyond that, as far as the background runs uncut.
            ai, aj, reached = _walk(broken, k, bi, bj, sign, anchor, q, rows, cols)
            ci, cj, run = _walk(broken, k, ai, aj, sign, baseline, q, rows, cols)
            a_val, c_val = q[ai * cols + aj], q[ci * cols + cj]
            measured = (reached == anchor) & (run == baseline) | (blur < SHARP_SIGMA)
            with np.errstate(invalid="ignore", divide="ignore"):
                slope = np.where(run > 0, (a_val - c_val) / np.maximum(run, 1), 0.0)
            step_flat = sign * (dr * cols + dc)
            # Walk under the foreground: t = p - j * step, j = 0 .. band - 1.
            ti, tj = pi.copy(), pj.copy()
            # Texture: mirror points beyond b1, m = b1 + j * step, while the background continues.
            mi, mj = bi.copy(), bj.copy()
            alive = np.ones(len(p), bool)
            for j in range(band):
                if j > 0:
                    # Step t further under the foreground (across cuts too: whatever is in front hides it).
                    ni, nj = ti - sign * dr, tj - sign * dc
                    alive &= (ni >= 0) & (ni < rows) & (nj >= 0) & (nj < cols)
                    ti, tj = np.where(alive, ni, ti), np.where(alive, nj, tj)
                    # Step the mirror point further into the background while its edge is not cut.
                    oi, oj = mi + sign * dr, mj + sign * dc
                    mok = (oi >= 0) & (oi < rows) & (oj >= 0) & (oj < cols)
                    mok[mok] &= ~_edge_broken(broken, k, mi[mok], mj[mok], sign, rows, cols)
                    mok[mok] &= np.isfinite(q[oi[mok] * cols + oj[mok]])
                    mi, mj = np.where(mok, oi, mi), np.where(mok, oj, mj)
                t = ti * cols + tj
                value = np.where(measured, a_val + (j + 1 + reached) * slope, np.nan)
                other = np.zeros(len(p), bool)
                if hidden is not None:
                    # The background the snapping found behind this vertex, if any. A vertex between two cuts
                    # may have found the other cut's: it still lies behind, but does not join this one's.
                    known = hidden[t]
                    expected = np.where(measured, value, q[b1])
                    with np.errstate(invalid="ignore"):
                        other = np.abs(known - expected) > LAYER_TOLERANCE * expected
                    value = np.where(np.isfinite(known), known, value)
                with np.errstate(invalid="ignore"):
                    alive &= np.isfinite(q[t]) & (value > 0.1 * q[b1]) & (q[t] > value * (1 + _BEHIND_MARGIN))
                if j == 0:  # no background to continue: the foreground's skirt closes the seam instead
                    skirted = ~alive | other
                    if meshed is not None:  # only a foreground the mesh has continues
                        skirted &= meshed.ravel()[p]
                    skirt_points.append(b1[skirted])
                    skirt_values.append(q[p[skirted]])
                    skirt_texture.append(p[skirted])
                if not alive.any():
                    break
                found_points.append(t[alive])
                found_values.append(value[alive])
                found_steps.append(np.full(np.count_nonzero(alive), j))
                texture = mi * cols + mj
                found_texture.append(texture[alive])
    skirt = _skirt(skirt_points, skirt_values, skirt_texture)
    if not found_points:
        return skirt
    points = np.concatenate(found_points)
    values = np.concatenate(found_values)
    steps = np.concatenate(found_steps)
    texture = np.concatenate(found_texture)
    # Per point, the extensions from the nearest cuts. They may continue different surfaces (a point between
    # two cuts, a sliver between two backgrounds): the farthest and, where it differs, the nearest each get a
    # layer of their own, from the mean of the extensions that agree with it.
    order = np.lexsort((values, steps, points))
    points, values, steps, texture = points[order], values[order], steps[order], texture[order]
    first = np.ones(len(points), bool)
    first[1:] = points[1:] != points[:-1]
    group = np.cumsum(first) - 1
    nearest = steps == steps[first][group]
    points, values, texture, group = points[nearest], values[nearest], texture[nearest], group[nearest]
    n = group[-1] + 1
    far = np.full(n, np.inf)
    np.minimum.at(far, group, values)
    near = np.full(n, -np.inf)
    np.maximum.at(near, group, values)
    layers = []
    for anchor, is_far in ((far, True), (near, False)):
        agree = np.abs(values - anchor[group]) <= LAYER_TOLERANCE * anchor[group]
        if not is_far:
            agree &= (near > far * (1 + LAYER_TOLERANCE))[group]
        if not agree.any():
            continue
        g = group[agree]
        sums = np.bincount(g, weights=values[agree], minlength=n)
        counts = np.bincount(g, minlength=n)
        has = counts > 0
        first_of = np.full(n, -1)
        first_of[g[::-1]] = np.flatnonzero(agree)[::-1]  # first candidate of each group that agrees
        layers.append(FillLayer(points[first_of[has]], sums[has] / counts[has], texture[first_of[has]]))
    return layers + skirt


def _skirt(points, values, texture) -> list[FillLayer]:
    """The layer of foreground continued one step over the background where no background could be
    continued under it: at each point the nearest foreground reaching it."""
    if not points or not sum(len(p) for p in points):
        return []
    points, values, texture = np.concatenate(points), np.concatenate(values), np.concatenate(texture)
    order = np.lexsort((-values, points))  # by point, the nearest first
    _, first = np.unique(points[order], return_index=True)
    keep = order[first]
    return [FillLayer(points[keep], values[keep], texture[keep])]


def _walk(broken, k, i, j, sign, steps, q, rows, cols):
    """From (i, j), up to `steps` grid steps of sign * _STEPS[k] while the edges are not cut and the points
    have depth: the point reached and the number of steps taken."""
    dr, dc = _STEPS[k]
    i, j = i.copy(), j.copy()
    taken = np.zeros(len(i), np.int64)
    alive = np.ones(len(i), bool)
    for _ in range(steps):
        ni, nj = i + sign * dr, j + sign * dc
        ok = alive & (ni >= 0) & (ni < rows) & (nj >= 0) & (nj < cols)
        ok[ok] &= ~_edge_broken(broken, k, i[ok], j[ok], sign, rows, cols)
        ok[ok] &= np.isfinite(q[ni[ok] * cols + nj[ok]])
        i, j = np.where(ok, ni, i), np.where(ok, nj, j)
        taken += ok
        alive = ok
    return i, j, taken


def _edge_broken(broken, k, i, j, sign, rows, cols) -> np.ndarray:
    """Whether the edge from (i, j) one step of sign * _STEPS[k] onwards is cut (False off the grid)."""
    dr, dc = _STEPS[k]
    if sign == 1:
        si, sj = i, j
    else:
        si, sj = i - dr, j - dc
    ok = (si >= 0) & (si < rows) & (sj >= 0) & (sj < cols)
    out = np.zeros(len(i), bool)
    out[ok] = broken[k][si[ok], sj[ok]]
    return out

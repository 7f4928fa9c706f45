"""Bake photos onto a mesh's UV atlas: each texel takes its colour from the photos that see it best.

1. The atlas. The mesh is rasterised in UV space (rasterise.py with u -> x = u W, v -> y = (1 - v) H, so
   texel (i, j)'s centre is at UV ((i + 0.5)/W, 1 - (j + 0.5)/H), DESIGN.md's convention): every texel
   inside a chart gets its triangle and barycentrics, hence a surface point and a normal.
2. Visibility, per photo. A texel is seen when its face faces the camera (more than grazing: MIN_COSINE),
   it projects into the photo inside
   the subject mask (at least MASK_INSET px from its edge: edge pixels mix in the background), and it is
   not occluded: its depth is at most the view's depth buffer there plus a tolerance that grows with the
   slant of the surface (a pixel of a slanted surface spans a range of depths).
3. Weights. weight = cos^sharpness (cos between the smooth normal and the direction to the camera), times
   a ramp near the mask's edge (image space) and near the edge of what that view sees (texture space).
   The most frontal view dominates; where two see a texel about equally, their colours blend, and
   weights fade to zero at visibility edges, so seams between photos are feathered, not cut.
4. Exposure. Photos of one object rarely share exposure: a gain per photo and channel is fitted (least
   squares on the logarithm, the first photo fixed) to the median colour ratio on texels two photos both
   see frontally, and applied before blending (on sRGB values: an approximation, good for gains near 1).
5. Unseen texels (underside, occluded folds) are filled by diffusion over the surface: seen colours are
   splatted onto the mesh's vertices (welded by position, so colour crosses UV seams), spread to unseen
   vertices ring by ring and smoothed, interpolated back into the unseen texels, then relaxed a few times
   against their seen neighbours in the atlas. No black or grey holes. A generator with colours of its own
   (TripoSR's colour field, per vertex) gives the unseen parts their detail: then what is diffused is the
   photos' difference from those colours (a seamless-cloning fill), so the generator's colours show where no
   photo reaches and meet the photo's without a seam.
6. Padding. Charts are grown by `padding` texels (each the colour of the nearest chart texel) so bilinear
   lookups and mip-maps never reach background; the rest of the atlas gets the mean colour.
Vertex colours (N, 4) float32 sRGB are the final texture sampled bilinearly at each vertex's UV.
Pure numpy + OpenCV, vectorised over texels; the only loops are over photos and fixed iteration counts.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..errors import InputError
from .camera_fit import subject_mask
from .rasterise import coverage_count, fragments, rasterise, render_attribute
from ..geometry.view import View

MASK_INSET = 2.0  # photo pixels a sample keeps from the subject mask's edge
# Surfaces seen more obliquely than this (cosine) are not sampled: a photo pixel there spreads over a long
# strip of surface and the slightest misregistration moves the colour far; neighbours fill them better.
MIN_COSINE = 0.1
DEPTH_BUFFER_MAX = 2048  # long side of the occlusion depth buffer (larger photos use a scaled copy)
MIN_OVERLAP = 64  # texels two photos must share to compare their exposure
FILL_RELAX_ITERATIONS = 6  # 5 x 5 Jacobi sweeps: reach about 12 texels from the seen texels
SURFACE_SMOOTH_ITERATIONS = 30


@dataclass
class PhotoView:
    """A photo and the camera that took it: view (View), photo (H, W, 3|4) uint8 sRGB, mask (H, W) bool or
    alpha (camera_fit.subject_mask), None for the whole photo."""

    view: View
    photo: np.ndarray
    mask: np.ndarray | None = None


@dataclass
class TextureBake:
    """What bake returns. texture (H, W, 3) uint8 sRGB, row 0 at the top (v = 1); vertex_colors (N, 4)
    float32 sRGB in [0, 1], alpha 1; chart (H, W) bool: texels inside a chart; seen (H, W) bool: texels
    coloured from a photo (the rest of the chart was diffused); source (H, W) int16: the photo with the
    largest weight, -1 where none; gains (V, 3) float32 per photo and channel; report."""

    texture: np.ndarray
    vertex_colors: np.ndarray
    chart: np.ndarray
    seen: np.ndarray
    source: np.ndarray
    gains: np.ndarray
    report: dict = field(default_factory=dict)


# --- small helpers ------------------------------------------------------------------------------------------


def sample_bilinear(image: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """image (H, W[, C]) at image coordinates xy (K, 2) (pixel (u, v) centred at (u + 0.5, v + 0.5)),
    bilinear, edges clamped: (K, C) float32 in the image's units."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    k = len(xy)
    cols = 4096
    rows = max(1, -(-k // cols))
    maps = np.zeros((rows * cols, 2), np.float32)
    maps[:k] = xy - 0.5
    maps = maps.reshape(rows, cols, 2)
    src = image.astype(np.float32) if image.dtype != np.uint8 else image
    channels = [cv2.remap(src[..., c], maps[..., 0], maps[..., 1], cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE) for c in range(image.shape[2])]
    return np.stack(channels, axis=-1).reshape(rows * cols, -1)[:k].astype(np.float32)


def weld(vertices: np.ndarray) -> np.ndarray:
    """An id per vertex, equal for vertices at the same position (UV seams split vertices; colour must not
    stop there): (N,) int64."""
    v = np.asarray(vertices, np.float64)
    scale = max(float(np.ptp(v, axis=0).max()), 1e-12)
    _, ids = np.unique(np.round((v - v.min(axis=0)) / scale * 1e6).astype(np.int64), axis=0,
                       return_inverse=True)
    return ids.ravel()


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit face normals (F, 3) and area-weighted unit vertex normals (N, 3), shared across welded vertices."""
    tri = np.asarray(vertices, np.float64)[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    unit = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30)
    ids = weld(vertices)
    acc = np.zeros((ids.max() + 1, 3))
    for k in range(3):
        np.add.at(acc, ids[faces[:, k]], n)
    acc /= np.maximum(np.linalg.norm(acc, axis=1, keepdims=True), 1e-30)
    return unit, acc[ids]


def _relax(colour: np.ndarray, known: np.ndarray, region: np.ndarray, iterations: int) -> np.ndarray:
    """Replace texels of `region` & ~known by the mean of the 5 x 5 texels around them that are in
    `region`, `iterations` times (Jacobi sweeps of a smoothing problem with the known texels fixed).
    `colour` must be 0 outside `region`."""
    free = region & ~known
    if not free.any() or iterations <= 0:
        return colour
    weight = np.maximum(cv2.blur(region.astype(np.float32), (5, 5)), 1e-6)[..., None]
    out = colour.copy()
    for _ in range(iterations):
        np.copyto(out, cv2.blur(out, (5, 5)) / weight, where=free[..., None])
    return out


def _pad(colour: np.ndarray, filled: np.ndarray, rings: int) -> np.ndarray:
    """Texels within `rings` texels of the filled ones take the colour of the nearest filled texel (one
    distance transform with labels: OpenCV numbers the source texels in raster order); the rest take the
    mean colour of the filled texels (the object's average: small mip levels show the object)."""
    if not filled.any():
        return np.full_like(colour, 0.5)
    mean = colour[filled].mean(axis=0)
    distance, label = cv2.distanceTransformWithLabels((~filled).astype(np.uint8), cv2.DIST_L2, 5,
                                                      labelType=cv2.DIST_LABEL_PIXEL)
    sources = np.flatnonzero(filled.ravel())
    nearest = sources[np.clip(label.ravel() - 1, 0, len(sources) - 1)]
    out = colour.reshape(-1, colour.shape[-1])[nearest].reshape(colour.shape)
    out[distance > rings] = mean
    return out


def _surface_fill(vertices, faces, face_of_texel, bary, colour, seen, empty: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per welded vertex colour (M, 3) and the welded id of each vertex (N,). Seen texels are splatted onto
    their face's corners by barycentric weight; vertices no photo sees take the mean of their seen
    neighbours along mesh edges, ring by ring outwards, and are then smoothed (Jacobi, the seen ones fixed).
    `empty`: every vertex's value when nothing is seen."""
    ids = weld(vertices)
    m = ids.max() + 1
    corner = ids[faces[face_of_texel[seen]]]  # (S, 3)
    w = bary[seen]
    acc = np.zeros((m, 3))
    wsum = np.bincount(corner.ravel(), weights=w.ravel(), minlength=m)
    for c in range(3):
        acc[:, c] = np.bincount(corner.ravel(), weights=(w * colour[seen, c][:, None]).ravel(), minlength=m)
    known = wsum > 1e-3
    vcol = np.where(known[:, None], acc / np.maximum(wsum, 1e-12)[:, None], 0.0)
    if not known.any():
        return np.full((m, 3), empty), ids
    wf = ids[faces]
    edges = np.concatenate([wf[:, [0, 1]], wf[:, [1, 2]], wf[:, [2, 0]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    edges = edges[edges[:, 0] != edges[:, 1]]
    a, b = np.concatenate([edges[:, 0], edges[:, 1]]), np.concatenate([edges[:, 1], edges[:, 0]])
    assigned = known.copy()
    while not assigned.all():  # one ring per pass: each unassigned vertex next to assigned ones takes their mean
        src = assigned[b]
        count = np.bincount(a[src], minlength=m)
        ring = (~assigned) & (count > 0)
        if not ring.any():
            vcol[~assigned] = vcol[assigned].mean(axis=0)  # parts no photo reaches at all
            break
        for c in range(3):
            total = np.bincount(a[src], weights=vcol[b[src], c], minlength=m)
            vcol[ring, c] = total[ring] / count[ring]
        assigned |= ring
    degree = np.bincount(a, minlength=m)
    free = ~known & (degree > 0)
    for _ in range(SURFACE_SMOOTH_ITERATIONS):
        for c in range(3):
            mean = np.bincount(a, weights=vcol[b, c], minlength=m) / np.maximum(degree, 1)
            vcol[free, c] = mean[free]
    return vcol, ids


def _solve_gains(pairs: list[tuple[int, int, np.ndarray, int]], n_views: int) -> np.ndarray:
    """Per-view gains (V, 3): least squares on log g_a - log g_b = log(c_b / c_a) over the pairs (a, b,
    log ratio, texel count), each weighted by sqrt(count); photo 0 fixed at 1, gains kept in [1/4, 4]."""
    if not pairs:
        return np.ones((n_views, 3))
    rows = len(pairs) + n_views
    a = np.zeros((rows, n_views))
    rhs = np.zeros((rows, 3))
    for r, (i, j, log_ratio, count) in enumerate(pairs):
        weight = math.sqrt(count)
        a[r, i], a[r, j], rhs[r] = weight, -weight, weight * log_ratio
    a[len(pairs), 0] = 1e3  # the first photo keeps its exposure
    for v in range(1, n_views):
        a[len(pairs) + v, v] = 1e-3  # a photo that overlaps no other keeps its own
    log_gains = np.linalg.lstsq(a, rhs, rcond=None)[0]
    return np.exp(np.clip(log_gains, math.log(0.25), math.log(4.0)))


def _exposure_gains(samples, k: int) -> np.ndarray:
    """Per-photo, per-channel gains (V, 3): for each pair of photos, the median log ratio of their colours
    on texels both see frontally (cosine > 0.3, channels brighter than 0.04: ratios of near-black values
    are noise), then a least-squares fit over all pairs with the first photo fixed (_solve_gains)."""
    n = len(samples)
    if n < 2:
        return np.ones((n, 3))
    slot = np.full((n, k), -1, np.int32)  # texel -> row in that photo's samples
    for v, (idx, *_rest) in enumerate(samples):
        slot[v, idx] = np.arange(len(idx))
    pairs = []
    for i in range(n):
        for j in range(i + 1, n):
            both = np.flatnonzero((slot[i] >= 0) & (slot[j] >= 0))
            si, sj = slot[i, both], slot[j, both]
            good = (samples[i][3][si] > 0.3) & (samples[j][3][sj] > 0.3)
            ci, cj = samples[i][1][si[good]], samples[j][1][sj[good]]
            bright = (ci > 0.04) & (cj > 0.04)
            if bright.sum(axis=0).min() >= MIN_OVERLAP:
                log_ratio = np.array([np.median(np.log(cj[bright[:, c], c] / ci[bright[:, c], c]))
                                      for c in range(3)])
                pairs.append((i, j, log_ratio, int(good.sum())))
    return _solve_gains(pairs, n)


def _blend(samples, gains: np.ndarray, k: int):
    """Weighted mean of every photo's (gain-corrected) colour per texel: colours (K, 3), seen (K,) bool,
    and the photo with the largest weight per texel (K,) int16, -1 where none."""
    total = np.zeros((k, 3))
    weight_sum = np.zeros(k)
    best = np.zeros(k)
    source = np.full(k, -1, np.int16)
    for v, (idx, colour, weight, _) in enumerate(samples):
        total[idx] += weight[:, None] * np.clip(colour * gains[v], 0.0, 1.0)
        weight_sum[idx] += weight
        better = weight > best[idx]
        best[idx[better]] = weight[better]
        source[idx[better]] = v
    seen = weight_sum > 0
    return np.where(seen[:, None], total / np.maximum(weight_sum, 1e-30)[:, None], 0.0), seen, source


# --- the bake ---------------------------------------------------------------------------------------------


def _check_colours(colours, n: int) -> np.ndarray:
    colours = np.asarray(colours, np.float64)
    if colours.shape != (n, 3) or not np.isfinite(colours).all():
        raise InputError(f"The generator's colours must be finite, one RGB triple per vertex ({n} x 3), not an "
                         f"array of shape {colours.shape}.")
    return np.clip(colours, 0.0, 1.0)


def _check(vertices, faces, uvs, views, size):
    vertices = np.asarray(vertices, np.float64)
    faces = np.asarray(faces)
    uvs = np.asarray(uvs, np.float64)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise InputError(f"The mesh needs vertices as an N x 3 array, not an array of shape {vertices.shape}.")
    if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0 or faces.min() < 0 or faces.max() >= len(vertices):
        raise InputError("The mesh's triangles must be an F x 3 array of vertex indices within the mesh.")
    if uvs.shape != (len(vertices), 2) or not np.isfinite(uvs).all():
        raise InputError(f"The mesh needs one finite UV per vertex (N x 2), not an array of shape {uvs.shape}.")
    width, height = (size, size) if np.isscalar(size) else size
    if not (4 <= width <= 16384 and 4 <= height <= 16384):
        raise InputError(f"The texture size must be between 4 and 16384 texels, not {width} x {height}.")
    checked = []
    for k, item in enumerate(views):
        pv = item if isinstance(item, PhotoView) else PhotoView(*item)
        photo = np.asarray(pv.photo)
        if photo.ndim == 2:
            photo = np.repeat(photo[..., None], 3, axis=2)
        if photo.ndim != 3 or photo.shape[2] not in (3, 4) or photo.dtype != np.uint8:
            raise InputError(f"Photo {k + 1} must be an 8-bit RGB or RGBA image.")
        if (photo.shape[1], photo.shape[0]) != pv.view.size:
            raise InputError(f"Photo {k + 1} is {photo.shape[1]} x {photo.shape[0]} px but its camera is "
                             f"{pv.view.size[0]} x {pv.view.size[1]} px.")
        mask = np.ones(photo.shape[:2], bool) if pv.mask is None else subject_mask(pv.mask)
        if mask.shape != photo.shape[:2]:
            raise InputError(f"The subject mask of photo {k + 1} is not the photo's size.")
        checked.append(PhotoView(pv.view, photo[..., :3], mask))
    if not checked:
        raise InputError("Baking a texture needs at least one photo with its camera.")
    return vertices, faces.astype(np.int64), uvs, checked, int(width), int(height)


def _view_samples(pv: PhotoView, vertices, faces, points, texel_normal, smooth, sharpness, tolerance,
                  min_cosine):
    """One photo's say on every texel: (seen texel indices, their colours (S, 3) float in [0, 1],
    weights (S,), cosines (S,)). texel_normal: each texel's face normal; smooth: its interpolated normal."""
    view = pv.view
    h, w = pv.mask.shape
    to_camera = view.position - points
    direction = to_camera / np.sqrt(np.maximum(np.einsum("ij,ij->i", to_camera, to_camera), 1e-30))[:, None]
    cos_face = np.einsum("ij,ij->i", texel_normal, direction)
    cos_smooth = np.einsum("ij,ij->i", smooth, direction)
    xy, depth = view.project(points)
    seen = (cos_face > min_cosine) & (depth > 0)
    seen &= (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    # The subject mask, kept MASK_INSET px away from its edge; its distance also feathers the weights.
    inset = cv2.distanceTransform(np.pad(pv.mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    col = np.clip(xy[:, 0].astype(np.int64), 0, w - 1)
    row = np.clip(xy[:, 1].astype(np.int64), 0, h - 1)
    edge_distance = inset[row, col]
    seen &= edge_distance >= MASK_INSET
    # Occlusion, against a depth buffer of at most DEPTH_BUFFER_MAX px.
    zscale = min(1.0, DEPTH_BUFFER_MAX / max(w, h))
    zview = view.resized(max(1, round(w * zscale)), max(1, round(h * zscale)))
    zxy, zdepth = zview.project(vertices)
    zbuf = rasterise(zxy, zdepth, faces, (zview.size[1], zview.size[0])).depth
    idx = np.flatnonzero(seen)
    zc = np.clip((xy[idx, 0] * zscale).astype(np.int64), 0, zview.size[0] - 1)
    zr = np.clip((xy[idx, 1] * zscale).astype(np.int64), 0, zview.size[1] - 1)
    slope = np.sqrt(np.maximum(1 - cos_face[idx] ** 2, 0)) / np.maximum(cos_face[idx], 0.05)
    allowed = tolerance + 1.5 * depth[idx] / zview.intrinsics.focal_px * slope
    idx = idx[depth[idx] <= zbuf[zr, zc] + allowed]
    # Colour and weight.
    rows, cols = np.flatnonzero(pv.mask.any(axis=1)), np.flatnonzero(pv.mask.any(axis=0))
    subject_diagonal = math.hypot(np.ptp(rows), np.ptp(cols)) if len(rows) else 0.0
    feather = max(2.0, 0.03 * subject_diagonal)
    ramp = np.clip((edge_distance[idx] - MASK_INSET + 1.0) / feather, 1e-3, 1.0)
    weight = np.maximum(cos_smooth[idx], 1e-3) ** sharpness * ramp
    colour = sample_bilinear(pv.photo, xy[idx]) / 255.0
    return idx, colour, weight, np.maximum(cos_smooth[idx], 0.0)


def bake(
    vertices: np.ndarray,
    faces: np.ndarray,
    uvs: np.ndarray,
    views,
    size=1024,
    *,
    padding: int | None = None,
    sharpness: float = 8.0,
    feather_texels: float | None = None,
    match_exposure: bool = True,
    min_cosine: float = MIN_COSINE,
    fallback_colours: np.ndarray | None = None,
) -> TextureBake:
    """Bake photos (a sequence of PhotoView or (view, photo, mask) tuples) onto the mesh's UV atlas.

    vertices (N, 3) in the object frame the views are placed in; faces (F, 3); uvs (N, 2) per vertex,
    (0, 0) at the texture's bottom-left; size: texels, an int (square) or (width, height). padding: texels
    the charts grow by (default size / 128, at least 2); sharpness: the exponent on the cosine weights
    (higher: sharper hand-over between photos); feather_texels: width of the weight fade at the edge of what
    a photo sees (default size / 128); min_cosine: surfaces seen more obliquely are left to the fill;
    fallback_colours: (N, 3) sRGB in [0, 1] per vertex, the generator's own colours, shown where no photo sees.
    Returns a TextureBake (see there)."""
    start = time.perf_counter()
    vertices, faces, uvs, views, width, height = _check(vertices, faces, uvs, views, size)
    padding = max(2, width // 128) if padding is None else int(padding)
    feather_texels = max(2.0, width / 128) if feather_texels is None else float(feather_texels)

    # 1. The atlas: texel -> face, barycentrics, surface point, normals.
    uv_xy = np.stack([uvs[:, 0] * width, (1.0 - uvs[:, 1]) * height], axis=1)
    atlas = rasterise(uv_xy, np.ones(len(uvs)), faces, (height, width), perspective=False)
    if not atlas.mask.any():
        raise InputError(f"The mesh's UVs cover no texel of a {width} x {height} texture: is it unwrapped?")
    frags = fragments(atlas, uv_xy, faces)
    texel, face_of_texel, bary = frags.pixel, frags.face, frags.bary.astype(np.float64)
    chart = atlas.mask
    face_unit, vertex_normal = face_normals(vertices, faces)
    points = frags.interpolate(faces, vertices.astype(np.float32)).astype(np.float64)
    smooth = np.einsum("kj,kjc->kc", bary, vertex_normal[faces[face_of_texel]])
    smooth /= np.sqrt(np.maximum(np.einsum("ij,ij->i", smooth, smooth), 1e-30))[:, None]
    texel_normal = face_unit[face_of_texel]
    tolerance = 0.003 * float(np.linalg.norm(np.ptp(vertices, axis=0)))

    # 2-3. Each photo's samples and weights, the weights faded near the edge of what it sees.
    k = len(texel)
    samples = []
    for pv in views:
        idx, colour, weight, cosine = _view_samples(pv, vertices, faces, points, texel_normal, smooth,
                                                    sharpness, tolerance, min_cosine)
        blocked = np.zeros(height * width, bool)
        blocked[texel] = True
        blocked[texel[idx]] = False  # in a chart but not seen by this photo
        fade = cv2.distanceTransform((~blocked).reshape(height, width).astype(np.uint8), cv2.DIST_L2, 3)
        weight = weight * np.clip(fade.ravel()[texel[idx]] / feather_texels, 1e-3, 1.0)
        samples.append((idx, colour, weight, cosine))

    # 4. Exposure, then the blend.
    gains = _exposure_gains(samples, k) if match_exposure else np.ones((len(views), 3))
    colour_k, seen_k, source = _blend(samples, gains, k)

    # 5. Unseen texels: the difference from the base (the generator's colours, else nothing) diffused over the
    #    surface, then relaxed against seen neighbours in the atlas, the base added back.
    base_k = np.zeros_like(colour_k)
    if fallback_colours is not None:
        base_k = np.einsum("kj,kjc->kc", bary, _check_colours(fallback_colours, len(vertices))[faces[face_of_texel]])
    residual_k = colour_k - base_k
    vres, welded = _surface_fill(vertices, faces, face_of_texel, bary, residual_k, seen_k,
                                 0.0 if fallback_colours is not None else 0.5)
    unseen = ~seen_k
    residual_k[unseen] = np.einsum("kj,kjc->kc", bary[unseen], vres[welded[faces[face_of_texel[unseen]]]])
    seen = np.zeros(height * width, bool)
    seen[texel[seen_k]] = True
    seen = seen.reshape(height, width)
    image, base = (np.zeros((height * width, 3), np.float32) for _ in range(2))
    image[texel], base[texel] = residual_k, base_k
    image = _relax(image.reshape(height, width, 3), seen, chart, FILL_RELAX_ITERATIONS) + base.reshape(height, width, 3)

    # 6. Padding, the 8-bit texture and the vertex colours.
    image = np.clip(_pad(image, chart, padding), 0.0, 1.0)
    texture = np.round(image * 255.0).astype(np.uint8)
    vertex_rgb = sample_bilinear(image, uv_xy)
    vertex_colors = np.concatenate([vertex_rgb, np.ones((len(vertices), 1), np.float32)], axis=1)
    source_map = np.full(height * width, -1, np.int16)
    source_map[texel] = source
    report = {
        "texture_size": [width, height],
        "chart_texels": int(k),
        # Texels two charts claim (an atlas that overlaps itself can hold only one of their colours).
        "overlapping_texels": int((coverage_count(uv_xy, faces, (height, width)) > 1).sum()),
        "seen_fraction": float(seen_k.mean()) if k else 0.0,
        "unseen_from": "the generator's colours" if fallback_colours is not None else "the photos' colours, diffused",
        "texels_per_photo": [int(len(s[0])) for s in samples],
        "gains": gains.round(4).tolist(),
        "padding": padding,
        "seconds": time.perf_counter() - start,
    }
    return TextureBake(texture, vertex_colors.astype(np.float32), chart, seen,
                       source_map.reshape(height, width), gains.astype(np.float32), report)


def bake_texture(vertices, faces, uvs, views_with_photos_and_masks, size=1024, **settings
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(texture (H, W, 3) uint8 sRGB, row 0 at v = 1; vertex colours (N, 4) float32 sRGB): `bake`'s two
    products, for callers that need only those."""
    result = bake(vertices, faces, uvs, views_with_photos_and_masks, size, **settings)
    return result.texture, result.vertex_colors


def render_texture(view: View, vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, texture: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The textured mesh seen by `view`: (H, W, 3) float32 in the texture's units (0 outside) and the bool
    mask. UVs are interpolated perspective-correctly and the texture sampled bilinearly."""
    uv, mask = render_attribute(view, vertices, faces, np.asarray(uvs, np.float32))
    th, tw = texture.shape[:2]
    xy = np.stack([uv[mask][:, 0] * tw, (1.0 - uv[mask][:, 1]) * th], axis=1)
    out = np.zeros(mask.shape + (texture.shape[2],), np.float32)
    out[mask] = sample_bilinear(texture, xy)
    return out, mask

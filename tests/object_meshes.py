"""Known meshes for the object tests, in the generator's frame (+X right, +Y up, +Z towards the viewer):
closed primitives built with numpy (faces counter-clockwise seen from outside), an asymmetric toy made of
them, a cube whose faces are separate UV charts, Blender's Suzanne read back from bpy, and the photo of a mesh
TripoSR's own camera would take."""

from __future__ import annotations

import numpy as np


def box(size=(1.0, 1.0, 1.0), centre=(0.0, 0.0, 0.0)):
    corners = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
    faces = np.array([
        [0, 1, 3], [0, 3, 2],  # -X
        [4, 6, 7], [4, 7, 5],  # +X
        [0, 4, 5], [0, 5, 1],  # -Y
        [2, 3, 7], [2, 7, 6],  # +Y
        [0, 2, 6], [0, 6, 4],  # -Z
        [1, 5, 7], [1, 7, 3],  # +Z
    ])
    return corners * size + centre, faces


def sphere(radius=1.0, centre=(0.0, 0.0, 0.0), rings=16, segments=32):
    """A UV sphere with single pole vertices (closed)."""
    theta = np.linspace(0, np.pi, rings + 1)[1:-1]
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    ring = np.stack([np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)], axis=-1).reshape(-1, 3)
    verts = np.concatenate([[[0, 1, 0]], ring, [[0, -1, 0]]])
    idx = 1 + np.arange((rings - 1) * segments).reshape(rings - 1, segments)
    nxt = np.roll(idx, -1, axis=1)
    top = np.stack([np.zeros(segments, int), idx[0], nxt[0]], axis=1)
    bottom_pole = len(verts) - 1
    bottom = np.stack([np.full(segments, bottom_pole), nxt[-1], idx[-1]], axis=1)
    a, b, c, d = idx[:-1], idx[1:], nxt[1:], nxt[:-1]
    quads = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    return verts * radius + centre, np.concatenate([top, quads, bottom])


def cylinder(radius=0.5, height=1.0, centre=(0.0, 0.0, 0.0), segments=32):
    """Along +Y, capped (closed)."""
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    ring = np.stack([np.sin(phi), np.zeros_like(phi), np.cos(phi)], axis=1) * radius
    verts = np.concatenate([ring + [0, -height / 2, 0], ring + [0, height / 2, 0],
                            [[0, -height / 2, 0], [0, height / 2, 0]]])
    i = np.arange(segments)
    j = (i + 1) % segments
    n = segments
    side = np.concatenate([np.stack([i, j, j + n], 1), np.stack([i, j + n, i + n], 1)])
    bottom = np.stack([np.full(n, 2 * n), j, i], 1)
    top = np.stack([np.full(n, 2 * n + 1), i + n, j + n], 1)
    return verts + centre, np.concatenate([side, bottom, top])


def rotate(mesh, axis: str, degrees: float):
    verts, faces = mesh
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    m = {"x": [[1, 0, 0], [0, c, -s], [0, s, c]], "y": [[c, 0, s], [0, 1, 0], [-s, 0, c]],
         "z": [[c, -s, 0], [s, c, 0], [0, 0, 1]]}[axis]
    return verts @ np.array(m).T, faces


def translate(mesh, offset):
    return mesh[0] + offset, mesh[1]


def merge(*meshes):
    verts, faces, base = [], [], 0
    for v, f in meshes:
        verts.append(v)
        faces.append(f + base)
        base += len(v)
    return np.concatenate(verts), np.concatenate(faces)


def normalised(mesh, half_extent=0.95):
    """Centred on its box, the long side spanning +/- half_extent: the generator's [-1, 1]^3 output."""
    v, f = mesh
    lo, hi = v.min(0), v.max(0)
    v = (v - (lo + hi) / 2) * (2 * half_extent / (hi - lo).max())
    return v.astype(np.float32), f.astype(np.int32)


def toy():
    """An asymmetric figure: a body, a head off to the right and forward, an arm reaching left and back,
    a chimney on top: no mirror or turn maps its silhouette onto itself."""
    body = box((1.2, 0.9, 0.6))
    head = sphere(0.35, (0.35, 0.75, 0.15), rings=12, segments=24)
    arm = translate(rotate(rotate(cylinder(0.12, 1.0, segments=16), "z", 70), "y", -30), (-0.9, 0.1, -0.2))
    chimney = cylinder(0.1, 0.5, (-0.35, 0.65, -0.1), segments=12)
    leg = box((0.25, 0.6, 0.25), (0.3, -0.7, 0.2))
    return normalised(merge(body, head, arm, chimney, leg))


def signed_volume(verts, faces):
    tri = np.asarray(verts, np.float64)[faces]
    return float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0)


def chart_cube(cells: int = 8, half: float = 0.8):
    """A cube subdivided into cells x cells quads per side, each side its own UV chart in a 3 x 2 atlas
    with a gap between charts: vertices (N, 3) float32, faces (F, 3) int32, uvs (N, 2) float32 and the
    side (0..5 = +X, -X, +Y, -Y, +Z, -Z) of every face."""
    # Each side: (normal axis, sign, u axis, v axis) with u x v = outward normal, so CCW from outside.
    sides = [(0, 1, 2, 1), (0, -1, 1, 2), (1, 1, 0, 2), (1, -1, 2, 0), (2, 1, 0, 1), (2, -1, 1, 0)]
    g = np.linspace(-1.0, 1.0, cells + 1)
    a, b = np.meshgrid(g, g, indexing="xy")  # a along u, b along v
    idx = np.arange((cells + 1) ** 2).reshape(cells + 1, cells + 1)
    q0, q1, q2, q3 = idx[:-1, :-1], idx[:-1, 1:], idx[1:, 1:], idx[1:, :-1]
    quad_faces = np.concatenate([np.stack([q0, q1, q2], -1).reshape(-1, 3), np.stack([q0, q2, q3], -1).reshape(-1, 3)])
    verts, faces, uvs, side_of = [], [], [], []
    gap = 0.04
    tile = (1.0 - 4 * gap) / 3.0
    for k, (n, sign, ua, va) in enumerate(sides):
        p = np.zeros((cells + 1, cells + 1, 3))
        p[..., n] = sign
        ua_sign = 1.0
        if np.cross(np.eye(3)[ua], np.eye(3)[va])[n] * sign < 0:
            ua_sign = -1.0  # flip u so that u x v points outwards
        p[..., ua] = a * ua_sign
        p[..., va] = b
        col, row = k % 3, k // 3
        uv = np.stack([(a + 1) / 2 * tile + gap + col * (tile + gap), (b + 1) / 2 * tile + gap + row * (tile + gap)],
                      axis=-1)
        faces.append(quad_faces + sum(len(v) for v in verts))
        verts.append(p.reshape(-1, 3) * half)
        uvs.append(uv.reshape(-1, 2))
        side_of.append(np.full(len(quad_faces), k))
    return (np.concatenate(verts).astype(np.float32), np.concatenate(faces).astype(np.int32),
            np.concatenate(uvs).astype(np.float32), np.concatenate(side_of))


def triposr_photo(verts, faces, size, square):
    """The subject mask of a photo of `size` taken the way TripoSR assumes (its renderer's camera: on +Z at 1.9,
    40 degrees across the square (x, y, side), the principal point at the square's centre: not a View), with the
    mesh moved and scaled so its box is centred at 85 % of the square, as TripoSR's preprocessing makes it: the
    mesh, the mask and the square the authors' preprocessing derives from that mask (their quirks: the box's last
    row and column cut, the side truncated)."""
    from image_to_mesh.inference.objects.rasterise import coverage

    x, y, side = square
    focal = side / 2 / np.tan(np.radians(20.0))

    def project(verts):
        depth = 1.9 - verts[:, 2]
        return np.stack([x + side / 2 + focal * verts[:, 0] / depth, y + side / 2 - focal * verts[:, 1] / depth], 1)

    for _ in range(6):  # the box centred at 85 % of the square (perspective: scale, move and look again)
        verts = verts * (0.85 * side / np.ptp(project(verts), axis=0).max())
        xy = project(verts)
        shift = (np.array([x, y]) + side / 2 - (xy.min(0) + xy.max(0)) / 2) * (1.9 - verts[:, 2].mean()) / focal
        verts = verts + [shift[0], -shift[1], 0.0]
    mask = coverage(project(verts), faces, size[::-1], 1.9 - verts[:, 2]) > 0.5
    ys, xs = np.nonzero(mask)
    box = max(ys.max() - ys.min(), xs.max() - xs.min())
    derived = int(box / 0.85)
    return verts, mask, ((xs.min() + xs.max() - derived) // 2, (ys.min() + ys.max() - derived) // 2, derived)


def blender_mesh(obj):
    """Triangles of a Blender mesh object (modifiers applied) in the generator's frame: Blender's (x, y, z)
    is glTF's (x, z, -y), so Suzanne, facing -Y in Blender, faces +Z here. Returns float32 verts, int32 faces
    and, when the mesh has a UV map, per-vertex UVs (vertices split where corners disagree)."""
    import bpy

    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    try:
        mesh.calc_loop_triangles()
        co = np.empty(len(mesh.vertices) * 3, np.float32)
        mesh.vertices.foreach_get("co", co)
        co = co.reshape(-1, 3)
        tri_loops = np.empty(len(mesh.loop_triangles) * 3, np.int32)
        mesh.loop_triangles.foreach_get("loops", tri_loops)
        loop_vert = np.empty(len(mesh.loops), np.int32)
        mesh.loops.foreach_get("vertex_index", loop_vert)
        uv = None
        if mesh.uv_layers:
            uv = np.empty(len(mesh.loops) * 2, np.float32)
            mesh.uv_layers.active.data.foreach_get("uv", uv)
            uv = uv.reshape(-1, 2)
    finally:
        evaluated.to_mesh_clear()
    verts = np.stack([co[:, 0], co[:, 2], -co[:, 1]], axis=1)
    if uv is None:
        return verts, loop_vert[tri_loops].reshape(-1, 3), None
    # One vertex per distinct (position index, uv) pair: per-vertex UVs, split along seams.
    key = np.concatenate([loop_vert[:, None].astype(np.float64), np.round(uv, 6)], axis=1)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    return verts[loop_vert[first]], inverse[tri_loops].reshape(-1, 3).astype(np.int32), uv[first]

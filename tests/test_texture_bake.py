"""Texturing a generated object from its photos: the right photo per face, hidden parts filled from their
neighbours, exposure differences evened out, padding for mip-maps, and a round trip: a mesh textured from a
photo through its fitted camera looks like the photo again."""

import math

import bpy
import cv2
import numpy as np
import object_meshes
import pytest

from image_to_mesh.inference.errors import InputError
from image_to_mesh.inference.objects.camera_fit import fit_camera
from image_to_mesh.inference.objects.rasterise import fragments, rasterise, render_attribute, render_silhouette
from image_to_mesh.inference.objects.texture_bake import bake, bake_texture, render_texture
from image_to_mesh.inference.geometry.view import view_from_fov

SIDES = ["+X", "-X", "+Y", "-Y", "+Z", "-Z"]
# One flat colour per photo of the cube, each shot from its product-shoot yaw.
SHOTS = {0.0: (200, 40, 40), 90.0: (40, 180, 60), 180.0: (50, 70, 210), 270.0: (220, 200, 40)}
BACKGROUND = (255, 0, 255)  # a studio backdrop no mix of the photos' colours comes near: must never show
SEEN_BY = {"+Z": 0, "+X": 1, "-Z": 2, "-X": 3}  # yaw 90 ("left") looks at +X, 270 at -X


def texel_sides(uvs, faces, side_of_face, size):
    """Which cube side (index into SIDES) each texel of a size x size atlas shows, -1 outside the charts."""
    xy = np.stack([uvs[:, 0] * size, (1 - uvs[:, 1]) * size], axis=1)
    atlas = rasterise(xy, np.ones(len(uvs)), faces, (size, size), perspective=False)
    return np.where(atlas.mask, side_of_face[np.maximum(atlas.face, 0)], -1)


@pytest.fixture(scope="module")
def cube_bake():
    verts, faces, uvs, side_of_face = object_meshes.chart_cube(cells=8)
    views = []
    for yaw, colour in SHOTS.items():
        view = view_from_fov(320, 240, 40.0, yaw, 0.0, 4.0)
        mask = render_silhouette(view, verts, faces)
        photo = np.empty((240, 320, 3), np.uint8)
        photo[:] = BACKGROUND
        photo[mask] = colour
        views.append((view, photo, mask))
    result = bake(verts, faces, uvs, views, 256)
    return result, texel_sides(uvs, faces, side_of_face, 256), (verts, faces, uvs)


def test_each_side_takes_its_colour_from_the_photo_that_faces_it(cube_bake):
    result, sides, _ = cube_bake
    colours = list(SHOTS.values())
    for name, view_index in SEEN_BY.items():
        texels = sides == SIDES.index(name)
        assert (result.source[texels & result.seen] == view_index).all()
        assert result.seen[texels].mean() > 0.95
        np.testing.assert_array_equal(np.unique(result.texture[texels & result.seen], axis=0), [colours[view_index]])
        # The few texels along the silhouette the photo cannot vouch for are filled from their neighbours.
        assert np.abs(result.texture[texels].astype(int) - colours[view_index]).max() <= 4
    np.testing.assert_allclose(result.gains, 1.0)  # no two photos see the same texel: nothing to compare


def test_hidden_sides_are_diffused_from_their_neighbours(cube_bake):
    result, sides, (verts, faces, uvs) = cube_bake
    colours = np.array(list(SHOTS.values()), float)
    for hidden in ("+Y", "-Y"):  # no camera is above or below the cube
        texels = sides == SIDES.index(hidden)
        assert not result.seen[texels].any()
        # No black patches, no background: every texel is a mix of the four photos' colours.
        values = result.texture[texels].astype(float)
        assert values.sum(axis=1).min() > 200
        assert np.linalg.norm(values - BACKGROUND, axis=1).min() > 100
    # Next to each side, the top takes that side's colour (texels found by their 3-D position).
    rows, cols = np.nonzero(sides == SIDES.index("+Y"))
    xy = np.stack([uvs[:, 0] * 256, (1 - uvs[:, 1]) * 256], axis=1)
    atlas = rasterise(xy, np.ones(len(uvs)), faces, (256, 256), perspective=False)
    centres = verts[faces[atlas.face[rows, cols]]].mean(axis=1)
    for side, view_index in SEEN_BY.items():
        axis, sign = "XYZ".index(side[1]), 1 if side[0] == "+" else -1
        across = 2 - axis  # x <-> z: the other horizontal axis
        near = (sign * centres[:, axis] > 0.6) & (np.abs(centres[:, across]) < 0.4)  # mid-edge, not corners
        distance = np.linalg.norm(result.texture[rows[near], cols[near]][:, None, :] - colours[None], axis=2)
        assert (distance.argmin(axis=1) == view_index).mean() > 0.9, side


def test_charts_are_padded_so_lookups_at_their_edges_stay_on_the_object(cube_bake):
    result, sides, _ = cube_bake
    padding = result.report["padding"]
    assert padding >= 2
    for name, view_index in SEEN_BY.items():
        chart = sides == SIDES.index(name)
        ring = (cv2.distanceTransform((~chart).astype(np.uint8), cv2.DIST_L2, 5) <= padding) & ~chart
        colour = list(SHOTS.values())[view_index]
        assert np.abs(result.texture[ring].astype(int) - colour).max() <= 4  # the nearest chart texel's colour
    # Beyond the padding the atlas holds the object's mean colour: small mip levels show the object.
    outside = cv2.distanceTransform((sides < 0).astype(np.uint8), cv2.DIST_L2, 5) > padding
    assert np.abs(result.texture[outside].astype(float) - result.texture[sides >= 0].mean(axis=0)).max() < 1.0


def test_vertex_colours_follow_the_texture(cube_bake):
    result, _, (verts, faces, uvs) = cube_bake
    colours = result.vertex_colors
    assert colours.shape == (len(verts), 4) and colours.dtype == np.float32
    np.testing.assert_array_equal(colours[:, 3], 1.0)
    on_front = np.abs(verts[:, 2] - verts[:, 2].max()) < 1e-6
    front = np.unique(faces[on_front[faces].all(axis=1)])  # the +Z chart's own vertices
    assert np.abs(colours[front, :3] - np.array(SHOTS[0.0]) / 255.0).max() < 1 / 255


def test_a_generators_own_colours_show_where_no_photo_sees_without_a_seam():
    # TripoSR gives a colour per vertex, its view of the photo's colours: here a gradient over the cube, which the
    # photo of the front shows brighter (another exposure). The back, which no photo sees, shows the generator's
    # gradient shifted by the photo's difference from it, so photo and generator colours meet without a seam;
    # without those colours the back is a diffusion of the front's.
    verts, faces, uvs, side_of_face = object_meshes.chart_cube(cells=8)

    def gradient(points):  # linear in position: exact at each texel's surface point
        return np.clip(0.45 + 0.25 * points[:, [0, 1, 0]] * [1, 1, -1], 0, 1)

    view = view_from_fov(320, 240, 40.0, 0.0, 0.0, 4.0)
    shown, mask = render_attribute(view, verts, faces, gradient(verts).astype(np.float32))
    photo = np.full((240, 320, 3), BACKGROUND, np.uint8)
    photo[mask] = np.round(shown[mask] * 255 + 30)
    own = bake(verts, faces, uvs, [(view, photo, mask)], 256, fallback_colours=gradient(verts))
    plain = bake(verts, faces, uvs, [(view, photo, mask)], 256)
    sides = texel_sides(uvs, faces, side_of_face, 256)
    front, back = sides == SIDES.index("+Z"), sides == SIDES.index("-Z")
    np.testing.assert_array_equal(own.texture[front & own.seen], plain.texture[front & plain.seen])
    assert own.report["unseen_from"] == "the generator's colours" and not own.seen[back].any()
    xy = np.stack([uvs[:, 0] * 256, (1 - uvs[:, 1]) * 256], axis=1)
    atlas = rasterise(xy, np.ones(len(uvs)), faces, (256, 256), perspective=False)
    points = fragments(atlas, xy, faces).interpolate(faces, verts.astype(np.float32))
    expected = gradient(points) * 255
    inside = (cv2.erode(back.astype(np.uint8), np.ones((9, 9))) > 0)[atlas.mask]
    shift = own.texture[atlas.mask][inside].astype(float) - expected[inside]
    assert expected[inside].std(axis=0).min() > 15  # the gradient varies across the back ...
    assert np.abs(shift - 30).max() < 4  # ... and shows there, moved by the photo's exposure
    plain_shift = plain.texture[atlas.mask][inside].astype(float) - expected[inside]
    assert np.abs(plain_shift - 30).max() > 20  # the photo's colours alone cannot know the back
    # Past the front's edges (the sides next to it, which the photo sees too obliquely to sample) the texture
    # goes on as the front's: no seam between photo and generator colours.
    around = np.isin(sides[atlas.mask], [SIDES.index(s) for s in ("+X", "-X", "+Y", "-Y")])
    border = around & (points[:, 2] > verts[:, 2].max() - 0.1)
    assert border.sum() > 100
    assert np.abs(own.texture[atlas.mask][border].astype(float) - expected[border] - 30).max() < 6
    with pytest.raises(InputError, match="one RGB triple per vertex"):
        bake(verts, faces, uvs, [(view, photo, mask)], 64, fallback_colours=gradient(verts)[:-1])


@pytest.fixture(scope="module")
def suzanne_with_atlas():
    """Blender's Suzanne, subdivided, unwrapped by Blender's Smart UV Project (45 degrees: an atlas that
    never overlaps itself, checked by the bake's report)."""
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.mesh.primitive_monkey_add()
    obj = bpy.context.active_object
    obj.modifiers.new("subdivide", "SUBSURF").levels = 2
    bpy.ops.object.modifier_apply(modifier="subdivide")
    bpy.ops.object.mode_set(mode="EDIT")
    bpy.ops.mesh.select_all(action="SELECT")
    bpy.ops.uv.smart_project(angle_limit=math.radians(45.0), island_margin=0.01)
    bpy.ops.object.mode_set(mode="OBJECT")
    verts, faces, uvs = object_meshes.blender_mesh(obj)
    bpy.data.objects.remove(obj)
    return verts, faces, uvs


def pattern(points):
    """A smooth colour field over space: the object's true colour at each surface point."""
    p = np.asarray(points, np.float64)
    rgb = [np.sin(5 * p[:, 0] + 1), np.sin(4 * p[:, 1]), np.cos(6 * p[:, 2] + 3 * p[:, 0])]
    return np.clip(0.5 + 0.35 * np.stack(rgb, axis=1), 0, 1)


def photograph(view, verts, faces, gain=1.0, background=(255, 255, 255)):
    """A photo of the patterned mesh: each pixel the pattern at the visible surface point, times gain."""
    points, mask = render_attribute(view, verts, faces, verts.astype(np.float32))
    photo = np.zeros(points.shape[:2] + (3,), np.uint8)
    photo[:] = background
    photo[mask] = np.round(np.clip(pattern(points[mask]) * gain, 0, 1) * 255)
    return photo, mask


def test_a_mesh_textured_through_its_fitted_camera_reproduces_the_photo(suzanne_with_atlas):
    verts, faces, uvs = suzanne_with_atlas
    true = view_from_fov(480, 480, 35.0, 15.0, 10.0, 4.5, (verts.min(0) + verts.max(0)) / 2, (12, -8))
    photo, mask = photograph(true, verts, faces)
    view, iou, _ = fit_camera(verts, faces, mask)
    assert iou > 0.98

    result = bake(verts, faces, uvs, [(view, photo, mask)], 1024)
    assert result.report["overlapping_texels"] == 0
    assert 0.2 < result.report["seen_fraction"] < 0.6  # one photo sees the front, not the back
    rendered, drawn = render_texture(view, verts, faces, uvs, result.texture)
    inside = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & drawn
    error = np.abs(rendered[inside] - photo[inside].astype(np.float32))
    assert error.mean() < 1.0  # of 255
    assert np.percentile(error.max(axis=1), 99) < 12  # only pixels along occluding contours differ more

    # The back, which the photo never saw, is filled: no black, no background white.
    back = render_texture(view_from_fov(480, 480, 35.0, 195.0, 10.0, 4.5), verts, faces, uvs, result.texture)
    colours = back[0][back[1]]
    assert colours.sum(axis=1).min() > 60 and (colours.min(axis=1) < 250).all()


def test_photos_of_different_exposure_are_evened_out(suzanne_with_atlas):
    verts, faces, uvs = suzanne_with_atlas
    centre = (verts.min(0) + verts.max(0)) / 2
    left = view_from_fov(400, 400, 35.0, -40.0, 5.0, 4.5, centre)
    right = view_from_fov(400, 400, 35.0, 40.0, 5.0, 4.5, centre)
    photo_left, mask_left = photograph(left, verts, faces)
    photo_right, mask_right = photograph(right, verts, faces, gain=0.6)  # a darker photo of the same object
    shots = [(left, photo_left, mask_left), (right, photo_right, mask_right)]

    matched = bake(verts, faces, uvs, shots, 512)
    unmatched = bake(verts, faces, uvs, shots, 512, match_exposure=False)
    np.testing.assert_allclose(matched.gains[0], 1.0)
    np.testing.assert_allclose(matched.gains[1], 1 / 0.6, rtol=0.03)

    # Truth: the pattern at each texel's surface point, at the first photo's exposure.
    xy = np.stack([uvs[:, 0] * 512, (1 - uvs[:, 1]) * 512], axis=1)
    atlas = rasterise(xy, np.ones(len(uvs)), faces, (512, 512), perspective=False)
    rows, cols = np.nonzero(atlas.mask)
    frags = fragments(atlas, xy, faces)
    truth = pattern(frags.interpolate(faces, verts.astype(np.float32))) * 255
    only_right = (matched.source[rows, cols] == 1) & matched.seen[rows, cols]
    assert only_right.sum() > 1000
    err_matched = np.abs(matched.texture[rows, cols][only_right] - truth[only_right]).mean()
    err_unmatched = np.abs(unmatched.texture[rows, cols][only_right] - truth[only_right]).mean()
    assert err_matched < 3.0 and err_unmatched > 20.0


def test_bake_explains_unusable_input_in_one_sentence():
    verts, faces, uvs, _ = object_meshes.chart_cube(2)
    view = view_from_fov(64, 48, 40.0, 0.0, 0.0, 4.0)
    photo = np.zeros((48, 64, 3), np.uint8)
    with pytest.raises(InputError, match="one finite UV per vertex"):
        bake_texture(verts, faces, uvs[:-1], [(view, photo, None)], 64)
    with pytest.raises(InputError, match="camera is 64 x 48"):
        bake_texture(verts, faces, uvs, [(view, np.zeros((10, 10, 3), np.uint8), None)], 64)
    with pytest.raises(InputError, match="at least one photo"):
        bake_texture(verts, faces, uvs, [], 64)

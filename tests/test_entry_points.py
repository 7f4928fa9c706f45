"""Where Blender users look for it: File > Import and Add > Mesh, photos dropped into the viewport, a batch of
photos side by side, presets, and `blender -c image_to_mesh`."""

from __future__ import annotations

import json
import sys

import bpy
import numpy as np
import pytest
from conftest import EXTENSION, ROOT
from PIL import Image
from test_blender import RecordingLayout

BATCH = sys.modules.get(EXTENSION + ".operators.batch")


@pytest.fixture
def cut_outs(tmp_path):
    """Three cut-out photos (alpha = the subject, so no mask model runs) and a corrupt one between them."""
    folder = tmp_path / "photos"
    folder.mkdir()
    yy, xx = np.mgrid[:90, :120]
    for name, colour in (("a", (200, 60, 40)), ("c", (40, 160, 60)), ("d", (60, 60, 200))):
        alpha = (((xx - 60) / 40.0) ** 2 + ((yy - 45) / 35.0) ** 2 < 1) * 255
        rgb = np.broadcast_to(np.array(colour, np.uint8), (90, 120, 3))
        Image.fromarray(np.dstack([rgb, alpha]).astype(np.uint8), "RGBA").save(folder / f"{name}.png")
    (folder / "b.png").write_bytes(b"not an image at all")
    (folder / "notes.txt").write_text("not a photo")
    return folder


def meshes():
    return sorted((o for o in bpy.data.objects if o.type == "MESH"), key=lambda o: o.location.x)


def test_import_and_add_menus_offer_photo_as_mesh():
    for menu in (bpy.types.TOPBAR_MT_file_import, bpy.types.VIEW3D_MT_mesh_add):
        assert BATCH.menu_entry in menu.draw._draw_funcs
    layout = RecordingLayout()
    BATCH.menu_entry(type("Menu", (), {"layout": layout})(), bpy.context)
    assert layout.drawn("operator") == ["image_to_mesh.import_photos"]


def test_a_batch_lays_photos_side_by_side_and_goes_on_past_a_corrupt_one(cut_outs, empty_scene):
    empty_scene.image_to_mesh.method = "inflate"
    empty_scene.image_to_mesh.texture_size = 64
    files = [{"name": name} for name in ("a.png", "b.png", "c.png")]
    assert bpy.ops.image_to_mesh.import_photos(directory=str(cut_outs), files=files) == {"FINISHED"}
    made = meshes()
    assert [o.name for o in made] == ["a", "c"]  # b.png failed with its sentence; the batch went on
    assert all(len(o.children) == 1 and o.image_to_mesh_result.made for o in made)
    left, right = made
    assert left.location.x + left.dimensions.x / 2 < right.location.x - right.dimensions.x / 2  # side by side

    # A folder and no file chosen: every photo in it (the corrupt one fails again, the text file is no photo).
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.context.scene.image_to_mesh.method = "inflate"
    assert bpy.ops.image_to_mesh.import_photos(directory=str(cut_outs)) == {"FINISHED"}
    assert [o.name for o in meshes()] == ["a", "c", "d"]


def test_only_photos_are_taken(cut_outs, empty_scene):
    with pytest.raises(RuntimeError, match=r"notes\.txt is not a photo: Image to Mesh takes \.bmp, \.jpeg"):
        bpy.ops.image_to_mesh.import_photos(directory=str(cut_outs), files=[{"name": "notes.txt"}])
    with pytest.raises(RuntimeError, match="There is no photo in"):
        bpy.ops.image_to_mesh.import_photos(directory=str(cut_outs / "..") + "/empty-nothing")
    assert not meshes()


def test_photos_dropped_into_the_viewport_are_offered_to_image_to_mesh():
    handler = bpy.types.IMAGE_TO_MESH_FH_photos
    assert handler.bl_import_operator == "image_to_mesh.import_photos"
    extensions = handler.bl_file_extensions.split(";")
    assert {".jpg", ".jpeg", ".png", ".tif", ".webp"} <= set(extensions) and ".txt" not in extensions
    area = type("Area", (), {"type": "VIEW_3D"})()
    assert handler.poll_drop(type("Context", (), {"area": area})())
    assert not handler.poll_drop(type("Context", (), {"area": type("Area", (), {"type": "IMAGE_EDITOR"})()})())
    # The operator takes the dropped files as they come: a directory and file names, no file browser.
    assert {"directory", "files"} <= set(bpy.ops.image_to_mesh.import_photos.get_rna_type().properties.keys())


def test_presets_set_what_they_name_in_the_sidebar_and_on_the_command_line(cut_outs, empty_scene, tmp_path):
    settings = empty_scene.image_to_mesh
    settings.texture_size = 1024
    assert bpy.ops.image_to_mesh.apply_preset(preset="product") == {"FINISHED"}
    assert (settings.closure, settings.mask, settings.feather) == ("mirror", "auto", 2.0)
    assert settings.texture_size == 1024  # not in the preset: kept
    assert bpy.ops.image_to_mesh.apply_preset(preset="backdrop") == {"FINISHED"}
    assert (settings.method, settings.model, settings.mask) == ("model", "moge-2-vitb", "none")

    import cli

    run = _cli_json(cli, [str(cut_outs / "a.png"), "--preset", "product", "--closure", "solidify", "--method",
                          "inflate", "-o", str(tmp_path / "a.glb")])
    assert run["results"][0]["closure"] == "solidify"  # given explicitly: it wins over the preset
    assert run["results"][0]["mask"]["mode"] == "auto"  # the preset's
    assert "Unknown preset 'statue'" in _cli_json(cli, ["x.png", "--preset", "statue", "-o", "x.glb"])["error"]


def test_blender_command_line_command_converts_a_photo(cut_outs, tmp_path):
    package = sys.modules[EXTENSION]
    assert package._cli_command is not None  # registered: `blender -c image_to_mesh ...`
    out = tmp_path / "a.glb"
    assert package.command([str(cut_outs / "a.png"), "--method", "inflate", "--texture-size", "64", "-o",
                            str(out)]) == 0
    assert out.stat().st_size > 1000


def _cli_json(cli, argv) -> dict:
    """cli.main in this process, its one JSON document."""
    import contextlib
    import io

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        cli.main([*argv, "--json"])
    return json.loads(stdout.getvalue())


assert ROOT.is_dir()


def test_the_sidebar_batch_runs_photo_after_photo_and_esc_keeps_what_is_finished(cut_outs, empty_scene):
    from test_operator_run import ESC, TIMER, RunningOperator

    empty_scene.image_to_mesh.method = "inflate"
    operator = RunningOperator(bpy.types.IMAGE_TO_MESH_OT_import_photos)
    operator.forget()
    operator.directory = str(cut_outs)
    for name in ("a.png", "c.png", "d.png"):
        operator.properties.files.add().name = name
    try:
        operator.begin(bpy.context)
        operator.next_photo(bpy.context)  # what invoke does after adding the modal handler
        statuses = set()
        while not meshes():
            assert operator.modal(bpy.context, TIMER) == {"PASS_THROUGH"}
            statuses.add(operator._job.status if operator._job else "")
        assert any("photo 1 / 3, a.png" in status for status in statuses)
        result = operator.modal(bpy.context, ESC)
        assert result in ({"FINISHED"}, {"CANCELLED"})
        made = [o.name for o in meshes()]
        assert made[0] == "a" and "d" not in made  # finished kept, the rest not made
        assert any("The batch was stopped" in message for _, message in operator.reports)
    finally:
        operator.forget()

"""Each setting is declared once (inference/settings.py) and reaches the sidebar, the operator, the
preferences and the CLI from that declaration alone."""

import argparse
from dataclasses import dataclass

import bpy
import cli
import pytest
from image_to_mesh.inference.errors import InputError
from image_to_mesh.inference.settings import MeshSettings, RuntimeSettings, option, options
from image_to_mesh.operators.properties import blender_properties, settings_from
from test_blender import draw_panel

SIDEBAR_STATES = [  # together these show every setting the sidebar has
    {"method": "model", "model": "depth-anything-v2-base", "closure": "solidify", "mask": "auto", "upscale": "auto",
     "remesh": "voxel"},
    {"method": "depth-map", "depth_path": "/tmp/d.exr", "depth_kind": "relative-depth", "closure": "none"},
    {"method": "depth-map", "depth_path": "/tmp/d.exr", "depth_kind": "metric"},
    {"method": "generate", "closure": "none"},
]


def sidebar_props(scene) -> set[str]:
    shown = set()
    for state in SIDEBAR_STATES:
        for name, value in state.items():
            setattr(scene.image_to_mesh, name, value)
        shown |= set(draw_panel(scene).drawn("prop"))
    return shown


def cli_destinations() -> set[str]:
    return {name for name, value in vars(cli.parse_args([])).items()}


def test_every_setting_is_in_the_sidebar_the_operator_and_the_cli_or_says_why_not(empty_scene):
    in_sidebar = sidebar_props(empty_scene)
    in_operator = set(bpy.ops.image_to_mesh.generate.get_rna_type().properties.keys())
    in_cli = cli_destinations()
    for name, _, opt in options(MeshSettings):
        assert opt.shown_in == ("blender", "cli") or opt.why, f"{name} is not shown in both and says not why"
        if "blender" in opt.shown_in:
            assert name in in_sidebar and name in in_operator, name
        if "cli" in opt.shown_in:
            assert name in in_cli, name
    prefs = set(bpy.context.preferences.addons["bl_ext.dev.image_to_mesh"].preferences.bl_rna.properties.keys())
    for name, _, opt in options(RuntimeSettings):
        assert name in prefs and name in in_cli, name


def test_blender_properties_carry_the_declared_defaults_ranges_and_choices(empty_scene):
    props = bpy.ops.image_to_mesh.generate.get_rna_type().properties
    assert props["resolution"].hard_min == 2 and props["resolution"].hard_max == 16384
    assert props["edge_threshold"].hard_max == 90.0
    mask_ids = [item.identifier for item in props["mask"].enum_items]
    assert mask_ids == [c[0] for c in dict((n, o) for n, _, o in options(MeshSettings))["mask"].choices]
    assert "birefnet-general" in mask_ids  # a mask model's card is a choice, with no second list to update
    assert settings_from(empty_scene.image_to_mesh) == MeshSettings()  # Blender's defaults are the declaration's


def test_cli_defaults_are_the_declarations():
    args = cli.parse_args(["photo.jpg", "-o", "out.glb"])
    assert cli.settings_of(args, MeshSettings) == MeshSettings()
    assert cli.settings_of(args, RuntimeSettings) == RuntimeSettings()


def test_automatic_numbers_are_zero_in_blender_and_none_in_the_settings(empty_scene):
    settings = empty_scene.image_to_mesh
    settings.fov, settings.height = 0.0, 0.25
    converted = settings_from(settings)
    assert converted.fov is None and converted.height == 0.25 and converted.width is None
    settings.occlusion_fill = 0.0  # not automatic (its default is a number): 0 turns the fill off
    assert settings_from(settings).occlusion_fill == 0.0


def test_a_new_setting_is_one_declaration():
    # What adding a setting takes: one field. Both sides derive it.
    @dataclass
    class Extended(MeshSettings):
        sharpen: float = option(0.5, "Sharpen", "sharpen the texture by this much", minimum=0.0, maximum=1.0)

    prop = blender_properties(Extended)["sharpen"]
    assert prop.keywords["name"] == "Sharpen" and prop.keywords["max"] == 1.0 and prop.keywords["default"] == 0.5
    parser = argparse.ArgumentParser()
    cli._add_setting_options(parser, Extended)
    assert parser.parse_args(["--sharpen", "0.25"]).sharpen == 0.25
    with pytest.raises(InputError, match="sharpen must be between 0 and 1"):
        Extended(sharpen=2.0).check()


@pytest.mark.parametrize("name, value, words", [
    ("height", float("inf"), "finite"),
    ("focal_px", float("nan"), "finite"),
    ("method", "magic", "Unknown method 'magic'"),
    ("closure", "box", "Unknown close 'box'"),
    ("texture_size", 8, "texture size must be between 16"),
])
def test_every_value_is_checked_against_its_declaration(name, value, words):
    with pytest.raises(InputError, match=words):
        MeshSettings(**{name: value}).check()

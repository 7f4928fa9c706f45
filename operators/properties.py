"""Blender properties derived from the settings' one declaration (inference/settings.py).

The same property set serves the scene's sidebar settings (sidebar_settings.py) and the operator (so Adjust
Last Operation shows them); the add-on preferences get the runtime settings the same way.
"""

from __future__ import annotations

from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from ..inference.generate.backend import MORE_VIEWS
from ..inference.settings import MeshSettings, blender_value, from_blender, options, value_kind

# File paths picked in Blender may be relative to the .blend ("//"): they are made absolute before use.
PATH_OPTIONS = {"PATH_SUPPORTS_BLEND_RELATIVE"}
_UNITS = {"metres": {"unit": "LENGTH"}, "pixels": {"subtype": "PIXEL"}, "percent": {"subtype": "PERCENTAGE"}}


def blender_properties(settings_class) -> dict:
    """Fresh property declarations (one set per class that uses them) for every setting shown in Blender."""
    return {name: _property(default, opt) for name, default, opt in options(settings_class) if "blender" in opt.shown_in}


def view_properties() -> dict:
    """Fresh declarations of a multi-view generator's other photos: left_photo, back_photo, right_photo."""
    return {f"{tag}_photo": StringProperty(
        name=f"{tag.title()} Photo", subtype="FILE_PATH", options=PATH_OPTIONS,
        description=f"The object seen from its {tag} (for a multi-view generator), at about the front photo's distance",
    ) for tag in MORE_VIEWS}


# What a run is made from besides the photo: every setting shown in Blender, the depth map, the more photos.
SETTING_NAMES = [*(name for name, _, opt in options(MeshSettings) if "blender" in opt.shown_in), "depth_path",
                 *(f"{tag}_photo" for tag in MORE_VIEWS)]


def _property(default, opt):
    kind = value_kind(default, opt)
    automatic = " (0: automatic)" if default is None and kind in (int, float) else ""
    common = {"name": opt.label, "description": opt.help[0].upper() + opt.help[1:] + automatic}
    if opt.choices:
        return EnumProperty(items=list(opt.choices), default=default, **common)
    if kind is bool:
        return BoolProperty(default=default, **common)
    if kind is str:
        subtype = {"file": "FILE_PATH", "folder": "DIR_PATH"}.get(opt.path, "NONE")
        return StringProperty(default=default or "", subtype=subtype, options=PATH_OPTIONS if opt.path else set(),
                              **common)
    limits = {key: value for key, value in (("min", opt.minimum), ("max", opt.maximum), ("soft_max", opt.soft_maximum))
              if value is not None}
    if automatic:
        limits["min"] = 0  # 0 stands for "automatic"
    extra = _UNITS.get(opt.unit, {})
    if kind is int:
        return IntProperty(default=blender_value(default, default, opt), **limits, **common,
                           **{k: v for k, v in extra.items() if k == "subtype"})
    return FloatProperty(default=blender_value(default, default, opt), precision=3, **limits, **common, **extra)


def settings_from(props, settings_class=MeshSettings):
    """The settings a property group (sidebar, operator, preferences) holds; CLI-only settings keep defaults."""
    return settings_class(**{
        name: from_blender(getattr(props, name), default, opt)
        for name, default, opt in options(settings_class) if "blender" in opt.shown_in
    })

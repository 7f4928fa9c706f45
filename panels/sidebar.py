"""The "Image to Mesh" tab of the 3D Viewport sidebar. Draws only; the operator does the work.

Everything drawn here is precomputed: the photo check is cached by operators.photo_check, the model's status
by operators.model_access, so a redraw never reads a file or runs a model.
"""

import bpy

from ..inference.generate.backend import MORE_VIEWS
from ..inference.runtime.cards import model_card
from ..inference.settings import PRESETS
from ..operators.model_access import generator_status, generator_time, model_status
from ..operators.photo_check import quality_lines
from ..operators.remember import result_of


def shown_settings(context):
    """(settings, result): the active result's own settings when a result is active (edit them and Update it in
    place), else the scene's."""
    result = result_of(getattr(context, "active_object", None))
    return (result if result is not None else context.scene.image_to_mesh), result


def _depth_scale(settings) -> tuple[bool, bool]:
    """(relative: Near and Far set the size, metric: the depth is in metres) of the chosen depth source."""
    method = settings.method
    if method == "generate":
        return False, False
    if method == "model" or (method == "auto" and not settings.depth_path):
        relative = model_card(settings.model).output_kind == "relative-disparity"
        return relative, not relative
    relative = settings.depth_kind != "metric"
    return relative, bool(settings.depth_path) and not relative


class _Section:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Image to Mesh"

    def layout_for(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        return layout, *shown_settings(context)


class VIEW3D_PT_image_to_mesh(_Section, bpy.types.Panel):
    """The photo, the presets and the button; the settings in the sections below."""

    bl_label = "Image to Mesh"

    def draw(self, context):
        layout, settings, result = self.layout_for(context)
        if result:
            layout.label(text=f"{context.active_object.name}: as it was made", icon="OBJECT_DATA")
        layout.row().prop(settings, "photo_source", expand=True)
        if settings.photo_source == "FILE":
            layout.prop(settings, "photo_path")
        else:
            layout.template_ID(settings, "image", open="image.open")
        lines = quality_lines(settings)
        if lines:
            advice = layout.box().column(align=True)
            advice.label(text="Photo check", icon="CAMERA_DATA")
            for line in lines:
                advice.label(text=line)
        presets = layout.row(align=True)
        for key, (label, _description, _values) in PRESETS.items():
            presets.operator("image_to_mesh.apply_preset", text=label).preset = key
        if result:
            layout.operator("image_to_mesh.update", icon="FILE_REFRESH")
            layout.label(text="Select nothing to make a new one.", icon="INFO")
        else:
            layout.operator("image_to_mesh.generate", icon="MESH_GRID")
            layout.operator("image_to_mesh.import_photos", text="Batch: Photos or a Folder...", icon="DOCUMENTS")


class VIEW3D_PT_image_to_mesh_prepare(_Section, bpy.types.Panel):
    bl_parent_id = "VIEW3D_PT_image_to_mesh"
    bl_label = "Prepare"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        prepare, settings, _result = self.layout_for(context)
        prepare.prop(settings, "upscale")
        if settings.upscale != "off":
            prepare.prop(settings, "upscale_model")
        prepare.prop(settings, "white_balance")
        prepare.prop(settings, "auto_exposure")
        prepare.prop(settings, "undistort")
        prepare.prop(settings, "crop_subject")


class VIEW3D_PT_image_to_mesh_depth(_Section, bpy.types.Panel):
    bl_parent_id = "VIEW3D_PT_image_to_mesh"
    bl_label = "Depth"

    def draw(self, context):
        depth, settings, _result = self.layout_for(context)
        depth.prop(settings, "method")
        method = settings.method
        if method in ("auto", "depth-map"):
            depth.prop(settings, "depth_path")
            depth.prop(settings, "depth_kind")
            if settings.depth_kind == "metric":
                depth.prop(settings, "depth_scale")
        if method == "model" or (method == "auto" and not settings.depth_path):
            depth.prop(settings, "model")
            depth.label(text=model_status(context, settings.model), icon="FILE_3D")
            depth.prop(settings, "model_file")
            if not model_card(settings.model).commercial:
                depth.prop(settings, "accept_license")
        if method == "generate":
            _draw_generator(context, depth, settings)
        if _depth_scale(settings)[0]:
            depth.prop(settings, "near")
            depth.prop(settings, "far")
            depth.label(text="Relative depth has no true scale: Near and Far set it.", icon="INFO")


class VIEW3D_PT_image_to_mesh_mesh(_Section, bpy.types.Panel):
    bl_parent_id = "VIEW3D_PT_image_to_mesh"
    bl_label = "Mesh"

    def draw(self, context):
        mesh, settings, _result = self.layout_for(context)
        mesh.prop(settings, "fov")
        mesh.prop(settings, "focal_px")
        if settings.method != "generate":  # a generated object has no depth grid
            mesh.prop(settings, "resolution")
            mesh.prop(settings, "edge_threshold")
            if settings.closure == "none":
                mesh.prop(settings, "occlusion_fill")
        mesh.prop(settings, "mask")
        if settings.mask != "none":
            mesh.prop(settings, "feather")


class VIEW3D_PT_image_to_mesh_object(_Section, bpy.types.Panel):
    bl_parent_id = "VIEW3D_PT_image_to_mesh"
    bl_label = "Object"

    def draw(self, context):
        solid, settings, _result = self.layout_for(context)
        if settings.method != "generate":  # closed already
            solid.prop(settings, "closure")
        if settings.closure == "solidify":
            solid.prop(settings, "thickness")
        solid.prop(settings, "height")
        solid.prop(settings, "width")
        if not (_depth_scale(settings)[1] or settings.height or settings.width):
            solid.label(text="This photo gives no true scale: give a real height or width.", icon="INFO")


class VIEW3D_PT_image_to_mesh_output(_Section, bpy.types.Panel):
    bl_parent_id = "VIEW3D_PT_image_to_mesh"
    bl_label = "Output"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        output, settings, _result = self.layout_for(context)
        output.prop(settings, "texture_size")
        output.prop(settings, "target_faces")
        output.prop(settings, "smooth")
        output.prop(settings, "remesh")
        if settings.remesh == "voxel":
            output.prop(settings, "voxel_size")
        output.prop(settings, "apply_finish")


PANELS = (VIEW3D_PT_image_to_mesh, VIEW3D_PT_image_to_mesh_prepare, VIEW3D_PT_image_to_mesh_depth, VIEW3D_PT_image_to_mesh_mesh,
          VIEW3D_PT_image_to_mesh_object, VIEW3D_PT_image_to_mesh_output)


def _draw_generator(context, layout, settings) -> None:
    """The generator, its licence, its environment (set up / remove) and the shape settings."""
    card = model_card(settings.generator, task="object")
    layout.prop(settings, "generator")
    layout.label(text=model_status(context, settings.generator, task="object"), icon="FILE_3D")
    layout.prop(settings, "model_file")
    terms = layout.box().column(align=True)
    terms.label(text=card.license + ("" if card.commercial else ": accept it before the download"), icon="INFO")
    if card.license_terms:
        terms.label(text=card.license_terms[:1].upper() + card.license_terms[1:] + ".")
    elif card.commercial:
        terms.label(text="Commercial use allowed.")
    terms.label(text=generator_time(context, card).capitalize() + ".", icon="TIME")
    if not card.commercial:
        layout.prop(settings, "accept_license")
    if card.generator.multiview:
        more = layout.box().column(align=True)
        more.label(text="More photos (the object turned; same distance)", icon="IMAGE_DATA")
        for tag in MORE_VIEWS:
            more.prop(settings, f"{tag}_photo")
    ready, line = generator_status(context)
    status = layout.row(align=True)
    status.label(text=line, icon="CHECKMARK" if ready else "ERROR")
    if ready:
        status.operator("image_to_mesh.remove_generator", text="", icon="TRASH")
    else:
        layout.operator("image_to_mesh.setup_generator", icon="IMPORT")
    layout.prop(settings, "steps")
    layout.prop(settings, "guidance")
    layout.prop(settings, "octree_resolution")
    layout.prop(settings, "seed")
    layout.label(text="The sides the photo does not show are invented.", icon="INFO")

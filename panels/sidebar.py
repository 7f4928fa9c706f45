"""The "Image to Mesh" tab of the 3D Viewport sidebar. Draws only; the operator does the work.

Everything drawn here is precomputed: the photo check is cached by operators.photo_check, the model's status
by operators.model_access, so a redraw never reads a file or runs a model.
"""

import bpy

from ..inference.runtime.cards import model_card
from ..operators.model_access import model_status
from ..operators.photo_check import quality_lines


class VIEW3D_PT_image_to_mesh(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Image to Mesh"
    bl_label = "Image to Mesh"

    def draw(self, context):
        settings = context.scene.image_to_mesh
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False

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

        depth = layout.column(heading="Depth")
        depth.prop(settings, "method")
        method = settings.method
        relative = False  # Near and Far set the size
        metric = False  # the depth is in metres: the object has its true size
        if method in ("auto", "depth-map"):
            depth.prop(settings, "depth_path")
            depth.prop(settings, "depth_kind")
            relative = settings.depth_kind != "metric"
            metric = bool(settings.depth_path) and not relative
            if not relative:
                depth.prop(settings, "depth_scale")
        if method == "model" or (method == "auto" and not settings.depth_path):
            card = model_card(settings.model)
            depth.prop(settings, "model")
            depth.label(text=model_status(context, settings.model), icon="FILE_3D")
            depth.prop(settings, "model_file")
            if not card.commercial:
                depth.prop(settings, "accept_license")
            relative = card.output_kind == "relative-disparity"
            metric = not relative
        if relative:
            depth.prop(settings, "near")
            depth.prop(settings, "far")
            depth.label(text="Relative depth has no true scale: Near and Far set it.", icon="INFO")

        mesh = layout.column(heading="Mesh")
        mesh.prop(settings, "fov")
        mesh.prop(settings, "focal_px")
        mesh.prop(settings, "resolution")
        mesh.prop(settings, "edge_threshold")
        mesh.prop(settings, "texture_size")
        mesh.prop(settings, "mask")
        if settings.mask != "none":
            mesh.prop(settings, "feather")

        solid = layout.column(heading="Object")
        solid.prop(settings, "closure")
        if settings.closure == "solidify":
            solid.prop(settings, "thickness")
        solid.prop(settings, "height")
        solid.prop(settings, "width")
        if not (metric or settings.height or settings.width):
            solid.label(text="This photo gives no true scale: give a real height or width.", icon="INFO")
        solid.prop(settings, "target_faces")
        solid.prop(settings, "smooth")
        solid.prop(settings, "apply_finish")

        layout.operator("image_to_mesh.generate", icon="MESH_GRID")

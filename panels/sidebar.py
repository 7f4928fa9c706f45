"""The "Image to Mesh" tab of the 3D Viewport sidebar. Draws only; the operator does the work."""

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
        depth.prop(settings, "depth_source")
        if settings.depth_source == "INFLATE":
            relative = False
        elif settings.depth_source == "MODEL":
            depth.prop(settings, "model")
            depth.label(text=model_status(context, settings.model), icon="FILE_3D")
            if not model_card(settings.model).commercial:
                depth.prop(settings, "accept_license")
            relative = model_card(settings.model).output_kind == "relative-disparity"
        else:
            depth.prop(settings, "depth_path")
            depth.prop(settings, "depth_kind")
            relative = settings.depth_kind != "metric"
        if relative:
            depth.prop(settings, "near")
            depth.prop(settings, "far")
            depth.label(text="Relative depth has no true scale: Near and Far set it.", icon="INFO")
        elif settings.depth_source != "INFLATE":
            depth.prop(settings, "depth_scale")

        mesh = layout.column(heading="Mesh")
        mesh.prop(settings, "fov")
        mesh.prop(settings, "resolution")
        mesh.prop(settings, "edge_threshold")
        mesh.prop(settings, "mask")
        if settings.mask != "none":
            mesh.prop(settings, "feather")

        solid = layout.column(heading="Object")
        solid.prop(settings, "closure")
        if settings.closure == "solidify":
            solid.prop(settings, "thickness")
        solid.prop(settings, "height")
        if not settings.height:
            solid.prop(settings, "width")
        if settings.depth_source != "DEPTH_MAP" and not (settings.height or settings.width):
            solid.label(text="A photo has no scale: give a real height or width.", icon="INFO")
        solid.prop(settings, "target_faces")
        solid.prop(settings, "smooth")
        solid.prop(settings, "apply_finish")

        layout.operator("image_to_mesh.generate", icon="MESH_GRID")

"""Objects from generative image-to-3D models, placed on their photos and textured from them.

A generator (Hunyuan3D-2, TripoSR) returns a mesh in its own canonical frame (+X right, +Y up, +Z towards the
viewer of the input image, about [-1, 1]^3) and no camera, or only the one it assumed. This package finds the camera that took each photo
by matching the mesh's silhouette to the subject mask, then bakes the photos onto the mesh's UV atlas:

  view.py         a pinhole camera placed in the object frame (intrinsics + rotation + position)
  rasterise.py    a vectorised numpy triangle rasteriser: coverage, depth + face id, barycentrics
  camera_fit.py   fit_camera / fit_views: the view(s) whose silhouette best matches the mask(s); refine_camera:
                  a generator's own input view, its scale and offset refined (TripoSR)
  texture_bake.py bake_texture: photos -> UV texture and vertex colours, unseen parts filled (from the
                  generator's own colours where it has them)

Pure numpy + OpenCV; no bpy (see the layering test).
"""

"""Photo in, geometry out: pure Python + numpy (+ ONNX Runtime, OpenCV). Never imports bpy.

    pipeline.py     the one entry point, image_to_mesh(): a dispatcher over backends
    settings.py     every user setting, declared once (Blender properties and CLI options derive from it)
    record.py       MeshRecord and its typed Report: the one value that crosses into Blender
    record_files.py a MeshRecord as a file, to cross a process boundary
    errors.py       InputError: a user mistake, worded as one sentence
    runtime/        model cards and their files, ONNX Runtime sessions and pre-processing, jobs and workers
    depth/          the depth backend: depth maps, depth models, their kinds and camera
    masks/          the subject mask (background removal)
    geometry/       cameras, the grid mesh, its depth edges and cuts, occlusion fill, closed objects
    photo/          loading photos, the photo check, the photo as every backend gets it
"""

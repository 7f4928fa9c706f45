"""Install a built extension zip into an empty Blender user folder and use it, as a new user would.

Run in its own process (it must not share Blender with the test session, which has the checkout enabled):
    python tests/install_zip.py ZIP PHOTO MODELS_FOLDER OUT_FOLDER
The photo is converted by the operator with the MiDaS card's model from MODELS_FOLDER. Prints one JSON object:
the installed folder, the operator's result, the mesh, and where onnxruntime, OpenCV and Pillow came from.
"""

import json
import os
import sys
import tempfile
from pathlib import Path

home = tempfile.mkdtemp(prefix="image-to-mesh-install-")
os.environ["BLENDER_USER_RESOURCES"] = os.path.join(home, "user")
os.environ["XDG_CACHE_HOME"] = os.path.join(home, "cache")

import bpy  # noqa: E402

zip_path, photo, models, out = sys.argv[1:5]
bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
installed = Path(bpy.utils.user_resource("EXTENSIONS", path="user_default")) / "image_to_mesh"
addon = "bl_ext.user_default.image_to_mesh"
bpy.context.preferences.addons[addon].preferences.models_folder = models

bpy.ops.wm.read_homefile(use_empty=True)
result = bpy.ops.image_to_mesh.generate(photo_path=photo, method="model", model="midas-v21-small")
mesh_vertices = [len(o.data.vertices) for o in bpy.context.scene.objects if o.type == "MESH"]
cameras = [o.name for o in bpy.context.scene.objects if o.type == "CAMERA"]
bpy.ops.wm.save_as_mainfile(filepath=os.path.join(out, "installed.blend"))
# Offline object: the U²-Net-p that the zip carries finds the subject, no download.
bpy.ops.wm.read_homefile(use_empty=True)
inflated = bpy.ops.image_to_mesh.generate(photo_path=photo, method="inflate", height=0.1)

import cv2  # noqa: E402
import onnxruntime  # noqa: E402
import PIL  # noqa: E402

print(json.dumps({
    "home": home,
    "installed": str(installed),
    "enabled": addon in bpy.context.preferences.addons,
    "operator": sorted(result),
    "inflate": sorted(inflated),
    "mesh_vertices": mesh_vertices,
    "cameras": cameras,
    "modules": {m.__name__: m.__file__ for m in (onnxruntime, cv2, PIL)},
}))

"""Install a built extension zip into an empty Blender user folder and use it, as a new user would.

Run in its own process (it must not share Blender with the test session, which has the checkout enabled):
    python tests/install_zip.py ZIP PHOTO DEPTH_MAP OUT_FOLDER
Prints one JSON object: the installed folder, the operator's result and the mesh it made.
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

zip_path, photo, depth_map, out = sys.argv[1:5]
bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
installed = Path(bpy.utils.user_resource("EXTENSIONS", path="user_default")) / "image_to_mesh"

bpy.ops.wm.read_homefile(use_empty=True)
result = bpy.ops.image_to_mesh.generate(photo_path=photo, depth_source="DEPTH_MAP", depth_path=depth_map)
meshes = [o for o in bpy.context.scene.objects if o.type == "MESH"]
bpy.ops.wm.save_as_mainfile(filepath=os.path.join(out, "installed.blend"))
print(json.dumps({
    "installed": str(installed),
    "enabled": "bl_ext.user_default.image_to_mesh" in bpy.context.preferences.addons,
    "operator": sorted(result),
    "mesh_vertices": [len(o.data.vertices) for o in meshes],
    "cameras": [o.name for o in bpy.context.scene.objects if o.type == "CAMERA"],
}))

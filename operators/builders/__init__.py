"""MeshRecord -> Blender datablocks and files: the only code that turns numbers into meshes (mesh.py),
materials (material.py), cameras (camera.py) and objects (objects.py), finishes them (finish.py; base meshes:
remesh.py), writes them out (export.py), and the CLI's unit of work (convert.py)."""

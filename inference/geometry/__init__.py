"""Numbers to geometry: the photo's camera (camera.py), depth on the pixel grid to a mesh without faces across
discontinuities (grid_mesh.py), and a front surface closed into a watertight object (closure.py)."""

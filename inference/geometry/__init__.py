"""Numbers to geometry: the photo's camera (camera.py), depth on the pixel grid to a mesh (grid_mesh.py) cut
along depth edges with blurred ramps snapped onto their surfaces (depth_edges.py) and the background continued
under every cut (occlusion_fill.py), and a front surface closed into a watertight object (closure.py)."""

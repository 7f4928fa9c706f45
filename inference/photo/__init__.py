"""The photo: loading it upright and bounded in size (photo.py), the photographer's checklist (quality.py), and
the photo as every backend gets it, subject found and checked (prepared.py)."""

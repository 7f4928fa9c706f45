"""The depth backend (backend.py): depth from a file (files.py), a model (sources.py picks and runs it,
predict.py holds each family's contract, affine_points.py recovers MoGe's camera, upsample.py brings the
prediction to the mesh's resolution along the photo's edges), read as the kind it is (kinds.py)."""

"""Batches of many photos: read a folder, a glob or a manifest (source.py), keep a journal in the output folder
so that a run can be resumed (journal.py), and convert the photos in worker processes (workers.py, worker.py),
driven by run.py. Blender's side of one conversion stays operators/builders/convert.py's convert_file."""

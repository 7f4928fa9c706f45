"""Running models: the registry of cards (cards.py, model_cards.toml), their verified files (store.py), how a
run finds them (access.py), ONNX Runtime sessions (onnx_session.py) and inputs (preprocess.py), and the jobs
that run work off Blender's main thread or in a worker process (jobs.py, worker.py)."""

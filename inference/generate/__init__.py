"""Generative image-to-3D: object generators that run in their own Python process, never in Blender's.

worker_env     the generator's virtual environment: what it downloads, creating, checking, removing it
worker_client  Blender's side: starts the worker, sends requests, reads progress, cancels, loads the mesh
worker_main    the worker process's JSON-lines loop (run by the environment's Python)
hunyuan        Hunyuan3D-2 shape generation with hy3dgen (worker side only)
torchvision_stand_in  the torchvision transforms hy3dgen needs, without torchvision (worker side only)
shape_models   model cards -> the model folders a request names

Only worker_env, worker_client and shape_models are imported in Blender (standard library + numpy); the others
import torch and run in the worker.
"""

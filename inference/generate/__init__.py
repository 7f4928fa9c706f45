"""Generative image-to-3D: object generators that run in their own Python process, never in Blender's.

backend        the "generate" backend: photo -> worker -> camera fit -> baked texture -> MeshRecord
worker_env     the generator's virtual environment: what it downloads, creating, checking, removing it
worker_client  Blender's side: starts the worker, sends requests, reads progress, cancels, loads the mesh; a pool
               keeps workers warm between runs
worker_main    the worker process's JSON-lines loop (run by the environment's Python)
hunyuan        Hunyuan3D-2 shape generation with hy3dgen (worker side only)
triposr        TripoSR: our own implementation of the authors' inference, equal to their code (worker side only)
shape_output   what both generators return (Shape), and the steps they share (worker side only)
torchvision_stand_in  the torchvision transforms hy3dgen needs, without torchvision (worker side only)
shape_models   model cards -> the model folders a request names

Only backend, worker_env, worker_client, shape_models and shape_settings are imported in Blender (standard library
+ numpy); the others run in the worker (worker_main picks hunyuan or triposr by the request's model family).
"""

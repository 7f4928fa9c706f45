"""The driver's side of a batch on a Ray cluster (`--ray ADDRESS|auto`): one Ray task per photo.

Ray is optional (requirements/ray.txt); nothing of it enters inference/. Each task runs in a Ray worker process
that loads this extension from the same path as the driver's (every node has it installed there: the same
container image, a shared folder) and keeps its models for the photos that follow. A task declares what its method
needs: a CPU, the memory the photo's estimate asks, and a GPU for a model or generator run when the cluster has
GPUs and --device asks for one. A task whose worker or node dies is run again elsewhere (MAX_RETRIES). Outputs
are written by the workers into FOLDER, which every node sees (a shared path), or with --ray-return handed back and
written by the driver, all of a photo's files together.
"""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from pathlib import Path

from ..inference.errors import InputError

MAX_RETRIES = 3  # another node, another worker: a photo that kills every worker it meets fails after these
INSTALL = "pip install ray==2.60.0"
GPU_DEVICES = ("cuda", "directml")


@contextmanager
def cluster(address: str | None):
    """ray, connected to the cluster at `address` ("auto": the one this machine belongs to) until the end of the
    block; None without an address."""
    if not address:
        yield None
        return
    try:
        import ray
    except ImportError as err:
        raise InputError(f"--ray needs Ray, which is not installed: {INSTALL} (into the Python that runs "
                         "cli.py, on every node of the cluster).") from err
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise InputError(f"Cannot reach the Ray cluster at '{address}': {str(err).splitlines()[0]}") from err
    finally:  # Ray's own SIGTERM handler exits at once: the CLI's stops the batch the way it promises
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    # The workers load the extension from its path (an installed extension's folder is not on their sys.path):
    # _convert_here travels by value, not as a module's name.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        yield ray
    finally:
        ray.shutdown()


def convert_on_ray(ray, tasks: list, cli_path: Path, hello: dict, request_of, memory_of, return_files: bool,
                   answered, interrupts) -> dict:
    """Run each task on the cluster (memory_of(task): the bytes it may need); answered(task, event) for each, in this
    thread, as they finish. Returns what the cluster offered (CPUs, GPUs, nodes)."""
    cluster = ray.cluster_resources()
    use_gpu = cluster.get("GPU", 0) >= 1 and hello["runtime"]["device"] in GPU_DEVICES
    remote = ray.remote(max_retries=MAX_RETRIES, retry_exceptions=False)(_convert_here)
    running = {}
    for task in tasks:
        options = {"num_cpus": 1, "memory": memory_of(task)}
        if use_gpu and task.settings.method in ("auto", "model", "generate") and task.depth_map is None:
            options["num_gpus"] = 1
        request = request_of(task)
        if return_files:
            request = dict(request, outputs=[Path(o).name for o in request["outputs"]])
        ref = remote.options(**options).remote(str(cli_path), hello, request, return_files)
        running[ref] = task
    try:
        while running:
            interrupts.checkpoint()  # Ctrl-C and SIGTERM stop the batch here, never inside Ray's own calls
            with interrupts.shielded():  # a photo taken from Ray is journalled before the batch can stop
                done, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
                for ref in done:
                    task = running.pop(ref)
                    try:
                        event = ray.get(ref)
                    except ray.exceptions.RayError as err:  # its workers died, MAX_RETRIES + 1 times
                        event = {"event": "error",
                                 "message": f"Every Ray worker that converted it died ({type(err).__name__})."}
                    if return_files and event["event"] == "result":
                        event = _written_here(task, event)
                    answered(task, event)
    finally:
        with interrupts.shielded():
            for ref in running:
                ray.cancel(ref)
    return {"cpus": cluster.get("CPU", 0), "gpus": cluster.get("GPU", 0), "nodes": len(ray.nodes())}


def _written_here(task, event: dict) -> dict:
    """--ray-return: the files a worker sent back, moved into place together, as its own outputs would have been."""
    from ..operators.builders.export import StagedOutputs

    folder = task.outputs[0].parent
    files = event.pop("files")
    with StagedOutputs(task.outputs) as staged:
        for name, data in files.items():
            staged.write(folder / name, lambda path, data=data: path.write_bytes(data))
        written = staged.commit()
    event["result"] = dict(event["result"], outputs=[str(f) for f in written])
    return event


def _convert_here(cli_path: str, hello: dict, request: dict, return_files: bool) -> dict:
    """In a Ray worker: this extension loaded from `cli_path` (once per worker process), the photo converted."""
    import importlib.util
    import sys

    cli = sys.modules.get("image_to_mesh_cli")
    if cli is None:
        spec = importlib.util.spec_from_file_location("image_to_mesh_cli", cli_path)
        cli = importlib.util.module_from_spec(spec)
        sys.modules["image_to_mesh_cli"] = cli
        spec.loader.exec_module(cli)
        cli.load_package()
    from image_to_mesh.batches.worker import convert_here

    return convert_here(cli, hello, request, return_files)




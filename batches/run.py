"""`cli.py --batch SOURCE -o FOLDER`: every photo of SOURCE converted once into FOLDER, resumably.

The journal (journal.py) says what is done: running the same command again converts only what is not, or what
changed (the photo, its depth map, its settings, the formats); `--retry-failed` tries failed photos again. The
photos go to `--jobs` worker processes (workers.py); each answer is journalled as it comes, after the photo's
outputs are all in place.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..inference.errors import InputError
from ..inference.memory import BPY_IMPORT, HEADROOM, MeshPlan, available_memory, estimate_peak
from ..inference.runtime.cards import model_card
from ..inference.settings import MeshSettings, RuntimeSettings
from .cluster import cluster, convert_on_ray
from .journal import Journal, input_key
from .source import read_source
from .worker import request_of
from .workers import convert_in_workers, worker_command

TYPICAL_PHOTO = (4032, 3024)  # 12 megapixels: a phone's or a catalogue camera's photo, for the memory estimate


@dataclass
class Task:
    name: str  # the photo's name: its outputs' and its journal entry's
    photo: Path
    depth_map: Path | None
    settings: MeshSettings
    outputs: list[Path]
    key: str = ""


def run_batch(args, settings: MeshSettings, formats: list[str], outcome: dict, interrupts, cli) -> int:
    """Convert the batch `args.batch` into the folder `args.output`; the summary goes into `outcome["batch"]`."""
    folder = _output_folder(args)
    tasks = _tasks(read_source(args.batch), settings, formats, folder)
    outcome["inputs"] = [{"photo": str(t.photo), "depth_map": t.depth_map and str(t.depth_map)} for t in tasks]
    jobs = None if args.ray else _jobs(args.jobs, [t.settings for t in tasks], outcome)
    summary = outcome["batch"] = {"photos": len(tasks), "converted": 0, "skipped": 0, "failed": 0,
                                  "failed_before": 0, "jobs": jobs, "journal": None, "seconds": 0.0}
    started = time.perf_counter()
    with cluster(args.ray) as ray, Journal(folder) as journal:
        summary["journal"] = str(journal.path)
        todo = []
        for task in tasks:
            interrupts.checkpoint()
            task.key = input_key(task.photo, task.depth_map, asdict(task.settings), formats)
            failed = journal.failed_before(task.name, task.key)
            if journal.is_done(task.name, task.key):
                summary["skipped"] += 1
            elif failed and not args.retry_failed:
                summary["failed_before"] += 1
                outcome["failed"].append({"photo": str(task.photo), "error": failed["error"], "before": True})
            else:
                todo.append(task)

        def answered(task: Task, event: dict) -> None:
            missing = event["event"] == "result" and not all(map(os.path.isfile, event["result"]["outputs"]))
            if missing:  # written on another machine into its own folder of that name
                event = {"event": "error", "message": f"Its outputs were written on another machine: '{folder}' is not "
                                                      "shared by the cluster's nodes (use a shared folder, or --ray-return)."}
            with interrupts.shielded():
                if event["event"] == "result":
                    journal.record_done(task.name, str(task.photo), task.key, event["result"]["outputs"])
                    outcome["results"].append(event["result"])
                    summary["converted"] += 1
                else:
                    journal.record_failed(task.name, str(task.photo), task.key, event["message"])
                    outcome["failed"].append({"photo": str(task.photo), "error": cli._fail(event["message"])})
                    summary["failed"] += 1
            _progress(summary, len(todo), started)

        hello = {"runtime": asdict(cli.settings_of(args, RuntimeSettings)), "online": args.online,
                 "accept_license": args.accept_license}
        request = lambda t: request_of(t.photo, t.depth_map, t.outputs, t.settings)  # noqa: E731
        try:
            if todo and ray is not None:
                summary["ray"] = {"address": args.ray}
                summary["ray"].update(convert_on_ray(ray, todo, Path(cli.__file__), hello, request,
                                                     lambda t: worker_memory(t.settings), args.ray_return, answered,
                                                     interrupts))
            elif todo:
                convert_in_workers(todo, jobs, worker_command(Path(cli.__file__)), hello, request, answered, interrupts)
        finally:
            summary["seconds"] = round(time.perf_counter() - started, 3)
            _print_summary(summary)
    if not outcome["failed"]:
        return 0
    return 3 if summary["converted"] + summary["skipped"] else 2


def _output_folder(args) -> Path:
    if not args.output or len(args.output) != 1 or Path(args.output[0]).suffix:
        raise InputError("A batch writes into one folder: give it with -o FOLDER (once, a name without an extension).")
    folder = Path(args.output[0])
    if folder.exists() and not folder.is_dir():
        raise InputError(f"Cannot write into '{folder}': it is a file, not a folder.")
    return folder


def _tasks(photos, settings: MeshSettings, formats: list[str], folder: Path) -> list[Task]:
    """Each photo's task, its own settings checked: every refusal comes before any work."""
    tasks, names = [], {}
    for item in photos:
        if not item.photo.is_file():
            raise InputError(f"The photo '{item.photo}' does not exist" + (f" ({item.where})." if item.where else "."))
        if item.depth_map is not None and not item.depth_map.is_file():
            raise InputError(f"The depth map '{item.depth_map}' does not exist ({item.where}).")
        name = item.photo.stem
        if name in names:
            raise InputError(f"'{names[name]}' and '{item.photo}' have the same name, so their outputs would "
                             "overwrite each other.")
        names[name] = item.photo
        own = replace(settings, **item.settings)
        try:
            own.check()
        except InputError as err:
            raise InputError(f"{err} ({item.where})") from err
        tasks.append(Task(name, item.photo, item.depth_map, own, [folder / f"{name}{fmt}" for fmt in formats]))
    return tasks


def _jobs(asked: str, settings: list[MeshSettings], outcome: dict) -> int:
    """--jobs N, or `auto`: as many workers as there are cores and as the memory takes for the heaviest photo."""
    fit = max(1, min(os.cpu_count() or 1, jobs_that_fit(settings)))
    if asked == "auto":
        return fit
    try:
        jobs = int(asked)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise InputError(f"Give --jobs as a number of workers (1 or more) or auto, not '{asked}'.")
    if jobs > fit:
        outcome.setdefault("notices", []).append(
            f"{jobs} workers may not fit in memory (about {fit} do, each converting a 12-megapixel photo).")
    return jobs


def jobs_that_fit(settings: list[MeshSettings]) -> int:
    """How many workers the memory available holds, each converting a 12-megapixel photo at its settings."""
    available = available_memory()
    if available is None:
        return os.cpu_count() or 1
    return int(HEADROOM * available // max(map(worker_memory, settings)))


def worker_memory(settings: MeshSettings) -> int:
    """The memory of a worker converting a 12-megapixel photo at `settings`: bpy, the mesh's peak, the model."""
    model_bytes = 0
    if settings.method in ("auto", "model"):
        model_bytes = int(model_card(settings.model).size_mb * 1e6)
    return BPY_IMPORT + estimate_peak(MeshPlan(TYPICAL_PHOTO, settings.resolution, settings.texture_size, 1.0,
                                               settings.closure_mode != "none", model_bytes))


def _progress(summary: dict, total: int, started: float) -> None:
    done = summary["converted"] + summary["failed"]
    minutes = (time.perf_counter() - started) / 60
    rate = f", {summary['converted'] / minutes:.1f} photos/min" if minutes > 0 else ""
    end = "\n" if done >= total else ""
    print(f"\rBatch: {done} / {total} ({summary['failed']} failed){rate}", end=end, file=sys.stderr, flush=True)


def _print_summary(summary: dict) -> None:
    print(f"Batch: {summary['converted']} converted, {summary['skipped']} already done, {summary['failed']} failed"
          + (f", {summary['failed_before']} failed before (--retry-failed tries them again)"
             if summary["failed_before"] else "")
          + (f"; Ray at {summary['ray']['address']}" if "ray" in summary else f"; {summary['jobs']} workers")
          + f", {summary['seconds']:.1f} s; journal {summary['journal']}.",
          file=sys.stderr, flush=True)

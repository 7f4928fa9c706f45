"""Image to Mesh, headless.

    python cli.py PHOTO [PHOTO ...] -o OUT [options]                  (a Python with the bpy module)
    blender -b --python cli.py -- PHOTO [PHOTO ...] -o OUT [options]  (inside Blender)
    python cli.py --batch SOURCE -o FOLDER [--jobs N | --ray ADDRESS] [options]  (resumable: batches/)

OUT is a file (.glb .gltf .obj .fbx .usdc .usda .usd .ply .stl .blend) for one photo, or a folder (one file per
photo and --format). -o may be repeated. Every failure is one sentence on stderr (and, with --json, part of the
one JSON document on stdout). Exit status (README "Exit status"):
    0    every photo was converted
    1    an unexpected error (a bug) stopped the run before any photo was converted; the log file is named
    2    bad usage or bad input: nothing was converted
    3    some photos failed, the others were converted
    130  interrupted (Ctrl-C), 143 terminated (SIGTERM): each photo's outputs are all there or none is
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

PACKAGE = "image_to_mesh"


def load_package():
    """Import the extension this file belongs to, whatever its folder is called (a checkout, an install)."""
    root = Path(__file__).resolve().parent
    _add_extension_wheels(root)
    module = sys.modules.get(PACKAGE)
    if module is not None and Path(module.__file__).resolve().parent == root:
        return module
    spec = importlib.util.spec_from_file_location(PACKAGE, root / "__init__.py", submodule_search_locations=[str(root)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)
    return module


def _add_extension_wheels(root: Path) -> None:
    """In an installed extension, make the wheels it bundles importable, as Blender does for enabled
    extensions (<extensions>/.local/lib/pythonX.Y/site-packages), even before the extension is enabled."""
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    site = root.parent.parent / ".local" / "lib" / version / "site-packages"
    if site.is_dir() and str(site) not in sys.path:
        sys.path.append(str(site))


EXIT_OK, EXIT_BUG, EXIT_BAD_INPUT, EXIT_SOME_FAILED = 0, 1, 2, 3


class UsageError(Exception):
    """Bad usage, found by argparse: one sentence like an InputError (before the package can be loaded)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one sentence, not argparse's usage block
        raise UsageError(f"{message[0].upper()}{message[1:]} (see --help).")


class Interrupted(Exception):
    """Ctrl-C (SIGINT) or SIGTERM: the run stops at the next safe point."""

    def __init__(self, signum: int):
        self.signum = signum
        self.exit_status = 128 + signum
        what = "Interrupted (Ctrl-C)" if signum == signal.SIGINT else "Terminated"
        super().__init__(f"{what}: only the photos finished before it were written, each with all its outputs.")


class _Interrupts:
    """SIGINT and SIGTERM become Interrupted, raised where stopping is safe.

    The handler cancels running model work at once (downloads, ONNX Runtime runs) and raises straight away
    unless the run is inside Blender (building, exporting, moving outputs into place), where it is raised at
    the next checkpoint, or right after the outputs have been moved.
    """

    def __init__(self):
        self.signum: int | None = None
        self.cancel = None  # the models' CancelToken, once there is one
        self._shielded = 0

    def __enter__(self):
        self._previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *_):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, _frame):
        first = self.signum is None
        self.signum = self.signum or signum
        if first and self.cancel is not None:  # once: a second signal may land while the first is setting it
            self.cancel.set()
        if not self._shielded:
            raise Interrupted(self.signum)

    def checkpoint(self) -> None:
        if self.signum:
            raise Interrupted(self.signum)

    @contextmanager
    def shielded(self):
        """Signals wait for the end of the block (Blender's operators must not be interrupted midway)."""
        self._shielded += 1
        try:
            yield
        finally:
            self._shielded -= 1


def parse_args(argv: list[str]) -> argparse.Namespace:
    load_package()
    from image_to_mesh.inference.settings import MeshSettings, RuntimeSettings

    p = _Parser(prog="cli.py", description="Turn photos into textured, camera-aligned meshes, by a depth model, "
                                            "a depth map you have, or the subject's silhouette.")
    p.add_argument("photos", nargs="*", metavar="PHOTO", help="photo files (JPEG, PNG, TIFF, WebP, ...)")
    p.add_argument("-o", "--output", action="append", metavar="OUT",
                   help="output file for one photo, or a folder; repeat for several files")
    p.add_argument("--format", default="glb",
                   help="comma-separated formats written into a folder OUT (default: glb), e.g. glb,blend")
    p.add_argument("--depth-map", action="append", metavar="PATH",
                   help="the photo's depth map; repeat once per photo, or give a folder holding <photo name>.* "
                        "or <photo name>_depth.*")
    p.add_argument("--preset", metavar="NAME",
                   help="start from a preset: relief | product | backdrop (options given explicitly win)")
    p.add_argument("--view", action="append", metavar="VIEW=PATH",
                   help="a photo of the same object from another side, for a multi-view generator (--method generate "
                        "--generator hunyuan3d-2mv-turbo): left=PATH, back=PATH, right=PATH; front=PATH may stand for "
                        "PHOTO")
    p.add_argument("--list-models", action="store_true",
                   help="list the models: id, size, licence, commercial use, downloaded")
    p.add_argument("--online", action="store_true",
                   help="allow model downloads (as Blender's online access, or `blender --online-mode`, does)")
    p.add_argument("--check-photo", action="store_true",
                   help="only check the photos (resolution, sharpness, subject coverage, contrast, exposure, "
                        "highlights) and print the advice; nothing is written")
    p.add_argument("--json", action="store_true", help="print one JSON object describing the run on stdout")
    p.add_argument("--batch", metavar="SOURCE",
                   help="convert a batch into the folder -o, resumably (a journal in that folder): SOURCE is a folder, a "
                        "glob ('photos/*.jpg') or a manifest (.csv or .jsonl: photo, depth_map, settings of its own)")
    p.add_argument("--jobs", default="auto", metavar="N",
                   help="worker processes converting a batch's photos side by side (default auto: as many as the "
                        "cores and the memory take)")
    p.add_argument("--retry-failed", action="store_true", help="convert a batch's photos that failed before again")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="run a batch on a Ray cluster (pip install ray==2.60.0): its address (host:port), or auto for "
                        "the cluster this machine belongs to; -o must be a folder every node sees, or use --ray-return")
    p.add_argument("--ray-return", action="store_true",
                   help="with --ray: the workers send the outputs back and this machine writes them")
    p.add_argument("--setup-generator", action="store_true",
                   help="download and install object generation's Python environment (PyTorch for --device cpu, "
                        "cuda or mps, and Hunyuan3D-2's code; about 0.5-3 GB) into the models folder, from the "
                        "Python Package Index, then go on with any photos given")
    p.add_argument("--remove-generator", action="store_true",
                   help="delete object generation's Python environment (downloaded models stay)")
    for settings_class in (MeshSettings, RuntimeSettings):
        _add_setting_options(p, settings_class)
    return p.parse_args(argv)


def _add_setting_options(parser: argparse.ArgumentParser, settings_class) -> None:
    """One option per setting shown on the command line, from its declaration (inference/settings.py)."""
    from image_to_mesh.inference.settings import cli_flags, options, value_kind

    for name, default, opt in options(settings_class):
        if "cli" not in opt.shown_in:
            continue
        flags = cli_flags(name, opt)
        kind = value_kind(default, opt)
        help_text = opt.help.replace("%", "%%")  # argparse formats help with %
        if opt.choices and len(opt.choices) <= 8:
            help_text += ": " + " | ".join(c[0] for c in opt.choices)
        if kind is bool:
            parser.add_argument(*flags, dest=name, action="store_true", help=help_text)
            continue
        if default is not None:
            help_text += f" (default {default})"
        parser.add_argument(*flags, dest=name, type=kind, default=default, metavar=opt.metavar, help=help_text)


def _given(argv: list[str], settings_class) -> set[str]:
    """The settings whose options appear on the command line."""
    from image_to_mesh.inference.settings import cli_flags, options

    flags = {flag: name for name, _, opt in options(settings_class) for flag in cli_flags(name, opt)}
    return {flags[arg.split("=")[0]] for arg in argv if arg.split("=")[0] in flags}


def load_blender(interrupts: _Interrupts) -> None:
    """Import Blender, signals held until it is up: its start-up enables add-ons and prints, then swallows,
    whatever is raised inside them, so an interruption raised there was lost and could leave Blender half
    started."""
    with interrupts.shielded():
        import bpy  # noqa: F401
    interrupts.checkpoint()


def settings_of(args: argparse.Namespace, settings_class):
    from image_to_mesh.inference.settings import options

    return settings_class(**{name: getattr(args, name) for name, _, opt in options(settings_class) if "cli" in opt.shown_in})


def main(argv: list[str]) -> int:
    """Run the CLI; with --json, stdout is exactly one JSON document whatever happens."""
    if argv[:1] == ["--batch-worker"]:  # one of a batch's worker processes (batches/worker.py)
        load_package()
        from image_to_mesh.batches.worker import serve

        return serve(sys.modules[__name__])
    as_json = "--json" in argv
    outcome = {"results": [], "failed": []}
    with _Interrupts() as interrupts, _stdout_to_stderr(as_json):  # Blender logs on stdout, the JSON's
        try:
            status = _run(argv, outcome, interrupts)
        except (UsageError, Interrupted) as err:
            status = getattr(err, "exit_status", EXIT_BAD_INPUT)
            outcome["error"] = _fail(str(err))
        except Exception as err:  # InputError (the package's, loaded late) or a bug
            status, outcome["error"] = _error_status(err)
    if as_json:
        outcome["exit_status"] = status
        print(json.dumps(_finite(outcome), indent=2, allow_nan=False))
    return status


def _run(argv: list[str], outcome: dict, interrupts: _Interrupts) -> int:
    args = parse_args(argv)
    load_blender(interrupts)
    from image_to_mesh.inference.errors import InputError
    from image_to_mesh.inference.settings import MeshSettings, apply_preset

    if args.list_models:
        outcome["models"] = _list_models(args)
        return EXIT_OK
    if args.check_photo:
        return _check_photos(args, outcome)
    if args.setup_generator or args.remove_generator:
        _manage_generator(args, outcome, interrupts)
        if not args.photos:
            return EXIT_OK
    settings = settings_of(args, MeshSettings)
    if args.preset:
        settings = apply_preset(settings, args.preset, _given(argv, MeshSettings))
    settings.check()
    if args.ray and not args.batch:
        raise InputError("--ray runs a batch: give it with --batch SOURCE.")
    if args.batch:
        if args.photos or args.view or args.depth_map:
            raise InputError("A batch takes its photos and depth maps from SOURCE: give no PHOTO, --view or --depth-map.")
        from image_to_mesh.batches.run import run_batch

        return run_batch(args, settings, _formats(args), outcome, interrupts, sys.modules[__name__])
    views = _views(args)
    jobs = _plan(args)
    outcome["inputs"] = [{"photo": str(photo), "depth_map": depth and str(depth),
                          **({"views": {tag: str(path) for tag, path in views.items()}} if views else {})}
                         for photo, depth, _ in jobs]
    models = _model_access(args)
    try:
        return _convert(args, settings, jobs, views, models, outcome, interrupts)
    finally:
        models.workers.close()  # the generator's worker, if one ran, leaves with this run


def _convert(args, settings, jobs, views, models, outcome: dict, interrupts: _Interrupts) -> int:
    from image_to_mesh.inference.errors import InputError
    from image_to_mesh.inference.pipeline import check_sources
    from image_to_mesh.operators.builders.convert import convert_file

    for has_depth_map in {depth is not None for _, depth, _ in jobs}:
        check_sources(settings, has_depth_map, models, tuple(views))
    interrupts.cancel = models.cancel
    for photo, depth_map, outputs in jobs:
        interrupts.checkpoint()
        try:
            result = convert_file(photo, depth_map, outputs, settings, models, interrupts.checkpoint,
                                  interrupts.shielded, views)
        except InputError as err:
            interrupts.checkpoint()  # a model run cancelled by the signal: report the interruption
            outcome["failed"].append({"photo": str(photo), "error": _fail(str(err))})
            continue
        except (Interrupted, KeyboardInterrupt):
            raise
        except Exception as err:  # a bug in one photo: say so, keep the details, go on with the others
            outcome["failed"].append({"photo": str(photo), "error": _fail(_unexpected(err, photo))})
            continue
        outcome["results"].append(result)
        if not args.json:
            _print_result(result)
    outcome.update(_totals(outcome["results"]))
    if not outcome["failed"]:
        return EXIT_OK
    return EXIT_SOME_FAILED if outcome["results"] else EXIT_BAD_INPUT


def _model_access(args):
    """Models for this run: the extension's models folder (or --cache-dir), downloads only when online, the
    object generator's worker kept warm for the run's photos."""
    import bpy
    from image_to_mesh.inference.generate.worker_client import WorkerPool
    from image_to_mesh.inference.runtime.cache import ResultCache
    from image_to_mesh.inference.settings import RuntimeSettings
    from image_to_mesh.operators.model_access import model_access

    if args.online:
        bpy.context.preferences.system.use_online_access = True  # this run only: preferences are not saved
    access = model_access(settings_of(args, RuntimeSettings), args.accept_license,
                          "downloads are off (allow them with --online)", WorkerPool(), ResultCache())
    access.progress, access.stage = _progress_line, _stage_line
    return access


def _progress_line(name: str, done: int, total: int) -> None:
    end = "\n" if total and done >= total else ""
    print(f"\rDownloading {name}: {done / 1e6:.1f} / {total / 1e6:.1f} MB", end=end, file=sys.stderr, flush=True)


def _stage_line(what: str, step: int, steps: int) -> None:
    end = "\n" if step >= steps else ""
    print(f"\r{what} {step} / {steps}", end=end, file=sys.stderr, flush=True)


def _manage_generator(args, outcome: dict, interrupts: _Interrupts) -> None:
    """--remove-generator, then --setup-generator: object generation's environment in the models folder."""
    from image_to_mesh.inference.generate.worker_env import create_environment, remove_environment
    from image_to_mesh.inference.runtime.jobs import CancelToken
    from image_to_mesh.inference.settings import RuntimeSettings
    from image_to_mesh.operators.model_access import generator_folder

    runtime = settings_of(args, RuntimeSettings)
    folder = generator_folder(runtime)
    outcome["generator"] = {"folder": str(folder)}
    if args.remove_generator:
        outcome["generator"]["removed_mb"] = remove_environment(folder)
        print(f"Removed object generation from {folder}.", file=sys.stderr)
    if args.setup_generator:
        interrupts.cancel = CancelToken()
        device = {"coreml": "mps"}.get(runtime.device, runtime.device)  # Apple's GPU: Core ML here, MPS in PyTorch
        with interrupts.shielded():  # Ctrl-C cancels pip, and the half-made environment is removed first
            environment = create_environment(folder, device, runtime.generator_python,
                                             lambda line: print(line, file=sys.stderr), interrupts.cancel)
        interrupts.checkpoint()
        outcome["generator"].update(device=environment.device, torch=environment.torch_version,
                                    lock=environment.lock)


def _check_photos(args, outcome: dict) -> int:
    """The photographer's checklist for each photo, before any conversion."""
    from image_to_mesh.inference.errors import InputError
    from image_to_mesh.inference.photo.photo import load_photo
    from image_to_mesh.inference.photo.prepared import PHOTO_CHECK_SIDE, check_photo
    from image_to_mesh.inference.photo.quality import format_quality

    if not args.photos:
        raise InputError("Give at least one photo to check.")
    from image_to_mesh.operators.model_access import BUNDLED_U2NETP, u2netp_hint

    outcome["quality"] = {}
    for path in args.photos:
        try:
            report = check_photo(load_photo(path, max_side=PHOTO_CHECK_SIDE), BUNDLED_U2NETP, u2netp_hint())
        except InputError as err:
            outcome["failed"].append({"photo": path, "error": _fail(str(err))})
            continue
        outcome["quality"][path] = report
        if not args.json:
            print(f"{path}:")
            for line in format_quality(report):
                print(f"  {line}")
    if not outcome["failed"]:
        return EXIT_OK
    return EXIT_SOME_FAILED if outcome["quality"] else EXIT_BAD_INPUT


def _list_models(args) -> list[dict]:
    from image_to_mesh.inference.runtime.cards import model_cards

    store = _model_access(args).store
    models = []
    for card in model_cards().values():
        downloaded = bool(store.find(card, verify=False))
        models.append({"id": card.id, "name": card.name, "task": card.task, "size_mb": card.size_mb,
                       "license": card.license, "commercial": card.commercial, "downloaded": downloaded,
                       "best_for": card.best_for})
        if not args.json:
            print(f"{card.id}  {card.size_mb:g} MB  {card.license}  commercial {'yes' if card.commercial else 'no'}  "
                  f"downloaded {'yes' if downloaded else 'no'}  {card.task}: {card.best_for}")
    return models


def _views(args) -> dict[str, Path]:
    """--view TAG=PATH: the photos of one object from other sides, by view; "front" becomes the photo (args.photos)."""
    from image_to_mesh.inference.errors import InputError

    views = {}
    for given in args.view or []:
        tag, equals, path = given.partition("=")
        tag = tag.strip().lower()
        if not equals or not tag or not path:
            raise InputError(f"Give --view as VIEW=PATH (e.g. --view left=left.jpg), not '{given}'.")
        if tag in views:
            raise InputError(f"Two photos for the {tag} view: give one.")
        views[tag] = Path(path)
    front = views.pop("front", None)
    if front is not None:
        if args.photos:
            raise InputError("Give the front photo once: as PHOTO or as --view front=PATH.")
        args.photos = [str(front)]
    if views and len(args.photos) != 1:
        raise InputError("--view photos show one object: give its front photo (PHOTO or --view front=PATH), once.")
    for tag, path in views.items():
        if not path.is_file():
            raise InputError(f"The {tag} photo '{path}' does not exist.")
    return views


def _plan(args) -> list[tuple[Path, Path | None, list[Path]]]:
    """(photo, depth map or None, output files) for every photo, or InputError before anything is written."""
    from image_to_mesh.inference.depth.files import DEPTH_MAP_SUFFIXES
    from image_to_mesh.inference.errors import InputError
    from image_to_mesh.operators.builders.export import EXPORT_SUFFIXES

    if not args.photos:
        raise InputError("Give at least one photo (or --list-models).")
    if not args.output:
        raise InputError("Give an output file or folder with -o.")
    photos = [Path(p) for p in args.photos]
    for photo in photos:
        if not photo.exists():
            raise InputError(f"The photo '{photo}' does not exist.")
        if photo.is_dir():
            raise InputError(f"'{photo}' is a folder, not a photo: give the photos in it (e.g. '{photo / '*.jpg'}').")
    formats = _formats(args)
    stems = [p.stem for p in photos]
    if len(set(stems)) < len(stems):
        raise InputError("Two photos have the same name, so their outputs would overwrite each other.")

    # -o: a file when its name ends in a format's extension, a folder when it exists as one or has no extension.
    outputs = [[] for _ in photos]
    for out in map(Path, args.output):
        if out.is_dir() or not out.suffix:
            for i, photo in enumerate(photos):
                outputs[i] += [out / f"{photo.stem}{fmt}" for fmt in formats]
        elif out.suffix.lower() not in EXPORT_SUFFIXES:
            raise InputError(f"Cannot write '{out.name}': an output file must end in one of "
                             f"{' '.join(EXPORT_SUFFIXES)} (a folder is a name without an extension).")
        elif len(photos) > 1:
            raise InputError(f"Several photos need a folder for -o, not the file '{out}'.")
        else:
            outputs[0].append(out)
    for folder in dict.fromkeys(path.parent for paths in outputs for path in paths):
        _check_writable(folder)

    maps = [Path(p) for p in args.depth_map or []]
    if not maps:
        return [(photo, None, out) for photo, out in zip(photos, outputs)]
    if len(maps) == 1 and maps[0].is_dir():
        return [(photo, _find_depth_map(maps[0], photo, DEPTH_MAP_SUFFIXES), out) for photo, out in zip(photos, outputs)]
    if len(maps) != len(photos):
        raise InputError(f"{len(photos)} photos but {len(maps)} depth maps: give one --depth-map per photo, or a folder.")
    return list(zip(photos, maps, outputs))


def _formats(args) -> list[str]:
    """--format's suffixes (".glb", ...), checked."""
    from image_to_mesh.inference.errors import InputError
    from image_to_mesh.operators.builders.export import EXPORT_SUFFIXES

    formats = ["." + f.strip().lower().lstrip(".") for f in args.format.split(",") if f.strip()]
    for fmt in formats:
        if fmt not in EXPORT_SUFFIXES:
            raise InputError(f"Unknown format '{fmt[1:]}': use one of {' '.join(s[1:] for s in EXPORT_SUFFIXES)}.")
    return formats


def _check_writable(folder: Path) -> None:
    """Before any work: the output folder, or the nearest existing folder above it, must take new files."""
    from image_to_mesh.inference.errors import InputError

    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise InputError(f"Cannot write into '{folder}': '{existing}' is a file, not a folder.")
    times = os.stat(existing)
    try:  # a real try: permissions, read-only disks and virtual file systems all answer it (os.access does not)
        os.rmdir(tempfile.mkdtemp(prefix=".image_to_mesh-probe-", dir=existing))
        os.utime(existing, ns=(times.st_atime_ns, times.st_mtime_ns))  # and the folder looks untouched
    except OSError as err:
        raise InputError(f"Cannot write into '{folder}': {err.strerror or err} in '{existing}'.") from err


def _find_depth_map(folder: Path, photo: Path, suffixes) -> Path:
    from image_to_mesh.inference.errors import InputError

    for stem in (f"{photo.stem}_depth", f"{photo.stem}-depth", photo.stem):
        for suffix in suffixes:
            candidate = folder / f"{stem}{suffix}"
            if candidate.is_file() and candidate.resolve() != photo.resolve():
                return candidate
    raise InputError(f"No depth map for '{photo.name}' in '{folder}' (looked for {photo.stem}_depth.* and {photo.stem}.*).")


@contextmanager
def _stdout_to_stderr(active: bool):
    """Keep stdout for the JSON alone: Blender and its exporters print progress there, at C level too."""
    if not active:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _print_result(result: dict) -> None:
    outputs = ", ".join(result["outputs"])
    print(
        f"{result['inputs']['photo']} -> {outputs} ({result['vertices']:,} vertices, {result['faces']:,} faces, "
        f"{result['timings']['total']:.2f} s)"
    )
    for step in result["preparation"]:
        print(f"  prepared: {step['summary']}")
    for advice in result["quality"]["summary"]:
        print(f"  photo: {advice}")
    for notice in result["notices"]:
        print(f"  note: {notice}")


def _totals(results: list[dict]) -> dict:
    methods = sorted({r["method"] for r in results})
    return {
        "method": methods[0] if len(methods) == 1 else methods,  # what ran: one method, or each that did
        "vertices": sum(r["vertices"] for r in results),
        "faces": sum(r["faces"] for r in results),
        "outputs": [o for r in results for o in r["outputs"]],
        "timings": {"total": sum(r["timings"]["total"] for r in results)},
    }


def _finite(value):
    """`value` with every non-finite float as null: strict JSON has no Infinity or NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _error_status(err: Exception) -> tuple[int, str]:
    """A failure outside any photo: a user's mistake (InputError) is one sentence, anything else a bug."""
    try:
        from image_to_mesh.inference.errors import InputError
    except Exception:  # the package itself did not load: that is the bug
        InputError = ()
    if isinstance(err, InputError):
        return EXIT_BAD_INPUT, _fail(str(err))
    return EXIT_BUG, _fail(_unexpected(err))


def _unexpected(err: Exception, photo: Path | None = None) -> str:
    """Keep a bug's traceback in a log file and say so in one sentence."""
    log = Path(tempfile.gettempdir()) / f"image_to_mesh-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"{time.ctime()} {photo or ''}\n{traceback.format_exc()}\n")
    where = f" with '{photo}'" if photo else ""
    return f"Unexpected error{where} ({type(err).__name__}: {str(err).splitlines()[0][:120] if str(err) else ''}); details in {log}."


def _fail(message: str) -> str:
    print(f"image_to_mesh: {message}", file=sys.stderr, flush=True)
    return message


def _argv() -> list[str]:
    # Inside Blender (blender -b --python cli.py -- ...) the script's own arguments follow "--".
    return sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]


def _exit(status: int) -> None:
    """End the process with `status`. After Ctrl-C or SIGTERM a model run may have been stopped inside native code
    (ONNX Runtime's thread pools, a session still being created), whose teardown at interpreter exit can abort the
    process ("terminate called without an active exception") instead of exiting with the status: an interrupted
    run flushes what it printed and ends at once (its outputs are all in place or all gone already)."""
    if status in (128 + signal.SIGINT, 128 + signal.SIGTERM):
        bpy = sys.modules.get("bpy")
        if bpy is not None and bpy.app.tempdir:  # what Blender's own exit would have removed
            shutil.rmtree(bpy.app.tempdir, ignore_errors=True)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


if __name__ == "__main__":
    _exit(main(_argv()))

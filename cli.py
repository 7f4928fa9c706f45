"""Image to Mesh, headless.

    python cli.py PHOTO [PHOTO ...] -o OUT [options]                  (a Python with the bpy module)
    blender -b --python cli.py -- PHOTO [PHOTO ...] -o OUT [options]  (inside Blender)

OUT is a file (.glb .gltf .obj .fbx .usdc .usda .usd .ply .stl .blend) for one photo, or a folder (one file per
photo and --format). -o may be repeated. Exit status: 0 done, 2 bad usage or bad input (one sentence on stderr).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
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


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one sentence, not argparse's usage block
        self.exit(2, f"image_to_mesh: {message} (see --help).\n")


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
    p.add_argument("--list-models", action="store_true",
                   help="list the models: id, size, licence, commercial use, downloaded")
    p.add_argument("--online", action="store_true",
                   help="allow model downloads (as Blender's online access, or `blender --online-mode`, does)")
    p.add_argument("--check-photo", action="store_true",
                   help="only check the photos (resolution, sharpness, subject coverage, contrast, exposure, "
                        "highlights) and print the advice; nothing is written")
    p.add_argument("--json", action="store_true", help="print one JSON object describing the run on stdout")
    for settings_class in (MeshSettings, RuntimeSettings):
        _add_setting_options(p, settings_class)
    return p.parse_args(argv)


def _add_setting_options(parser: argparse.ArgumentParser, settings_class) -> None:
    """One option per setting shown on the command line, from its declaration (inference/settings.py)."""
    from image_to_mesh.inference.settings import options, value_kind

    for name, default, opt in options(settings_class):
        if "cli" not in opt.shown_in:
            continue
        flag = opt.flag or "--" + name.replace("_", "-")
        kind = value_kind(default, opt)
        help_text = opt.help
        if opt.choices and len(opt.choices) <= 8:
            help_text += ": " + " | ".join(c[0] for c in opt.choices)
        if kind is bool:
            parser.add_argument(flag, dest=name, action="store_true", help=help_text)
            continue
        if default is not None:
            help_text += f" (default {default})"
        parser.add_argument(flag, dest=name, type=kind, default=default, metavar=opt.metavar, help=help_text.replace("%", "%%"))


def settings_of(args: argparse.Namespace, settings_class):
    from image_to_mesh.inference.settings import options

    return settings_class(**{name: getattr(args, name) for name, _, opt in options(settings_class) if "cli" in opt.shown_in})


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    from image_to_mesh.inference.errors import InputError
    from image_to_mesh.inference.settings import MeshSettings

    settings = settings_of(args, MeshSettings)
    try:
        if args.list_models:
            return _list_models(args)
        if args.check_photo:
            return _check_photos(args)
        settings.check()
        jobs = _plan(args)
    except InputError as err:
        return _fail(str(err))

    results, failures = [], []
    with _stdout_to_stderr(args.json):  # importing Blender may log on stdout, which is the JSON's
        from image_to_mesh.operators.builders.convert import convert_file

        models = _model_access(args)
        for photo, depth_map, outputs in jobs:
            try:
                result = convert_file(photo, depth_map, outputs, settings, models)
            except InputError as err:
                failures.append({"photo": str(photo), "error": str(err)})
                _fail(str(err))
                continue
            results.append(result)
            if not args.json:
                _print_result(result)
    if args.json:
        print(json.dumps(_summary(jobs, results, failures), indent=2))
    return 2 if failures else 0


def _model_access(args):
    """Models for this run: the extension's models folder (or --cache-dir), downloads only when online."""
    import bpy
    from image_to_mesh.inference.settings import RuntimeSettings
    from image_to_mesh.operators.model_access import model_access

    if args.online:
        bpy.context.preferences.system.use_online_access = True  # this run only: preferences are not saved
    access = model_access(settings_of(args, RuntimeSettings), args.accept_license,
                          "downloads are off (allow them with --online)")
    access.progress = _progress_line
    return access


def _progress_line(name: str, done: int, total: int) -> None:
    end = "\n" if total and done >= total else ""
    print(f"\rDownloading {name}: {done / 1e6:.1f} / {total / 1e6:.1f} MB", end=end, file=sys.stderr, flush=True)


def _check_photos(args) -> int:
    """The photographer's checklist for each photo, before any conversion (InputError for unreadable ones)."""
    from image_to_mesh.inference.photo.photo import load_photo
    from image_to_mesh.inference.photo.prepared import PHOTO_CHECK_SIDE, check_photo
    from image_to_mesh.inference.photo.quality import format_quality

    with _stdout_to_stderr(args.json):
        from image_to_mesh.operators.model_access import BUNDLED_U2NETP, u2netp_hint

    reports = {}
    for path in args.photos:
        reports[path] = check_photo(load_photo(path, max_side=PHOTO_CHECK_SIDE), BUNDLED_U2NETP, u2netp_hint())
        if not args.json:
            print(f"{path}:")
            for line in format_quality(reports[path]):
                print(f"  {line}")
    if args.json:
        print(json.dumps({"quality": reports}, indent=2))
    return 0


def _list_models(args) -> int:
    from image_to_mesh.inference.runtime.cards import model_cards

    store = _model_access(args).store
    for card in model_cards().values():
        print(f"{card.id}  {card.size_mb:g} MB  {card.license}  commercial {'yes' if card.commercial else 'no'}  "
              f"downloaded {'yes' if store.find(card, verify=False) else 'no'}  {card.task}: {card.best_for}")
    return 0


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
    formats = ["." + f.strip().lower().lstrip(".") for f in args.format.split(",") if f.strip()]
    for fmt in formats:
        if fmt not in EXPORT_SUFFIXES:
            raise InputError(f"Unknown format '{fmt[1:]}': use one of {' '.join(s[1:] for s in EXPORT_SUFFIXES)}.")
    stems = [p.stem for p in photos]
    if len(set(stems)) < len(stems):
        raise InputError("Two photos have the same name, so their outputs would overwrite each other.")

    outputs = [[] for _ in photos]
    for out in map(Path, args.output):
        if out.suffix.lower() in EXPORT_SUFFIXES and not out.is_dir():
            if len(photos) > 1:
                raise InputError(f"Several photos need a folder for -o, not the file '{out}'.")
            outputs[0].append(out)
        elif out.suffix and not out.is_dir() and len(photos) == 1:
            raise InputError(f"Cannot write '{out.name}': the output must end in one of {' '.join(EXPORT_SUFFIXES)}.")
        else:
            for i, photo in enumerate(photos):
                outputs[i] += [out / f"{photo.stem}{fmt}" for fmt in formats]

    maps = [Path(p) for p in args.depth_map or []]
    if not maps:
        return [(photo, None, out) for photo, out in zip(photos, outputs)]
    if len(maps) == 1 and maps[0].is_dir():
        return [(photo, _find_depth_map(maps[0], photo, DEPTH_MAP_SUFFIXES), out) for photo, out in zip(photos, outputs)]
    if len(maps) != len(photos):
        raise InputError(f"{len(photos)} photos but {len(maps)} depth maps: give one --depth-map per photo, or a folder.")
    return list(zip(photos, maps, outputs))


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
    for advice in result["quality"]["summary"]:
        print(f"  photo: {advice}")
    for notice in result["notices"]:
        print(f"  note: {notice}")


def _summary(jobs, results: list[dict], failures: list[dict]) -> dict:
    methods = sorted({r["method"] for r in results})
    return {
        "inputs": [{"photo": str(photo), "depth_map": depth and str(depth)} for photo, depth, _ in jobs],
        "method": methods[0] if len(methods) == 1 else methods,  # what ran: one method, or each that did
        "vertices": sum(r["vertices"] for r in results),
        "faces": sum(r["faces"] for r in results),
        "outputs": [o for r in results for o in r["outputs"]],
        "timings": {"total": sum(r["timings"]["total"] for r in results)},
        "results": results,
        "failed": failures,
    }


def _fail(message: str) -> int:
    print(f"image_to_mesh: {message}", file=sys.stderr)
    return 2


def _argv() -> list[str]:
    # Inside Blender (blender -b --python cli.py -- ...) the script's own arguments follow "--".
    return sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]


if __name__ == "__main__":
    sys.exit(main(_argv()))

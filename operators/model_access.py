"""Where the extension keeps its models, and whether it may download: Blender's side of inference's ModelAccess.

Also what inference must not know: where the extension carries its bundled subject-mask model, and how a user
gets it back (a checkout fetches it; an installed zip carries it).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import bpy

from ..inference.generate.backend import expected_time
from ..inference.generate.worker_client import WorkerPool
from ..inference.errors import InputError
from ..inference.generate.worker_env import ENV_FOLDER_NAME, check_environment
from ..inference.runtime.access import ModelAccess
from ..inference.runtime.cache import ResultCache
from ..inference.runtime.cards import ModelCard, model_card
from ..inference.runtime.store import ModelStore
from ..inference.settings import RuntimeSettings
from .properties import settings_from

_EXTENSION_ID = "image_to_mesh"
EXTENSION_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_U2NETP = EXTENSION_ROOT / "models" / "u2netp.onnx"
_STATUS_SECONDS = 10.0  # the sidebar's model line is looked up at most this often (two folder scans)
_status: dict[tuple, tuple[float, object]] = {}
# The object generator's warm workers for this Blender session: closed when the extension is disabled.
GENERATOR_WORKERS = WorkerPool()
# Model outputs of this Blender session (and on disk when the preferences ask): re-meshing skips the model.
RESULTS = ResultCache()
CACHE_FOLDER_NAME = "cache"


def u2netp_hint() -> str:
    if (EXTENSION_ROOT / "scripts" / "fetch_u2netp.py").is_file():  # a checkout
        return "get it with `python scripts/fetch_u2netp.py models/u2netp.onnx` (or `make setup`)"
    return "reinstall the Image to Mesh extension from its zip, which carries it"


def models_folder() -> Path:
    """The extension's user folder for models, the same whether Blender or the CLI asks.

    Inside Blender that is bpy.utils.extension_path_user(...). The CLI imports this package under another
    name, so the same path is built from the repository the extension is installed in (its parent folder,
    or Blender's default "user_default" repository for a checkout).
    """
    package = __package__.rsplit(".", 1)[0]
    if package.startswith("bl_ext."):
        return Path(bpy.utils.extension_path_user(package, path="models", create=True))
    extensions = Path(bpy.utils.user_resource("EXTENSIONS"))
    repo = EXTENSION_ROOT.parent.name if EXTENSION_ROOT.parent.parent == extensions else "user_default"
    return extensions / ".user" / repo / _EXTENSION_ID / "models"


def chosen_models_folder(runtime: RuntimeSettings) -> Path:
    """The runtime settings' models folder, or the extension's."""
    return Path(bpy.path.abspath(runtime.models_folder)) if runtime.models_folder else models_folder()


def generator_folder(runtime: RuntimeSettings) -> Path:
    """Where object generation's Python environment lives: in the models folder."""
    return chosen_models_folder(runtime) / ENV_FOLDER_NAME


def model_access(runtime: RuntimeSettings, license_accepted: bool,
                 offline_reason: str = "Blender's online access is off (Preferences > System > Network)",
                 workers: WorkerPool = GENERATOR_WORKERS, cache: ResultCache = RESULTS) -> ModelAccess:
    """ModelAccess over the runtime settings' models folder (default: the extension's), downloading only while
    Blender's online access is on; model outputs kept in `cache` (on disk too when the settings ask)."""
    store = ModelStore(chosen_models_folder(runtime), allow_download=bpy.app.online_access,
                       offline_reason=offline_reason)
    cache.use_disk(cache_folder(runtime), runtime.cache_mb)
    return ModelAccess(store, runtime.device, runtime.threads, license_accepted, u2netp=BUNDLED_U2NETP,
                       u2netp_hint=u2netp_hint(), generator_folder=generator_folder(runtime), workers=workers,
                       cache=cache)


def cache_folder(runtime: RuntimeSettings) -> Path:
    """Where model outputs are kept on disk: in the models folder."""
    return chosen_models_folder(runtime) / CACHE_FOLDER_NAME


def preferences_runtime(context) -> RuntimeSettings:
    """The add-on's preferences (defaults when it is not registered, e.g. in the CLI)."""
    addon = context.preferences.addons.get(__package__.rsplit(".", 1)[0])
    return settings_from(addon.preferences, RuntimeSettings) if addon else RuntimeSettings()


def preferences_model_access(context, license_accepted: bool) -> ModelAccess:
    """ModelAccess from the add-on's preferences."""
    return model_access(preferences_runtime(context), license_accepted)


def model_status(context, model_id: str, task: str = "depth") -> str:
    """One line for the sidebar: is the model here, or what happens when it runs (cached: the panel redraws
    often, and finding a model scans two folders)."""
    store = preferences_model_access(context, False).store
    return _cached((model_id, str(store.folder), store.allow_download),
                   lambda: _status_line(model_card(model_id, task), store))


def generator_status(context) -> tuple[bool, str]:
    """Whether object generation is set up, and one line saying so (or what is wrong), cached like model_status."""
    ready, line, _device = _generator_look(context)
    return ready, line


def generator_time(context, card: ModelCard) -> str:
    """What one photo takes with `card` here, in words (its device: the environment's, the CPU when not set up)."""
    _ready, _line, device = _generator_look(context)
    return expected_time(card, device, os.cpu_count() or 1)


def _generator_look(context) -> tuple[bool, str, str]:
    folder = generator_folder(preferences_runtime(context))

    def look() -> tuple[bool, str, str]:
        try:
            environment = check_environment(folder)
        except InputError as err:
            return False, str(err), "cpu"
        device = environment.device if environment.accelerator_available else "cpu"
        return True, f"Set up for {environment.device.upper()} (PyTorch {environment.torch_version})", device

    return _cached(("generator", str(folder)), look)


def _cached(key: tuple, look):
    checked, value = _status.get(key, (0.0, None))
    if time.monotonic() - checked > _STATUS_SECONDS:
        value = look()
        _status[key] = (time.monotonic(), value)
    return value


def forget_model_status() -> None:
    """After a run (which may have downloaded a model), look again."""
    _status.clear()


def _status_line(card: ModelCard, store: ModelStore) -> str:
    if store.find(card, verify=False):
        return f"{card.license}, downloaded"
    if not store.allow_download:
        return f"Not downloaded; online access is off ({card.size_mb:g} MB)"
    return f"{card.license}, downloads {card.size_mb:g} MB on first use"

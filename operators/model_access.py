"""Where the extension keeps its models, and whether it may download: Blender's side of inference's ModelAccess.

Also what inference must not know: where the extension carries its bundled subject-mask model, and how a user
gets it back (a checkout fetches it; an installed zip carries it).
"""

from __future__ import annotations

import time
from pathlib import Path

import bpy

from ..inference.runtime.access import ModelAccess
from ..inference.runtime.cards import model_card
from ..inference.runtime.store import ModelStore
from ..inference.settings import RuntimeSettings
from .properties import settings_from

_EXTENSION_ID = "image_to_mesh"
EXTENSION_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_U2NETP = EXTENSION_ROOT / "models" / "u2netp.onnx"
_STATUS_SECONDS = 10.0  # the sidebar's model line is looked up at most this often (two folder scans)
_status: dict[tuple, tuple[float, str]] = {}


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


def model_access(runtime: RuntimeSettings, license_accepted: bool,
                 offline_reason: str = "Blender's online access is off (Preferences > System > Network)") -> ModelAccess:
    """ModelAccess over the runtime settings' models folder (default: the extension's), downloading only while
    Blender's online access is on."""
    folder = Path(bpy.path.abspath(runtime.models_folder)) if runtime.models_folder else models_folder()
    store = ModelStore(folder, allow_download=bpy.app.online_access, offline_reason=offline_reason)
    return ModelAccess(store, runtime.device, runtime.threads, license_accepted, u2netp=BUNDLED_U2NETP,
                       u2netp_hint=u2netp_hint())


def preferences_model_access(context, license_accepted: bool) -> ModelAccess:
    """ModelAccess from the add-on's preferences (defaults when it is not registered, e.g. in the CLI)."""
    addon = context.preferences.addons.get(__package__.rsplit(".", 1)[0])
    runtime = settings_from(addon.preferences, RuntimeSettings) if addon else RuntimeSettings()
    return model_access(runtime, license_accepted)


def model_status(context, model_id: str) -> str:
    """One line for the sidebar: is the model here, or what happens when it runs (cached: the panel redraws
    often, and finding a model scans two folders)."""
    store = preferences_model_access(context, False).store
    key = (model_id, str(store.folder), store.allow_download)
    checked, line = _status.get(key, (0.0, ""))
    if time.monotonic() - checked > _STATUS_SECONDS:
        line = _status_line(model_id, store)
        _status[key] = (time.monotonic(), line)
    return line


def forget_model_status() -> None:
    """After a run (which may have downloaded a model), look again."""
    _status.clear()


def _status_line(model_id: str, store: ModelStore) -> str:
    card = model_card(model_id)
    if store.find(card, verify=False):
        return f"{card.license}, downloaded"
    if not store.allow_download:
        return f"Not downloaded; online access is off ({card.size_mb:g} MB)"
    return f"{card.license}, downloads {card.size_mb:g} MB on first use"

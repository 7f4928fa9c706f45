"""Where the extension keeps its models, and whether it may download: Blender's side of inference.ModelAccess."""

from __future__ import annotations

from pathlib import Path

import bpy

from ..inference.depth.sources import ModelAccess
from ..inference.runtime.store import ModelStore
from ..inference.runtime.cards import model_card

_EXTENSION_ID = "image_to_mesh"


def models_folder() -> Path:
    """The extension's user folder for models, the same whether Blender or the CLI asks.

    Inside Blender that is bpy.utils.extension_path_user(...). The CLI imports this package under another
    name, so the same path is built from the repository the extension is installed in (its parent folder,
    or Blender's default "user_default" repository for a checkout).
    """
    package = __package__.rsplit(".", 1)[0]
    if package.startswith("bl_ext."):
        return Path(bpy.utils.extension_path_user(package, path="models", create=True))
    root = Path(__file__).resolve().parents[1]
    extensions = Path(bpy.utils.user_resource("EXTENSIONS"))
    repo = root.parent.name if root.parent.parent == extensions else "user_default"
    return extensions / ".user" / repo / _EXTENSION_ID / "models"


def model_store(
    folder: Path | None = None, offline_reason: str = "Blender's online access is off (Preferences > System > Network)"
) -> ModelStore:
    """A store over `folder` (default: the extension's), downloading only while Blender's online access is on."""
    return ModelStore(folder or models_folder(), allow_download=bpy.app.online_access, offline_reason=offline_reason)


def preferences_model_access(context, license_accepted: bool) -> ModelAccess:
    """ModelAccess from the add-on's preferences (defaults when it is not registered, e.g. in the CLI)."""
    addon = context.preferences.addons.get(__package__.rsplit(".", 1)[0])
    prefs = addon.preferences if addon else None
    folder = Path(bpy.path.abspath(prefs.models_folder)) if prefs and prefs.models_folder else None
    return ModelAccess(model_store(folder), prefs.device if prefs else "cpu", prefs.threads if prefs else 0,
                       license_accepted)


def model_status(context, model_id: str) -> str:
    """One line for the sidebar: is the model here, or what happens when it runs."""
    card = model_card(model_id)
    store = preferences_model_access(context, False).store
    if store.find(card, verify=False):
        return f"{card.license}, downloaded"
    if not store.allow_download:
        return f"Not downloaded; online access is off ({card.size_mb:g} MB)"
    return f"{card.license}, downloads {card.size_mb:g} MB on first use"

"""A function run on a worker thread while Blender stays responsive; the operator's timer polls it.

The worker must touch numpy and ONNX Runtime only, never bpy (bpy is not thread-safe).
"""

from __future__ import annotations

import threading
import traceback

from ..inference.errors import InputError


class BackgroundJob:
    def __init__(self):
        self.cancel = threading.Event()
        self.status = "Starting"
        self.fraction = 0.0
        self.result = None
        self.error: str | None = None
        self._thread: threading.Thread | None = None

    def start(self, function, *args) -> None:
        self._thread = threading.Thread(target=self._run, args=(function, *args), daemon=True)
        self._thread.start()

    @property
    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def progress(self, name: str, done: int, total: int) -> None:
        """Download progress, in the shape inference.runtime.store reports it."""
        self.status = f"Downloading {name}: {done / 1e6:.0f} / {total / 1e6:.0f} MB (Esc cancels)"
        self.fraction = done / total if total else 0.0

    def _run(self, function, *args) -> None:
        try:
            self.result = function(*args)
        except InputError as err:
            self.error = str(err)
        except Exception:  # a bug, not a user mistake: keep the traceback for the console
            traceback.print_exc()
            self.error = "Image to Mesh failed unexpectedly; the system console has the details."

"""Blender's side of the object generator: start the worker process, send it requests, read its events.

Runs inside Blender: the standard library and numpy only, never torch. The worker (worker_main.py, run by the
generator environment's Python) speaks JSON lines over its stdin/stdout — no socket — and hands meshes back as
.npz files in a private temporary folder (mode 0700) that this client owns and deletes. The worker stays warm
between requests (the model loaded once) and exits by itself after an idle timeout; the next request starts a
new one. Cancel kills the worker's whole process tree at once (its own session / process group). A crash, an
out-of-memory kill or a missing environment is one sentence (InputError), never a hang or a traceback.

    worker = GeneratorWorker(check_environment(folder))
    mesh = worker.generate(ShapeRequest(image=..., dit_folder=...), progress=print, cancel=event)
    worker.close()
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..runtime.processes import kill_process_tree, new_group
from .shape_settings import ShapeSettings
from .worker_env import SETUP_FIX, WorkerEnvironment

PROTOCOL = 2  # worker_main.PROTOCOL: both sides check it (2: requests name their model family)
WORKER_SCRIPT = Path(__file__).resolve().with_name("worker_main.py")
READY_TIMEOUT_S = 120.0  # a cold start imports numpy, PIL and xatlas, not torch (0.2 s here): this is generous


class GenerationCancelled(InputError):
    """The user cancelled; the worker and everything it started are gone, and nothing was kept."""


@dataclass(frozen=True, kw_only=True)
class ShapeRequest(ShapeSettings):
    """One photo -> one mesh. `family` (a card's generator family) says which code runs the model folder:
    "hunyuan3d-2": Hunyuan3D-2's layout (config.yaml + model.fp16.safetensors), plus the turbo VAE's folder for
    FlashVDM models; "triposr": config.yaml + model.ckpt, whose SHA-256 must be `checkpoint_sha256`.
    For TripoSR, octree_resolution is the marching-cubes grid's side and num_chunks the points per density query;
    steps, guidance, seed, vae_folder and flashvdm do not apply."""

    image: Path  # RGBA PNG: the photo with its background removed (alpha = subject mask); the front view
    dit_folder: Path  # the model folder (Hunyuan3D-2: its DiT folder)
    vae_folder: Path | None = None
    flashvdm: bool = False
    device: str = "cpu"
    # A multi-view model's other photos, RGBA like `image`: {"left" | "back" | "right": path}.
    views: dict[str, Path] = field(default_factory=dict)
    family: str = "hunyuan3d-2"
    checkpoint_sha256: str = ""  # TripoSR: the checkpoint is hashed before it is read

    def params(self) -> dict:
        return _plain(asdict(self))


@dataclass(frozen=True)
class Progress:
    stage: str  # "load", "diffusion", "decode", "cleanup", "reduce", "uv"; TripoSR: "triplane", "density",
    # "surface", "colour"
    step: int
    steps: int
    seconds: float  # since the request began


@dataclass
class GeneratedMesh:
    """+X right, +Y up, +Z towards the viewer of the photo: Hunyuan3D-2's about [-1.01, 1.01]^3, TripoSR's within
    [-0.87, 0.87]^3 (its report's "input_view": the camera the photo was seen from, and the photo's square)."""

    vertices: np.ndarray  # (N, 3) float32
    faces: np.ndarray  # (F, 3) int32, counter-clockwise seen from outside
    uvs: np.ndarray | None  # (N, 2) float32 in [0, 1], (0, 0) bottom-left; None when not asked for
    report: dict = field(default_factory=dict)  # what ran: octree resolution, counts, seconds per stage
    colours: np.ndarray | None = None  # (N, 3) float32 in [0, 1]: TripoSR's own colour field at each vertex


class GeneratorWorker:
    def __init__(self, environment: WorkerEnvironment, idle_timeout_s: float = 600.0, threads: int = 0):
        self.environment = environment
        self.idle_timeout_s, self.threads = idle_timeout_s, threads
        self._process: subprocess.Popen | None = None
        self._events: queue.Queue = queue.Queue()
        self._folder: Path | None = None
        self._next_id = 0
        self._cancelled = False
        self._busy = threading.Lock()

    # --- the process ---------------------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path | None:
        return self._folder / "worker.log" if self._folder else None

    def start(self) -> None:
        """Start a worker (if none is running) and wait for it to say it is ready."""
        if self.running:
            return
        self._discard_process()
        python = self.environment.python
        if not python.exists():
            raise InputError(f"The object generation environment in {self.environment.folder} is broken (its Python "
                             f"is gone): {SETUP_FIX} to make it again.")
        self._folder = Path(tempfile.mkdtemp(prefix="image-to-mesh-generator-"))  # 0700: this user only
        (self._folder / "tmp").mkdir()
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
               # hy3dgen looks for models here and falls back to the hub: an empty folder, and the hub is off.
               "HY3DGEN_MODELS": str(self._folder / "no-models"),
               # hy3dgen's mesh clean-up leaves temporary .ply files behind: keep them in the private folder.
               "TMPDIR": str(self._folder / "tmp"), "TEMP": str(self._folder / "tmp"), "TMP": str(self._folder / "tmp")}
        command = [str(python), "-I", str(WORKER_SCRIPT), "--work-dir", str(self._folder),
                   "--idle-timeout", str(self.idle_timeout_s), "--threads", str(self.threads)]
        with open(self.log_path, "ab") as log:
            try:
                self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                                 env=env, **new_group())
            except OSError as err:
                raise InputError(f"Could not start the object generator ({err.strerror}): {SETUP_FIX} to repair "
                                 "its environment.") from None
        self._events = queue.Queue()
        threading.Thread(target=_read_events, args=(self._process.stdout, self._events), daemon=True).start()
        self._cancelled = False
        event = self._next_event(time.monotonic() + READY_TIMEOUT_S, None)
        if event.get("event") != "ready" or event.get("protocol") != PROTOCOL:
            self.kill()
            raise InputError(f"The object generator speaks another protocol than this version of Image to Mesh: "
                             f"{SETUP_FIX} to update it.")

    def kill(self) -> None:
        """Kill the worker and everything it started, now."""
        process = self._process  # read once: another thread may be discarding it
        if process is not None:
            kill_process_tree(process)

    def cancel(self) -> None:
        """Stop the running request (from any thread): the worker process tree is killed within a second."""
        self._cancelled = True
        self.kill()

    def close(self) -> None:
        """Ask the worker to exit, kill it if it does not, and delete the private folder."""
        if self.running:
            try:
                self._send({"op": "shutdown"})
                self._process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()
        self._discard_process()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _discard_process(self) -> None:
        if self._process is not None:
            for stream in (self._process.stdin, self._process.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
        self._process = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    # --- requests ------------------------------------------------------------------------------------------------

    def generate(self, request: ShapeRequest, progress: Callable[[Progress], None] | None = None,
                 cancel: threading.Event | None = None) -> GeneratedMesh:
        """The mesh for one photo. Blocks until done; `cancel` (or cancel() from another thread) stops it."""
        with self._busy:
            for attempt in range(2):
                self.start()
                self._next_id += 1
                request_id = str(self._next_id)
                try:
                    self._send({"op": "generate", "id": request_id, "params": request.params()})
                except OSError:
                    pass  # it died, or left while idle: the events say which
                result = self._await(request_id, progress, cancel)
                if result is not None:
                    return self._load(result)
                # The worker left for idleness just as the request went out: start a fresh one, once.
            raise InputError("The object generator exited twice before answering: try again.")

    def _await(self, request_id: str, progress, cancel: threading.Event | None) -> dict | None:
        while True:
            event = self._next_event(None, cancel)
            kind = event.get("event")
            if kind == "idle-exit":
                self._wait_exit()
                return None
            if event.get("id") != request_id:
                continue
            if kind == "progress" and progress is not None:
                progress(Progress(event["stage"], event["step"], event["steps"], event["seconds"]))
            elif kind == "result":
                return event
            elif kind == "error":
                if event.get("kind") == "internal":
                    event["message"] = event["message"].rstrip(".") + f"; its log: {self.log_path}."
                raise InputError(event["message"])

    def _next_event(self, deadline: float | None, cancel: threading.Event | None) -> dict:
        """The worker's next event; a dead worker becomes one sentence (or GenerationCancelled)."""
        while True:
            if cancel is not None and cancel.is_set() and not self._cancelled:
                self.cancel()
            try:
                event = self._events.get(timeout=0.05)
            except queue.Empty:
                if deadline is not None and time.monotonic() > deadline:
                    self.kill()
                    raise InputError(f"The object generator did not start in {READY_TIMEOUT_S:.0f} s: "
                                     f"{SETUP_FIX} to repair its environment.") from None
                continue
            if event is not None:
                return event
            self._raise_for_exit()

    def _raise_for_exit(self) -> None:
        """The worker's stdout closed: it was cancelled, or it died."""
        code = self._wait_exit()
        if self._cancelled:
            self._discard_process()  # the private folder goes with anything half-written in it
            raise GenerationCancelled("Object generation was cancelled.")
        log = self.log_path
        if code == -9:  # SIGKILL from outside: on Linux, the out-of-memory killer
            reason = ("it was killed, most likely for lack of memory: lower the octree resolution or the number of "
                      "chunks")
        else:
            last = _last_line(log)
            reason = f"exit code {code}" + (f": {last}" if last else "")
        self._discard_process_keep_log()
        raise InputError(f"The object generator stopped unexpectedly ({reason}); its log: {log}.")

    def _wait_exit(self) -> int | None:
        try:
            return self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            return self._process.returncode

    def _discard_process_keep_log(self) -> None:
        """Forget the dead worker; keep its log for the user (the rest of its folder goes)."""
        folder = self._folder
        self._folder = None
        self._discard_process()
        if folder is not None:
            for path in folder.iterdir():
                if path.name != "worker.log":
                    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)

    def _send(self, message: dict) -> None:
        self._process.stdin.write((json.dumps({"protocol": PROTOCOL, **message}) + "\n").encode("utf-8"))
        self._process.stdin.flush()

    def _load(self, result: dict) -> GeneratedMesh:
        path = Path(result["path"])
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        finally:
            path.unlink(missing_ok=True)
        return GeneratedMesh(arrays["vertices"].astype(np.float32, copy=False),
                             arrays["faces"].astype(np.int32, copy=False), arrays.get("uvs"), result.get("report", {}),
                             arrays.get("colours"))


def _plain(value):
    """JSON-ready: paths as strings, inside dicts too."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return str(value) if isinstance(value, Path) else value


def _read_events(stream, events: queue.Queue) -> None:
    """Worker stdout -> parsed events; None when it closes (or when this side closes it)."""
    try:
        for line in stream:
            try:
                events.put(json.loads(line))
            except ValueError:
                continue  # not a protocol line: the worker keeps stdout for the protocol, so this is noise
    except (OSError, ValueError):
        pass
    events.put(None)


def _last_line(path: Path | None) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
    except (OSError, AttributeError):
        return ""
    return lines[-1][:160] if lines else ""


class WorkerPool:
    """Warm workers, one per environment, shared by the runs of a Blender session (or of one CLI run): the model
    stays loaded from one photo to the next. Whoever makes the pool closes it (Blender: when the extension is
    disabled); a worker left behind still exits by itself when idle, or when this process is gone."""

    def __init__(self, idle_timeout_s: float = 600.0):
        self.idle_timeout_s = idle_timeout_s
        self._workers: dict[Path, GeneratorWorker] = {}
        self._lock = threading.Lock()

    def worker(self, environment: WorkerEnvironment, threads: int = 0) -> GeneratorWorker:
        with self._lock:
            worker = self._workers.get(environment.folder)
            if worker is None or worker.environment != environment or worker.threads != threads:
                if worker is not None:
                    worker.close()
                worker = self._workers[environment.folder] = GeneratorWorker(environment, self.idle_timeout_s,
                                                                             threads)
            return worker

    def close(self) -> None:
        with self._lock:
            for worker in self._workers.values():
                worker.close()
            self._workers.clear()

"""The object generator's own Python environment: created on demand, checked before use, removed on request.

Torch never enters Blender. Generators run in a separate virtual environment, by default in the extension's user
folder (the caller passes the folder: this module never imports bpy), made from a base interpreter — Blender's
own Python unless another is given (any CPython >= 3.10 with a lock for it). It installs exactly the wheels of
one lock file (inference/generate/locks/<device>-<platform>-py<XY>.txt, written by scripts/lock_generator.py),
each checked against its SHA-256, with `pip install --no-deps --require-hashes --only-binary=:all:`; then imports
the generator once (hunyuan.py, as the worker does) to prove it works. A marker file written last says the
environment is complete; without it, the folder is not an environment. Nothing of the project is copied into it:
the worker runs this folder's worker_main.py with the environment's Python.

Everything the user sees is one sentence (InputError) naming the fix: the "Set up object generation" button, or
--setup-generator on the command line.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..runtime.processes import kill_process_tree, new_group

HERE = Path(__file__).resolve().parent
LOCKS = HERE / "locks"
ENV_FOLDER_NAME = "generator-env"  # under the extension's user folder
MARKER = "image-to-mesh-generator.json"
DEVICES = ("cpu", "cuda", "mps")
SETUP_FIX = 'press "Set up object generation" (command line: --setup-generator)'
# Installed size / download size, measured for the Linux CPU lock (1.84 GB on disk for 470 MB of wheels).
INSTALLED_PER_DOWNLOADED = 3.9

Log = Callable[[str], None]


class SetupCancelled(InputError):
    """The user cancelled the set-up; nothing is left behind."""


@dataclass(frozen=True)
class BasePython:
    path: Path
    version: str  # "3.11"
    platform: str  # "linux-x64", "windows-x64", "macos-arm64"


@dataclass(frozen=True)
class SetupPlan:
    """What the set-up would do, to show before it runs."""

    folder: Path
    base: BasePython
    device: str
    lock: Path
    wheels: int
    download_mb: float

    @property
    def installed_mb(self) -> float:
        return self.download_mb * INSTALLED_PER_DOWNLOADED

    def describe(self) -> str:
        return (f"Object generation downloads about {self.download_mb:.0f} MB ({self.wheels} Python packages: "
                f"PyTorch for {self.device.upper()}, Hunyuan3D-2's hy3dgen and their dependencies) from the Python "
                f"Package Index into {self.folder} (about {self.installed_mb / 1000:.1f} GB on disk), using "
                f"Python {self.base.version} ({self.base.path}); the models themselves download on first use.")


@dataclass(frozen=True)
class WorkerEnvironment:
    folder: Path
    python: Path  # the environment's interpreter: run the worker with it
    device: str
    lock: str  # the lock file it was installed from
    torch_version: str
    accelerator_available: bool  # CUDA or MPS seen by torch when it was set up (always True for "cpu")


def environment_python(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def probe_base_python(path: str | Path | None = None) -> BasePython:
    """The interpreter the environment is made from: `path`, or the running one (Blender's own Python)."""
    path = Path(path or sys.executable)
    code = ("import json, platform, sys; print(json.dumps([sys.version_info[:2], sys.platform, platform.machine(), "
            "sys.implementation.name]))")
    try:
        run = subprocess.run([str(path), "-I", "-c", code], capture_output=True, text=True, timeout=60)
        (major, minor), system, machine, implementation = json.loads(run.stdout)
    except (OSError, ValueError, subprocess.SubprocessError):
        raise InputError(f"{path} is not a Python interpreter that runs here: give another with --generator-python "
                         "(Python 3.10 or newer).") from None
    if (major, minor) < (3, 10) or implementation != "cpython":
        raise InputError(f"{path} is {implementation} {major}.{minor}: object generation needs CPython 3.10 or newer "
                         "(--generator-python PATH).")
    machine = machine.lower()
    if system == "win32":
        platform = "windows-x64"
    elif system == "darwin":
        platform = "macos-arm64" if machine == "arm64" else "macos-x64"
    else:
        platform = "linux-x64" if machine in ("x86_64", "amd64") else f"linux-{machine}"
    return BasePython(path, f"{major}.{minor}", platform)


def lock_for(device: str, base: BasePython) -> Path:
    """The lock file for `device` on the base interpreter's platform and version (MPS shares the CPU lock)."""
    if device not in DEVICES:
        raise InputError(f"Unknown generator device '{device}': use one of {', '.join(DEVICES)}.")
    mac = base.platform.startswith("macos")
    if (device == "mps" and not mac) or (device == "cuda" and mac):
        raise InputError(f"The {device.upper()} device is not available on {base.platform}: use "
                         f"{'cpu or cuda' if device == 'mps' else 'cpu or mps'}.")
    kind = "cpu" if device == "mps" else device
    lock = LOCKS / f"{kind}-{base.platform}-py{base.version.replace('.', '')}.txt"
    if not lock.is_file():
        pythons = sorted({p.stem.rsplit("-py", 1)[1] for p in LOCKS.glob(f"{kind}-{base.platform}-py*.txt")})
        choice = (f"give a Python {' or '.join(v[0] + '.' + v[1:] for v in pythons)} with --generator-python PATH"
                  if pythons else "this platform is not supported yet")
        raise InputError(f"Object generation on {device.upper()} has no locked packages for Python {base.version} on "
                         f"{base.platform}: {choice}.")
    return lock


def setup_plan(folder: str | Path, device: str = "cpu", base_python: str | Path | None = None) -> SetupPlan:
    base = probe_base_python(base_python)
    lock = lock_for(device, base)
    text = lock.read_text()
    wheels = sum(1 for line in text.splitlines() if "--hash=sha256:" in line)
    return SetupPlan(Path(folder), base, device, lock, wheels, float(re.search(r"download_mb: (\d+)", text)[1]))


def create_environment(
    folder: str | Path,
    device: str = "cpu",
    base_python: str | Path | None = None,
    log: Log | None = None,
    cancel: threading.Event | None = None,
) -> WorkerEnvironment:
    """Make (or remake) the environment in `folder`; on failure or cancel, nothing is left there."""
    plan = setup_plan(folder, device, base_python)
    folder = plan.folder
    log = log or (lambda line: None)
    cancel = cancel or threading.Event()
    free_mb = shutil.disk_usage(_existing_parent(folder)).free / 1e6
    if free_mb < plan.installed_mb * 1.5:  # downloads and the installed copy coexist while pip runs
        raise InputError(f"Object generation needs about {plan.installed_mb * 1.5 / 1000:.1f} GB free next to "
                         f"{folder}, and {free_mb / 1000:.1f} GB are free.")
    remove_environment(folder)
    try:
        log(plan.describe())
        _run([str(plan.base.path), "-I", "-m", "venv", str(folder)], "create the virtual environment", log, cancel)
        python = environment_python(folder)
        _install_lock(python, plan.lock, log, cancel)
        log("Checking that the generator imports...")
        probe = _run([str(python), "-I", "-c", _IMPORT_CHECK, device, str(HERE)], "import the generator", log, cancel)
        torch_version, accelerator = json.loads(probe.splitlines()[-1])
        environment = WorkerEnvironment(folder, python, device, plan.lock.name, torch_version, accelerator)
        marker = {"device": device, "lock": plan.lock.name, "lock_sha256": _sha256(plan.lock),
                  "base_python": str(plan.base.path), "python": plan.base.version, "torch": torch_version,
                  "accelerator_available": accelerator, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        (folder / MARKER).write_text(json.dumps(marker, indent=1))  # last: the environment is complete
    except BaseException:
        remove_environment(folder)
        raise
    log(f"Object generation is set up in {folder} ({folder_size_mb(folder):.0f} MB).")
    return environment


def ensure_environment(folder: str | Path, device: str = "cpu", base_python: str | Path | None = None,
                       log: Log | None = None, cancel: threading.Event | None = None) -> WorkerEnvironment:
    """The environment in `folder` if it is complete and current for `device`, else a new one."""
    try:
        environment = check_environment(folder)
        if environment.device == device:
            return environment
    except InputError:
        pass
    return create_environment(folder, device, base_python, log, cancel)


def check_environment(folder: str | Path) -> WorkerEnvironment:
    """The environment in `folder`, or one sentence saying what is wrong and how to fix it."""
    folder = Path(folder)
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        raise InputError(f"Object generation is not set up: {SETUP_FIX}.") from None
    python = environment_python(folder)
    if not python.exists():  # also a venv whose base interpreter was removed (a dangling link)
        raise InputError(f"The object generation environment in {folder} is broken (its Python is gone): {SETUP_FIX} "
                         "to make it again.")
    lock = LOCKS / marker.get("lock", "")
    if not lock.is_file() or _sha256(lock) != marker.get("lock_sha256"):
        raise InputError(f"The object generation environment in {folder} is out of date for this version of Image "
                         f"to Mesh: {SETUP_FIX} to update it.")
    return WorkerEnvironment(folder, python, marker["device"], marker["lock"], marker.get("torch", ""),
                             marker.get("accelerator_available", False))


def remove_environment(folder: str | Path) -> float:
    """Delete the environment (stop its worker first); the megabytes freed."""
    folder = Path(folder)
    if not folder.exists():
        return 0.0
    size = folder_size_mb(folder)
    (folder / MARKER).unlink(missing_ok=True)  # first: a half-removed folder is never taken for an environment
    shutil.rmtree(folder, ignore_errors=True)
    if folder.exists():
        raise InputError(f"Could not remove {folder} completely (a file is in use?): close Blender and delete it.")
    return size


def folder_size_mb(folder: Path) -> float:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total / 1e6


# --- installing ------------------------------------------------------------------------------------------------

# Run by the new environment's Python: import what the worker imports, report torch and the accelerator.
_IMPORT_CHECK = """
import json, sys
sys.path.insert(0, sys.argv[2])
import hunyuan
report = hunyuan.environment_report(sys.argv[1])
print(json.dumps([report["torch"], report["available"]]))
"""


def _install_lock(python: Path, lock: Path, log: Log, cancel: threading.Event) -> None:
    pip = [str(python), "-I", "-m", "pip", "install", "--no-deps", "--require-hashes", "--only-binary=:all:",
           "--disable-pip-version-check", "--no-input", "--progress-bar", "off"]
    text = lock.read_text()
    index = re.search(r"^# torch-index: (\S+)", text, re.M)
    with tempfile.TemporaryDirectory() as tmp:
        if index:
            # torch alone from PyTorch's index (its CPU/CUDA build); the rest from PyPI only, so an index that
            # serves only torch is asked about torch only.
            torch_only = Path(tmp) / "torch.txt"
            torch_only.write_text(next(line for line in text.splitlines() if line.startswith("torch=")) + "\n")
            _run([*pip, "--extra-index-url", index[1], "-r", str(torch_only)], "install PyTorch", log, cancel)
        _run([*pip, "-r", str(lock)], "install the generator's packages", log, cancel)


def _run(command: list[str], what: str, log: Log, cancel: threading.Event) -> str:
    """Run a set-up step, passing its output to `log` line by line; cancel kills it (and its children)."""
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   text=True, encoding="utf-8", errors="replace", **new_group())
    except OSError as err:
        raise InputError(f"Could not {what} ({err.strerror}): {SETUP_FIX} to try again.") from None
    lines: list[str] = []
    watcher = threading.Thread(target=_kill_on_cancel, args=(process, cancel), daemon=True)
    watcher.start()
    for line in process.stdout:
        lines.append(line.rstrip())
        log(line.rstrip())
    process.wait()
    if cancel.is_set():
        raise SetupCancelled("Setting up object generation was cancelled; nothing was kept.")
    if process.returncode != 0:
        errors = [line for line in lines if line.startswith("ERROR")] or lines[-1:] or ["no output"]
        reason = errors[-1].removeprefix("ERROR: ").strip().rstrip(".")[:200]
        raise InputError(f"Setting up object generation failed to {what} ({reason}): check the connection and "
                         f"{SETUP_FIX} again.")
    return "\n".join(lines)


def _kill_on_cancel(process: subprocess.Popen, cancel: threading.Event) -> None:
    while process.poll() is None:
        if cancel.wait(0.1):
            kill_process_tree(process)
            return


def _existing_parent(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()

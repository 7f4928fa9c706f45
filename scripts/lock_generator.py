"""Lock the object generator's requirements: one file per device, platform and Python, every wheel with its SHA-256.

The generator runs in its own virtual environment (inference/generate/worker_env.py), installed with
`pip install --no-deps --require-hashes --only-binary=:all: -r <lock>`: exactly the wheels resolved here, nothing
else. Inputs: requirements/generator-{cpu,cuda}.txt (+ generator-common.txt). Outputs:
inference/generate/locks/<device>-<platform>-py<XY>.txt — shipped with the extension, since the set-up runs from
the installed extension.

Resolution is pip's own (`pip install --dry-run --report` for the target's Python and platform tags), which
fetches only metadata. pip evaluates environment markers for the machine it runs on (torch's Linux-only NVIDIA
dependencies would leak into a Windows lock), so each operating system is locked on that system: this script
locks the targets of the machine it runs on, for each supported Python. PyTorch's CPU-only Linux build
(torch==X+cpu) lives on https://download.pytorch.org/whl/cpu: the lock names that index for torch alone
(`# torch-index:`), and the set-up installs torch from it first. A target whose wheels cannot be found from this
machine is reported and skipped (no file is written for it).

    python scripts/lock_generator.py          # every device for this machine's platform
    python scripts/lock_generator.py cpu      # one device
"""

from __future__ import annotations

import json
from platform import machine
import re
import subprocess
import sys
import tempfile
import urllib.request
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements"
LOCKS = ROOT / "inference" / "generate" / "locks"

PLATFORM_TAGS = {
    # Every glibc from 2.35 down (pip takes only the manylinux tags it is given): 2.35 is pymeshlab's floor.
    "linux-x64": [f"manylinux_2_{minor}_x86_64" for minor in range(35, 16, -1)] + ["manylinux2014_x86_64"],
    "windows-x64": ["win_amd64"],
    "macos-arm64": ["macosx_14_0_arm64"],
}
PYTHONS = ("3.11", "3.13")  # Blender 4.5 LTS / 5.0 and Blender 5.1+ (the default base interpreter is Blender's)
DEVICES = {"cpu": ("linux-x64", "windows-x64", "macos-arm64"), "cuda": ("linux-x64", "windows-x64")}
PYTORCH_INDEX = {("cpu", "linux-x64"): "https://download.pytorch.org/whl/cpu",  # PyPI's Linux torch is CUDA
                 ("cuda", "windows-x64"): "https://download.pytorch.org/whl/cu128"}  # PyPI's Windows torch is CPU
NO_DEPS = {"hy3dgen"}  # installed without its declared (demo) dependencies


def host_platform() -> str:
    arch = machine().lower()
    if sys.platform == "win32":
        return "windows-x64"
    if sys.platform == "darwin":
        return "macos-arm64" if arch == "arm64" else "macos-x64"
    return "linux-x64" if arch in ("x86_64", "amd64") else f"linux-{arch}"


def lock_path(device: str, platform: str, python: str) -> Path:
    return LOCKS / f"{device}-{platform}-py{python.replace('.', '')}.txt"


def _pins(device: str) -> tuple[str, list[str], list[str]]:
    """(torch pin, pins resolved with dependencies, pins taken alone) from the requirement files."""
    lines = []
    for name in (f"generator-{device}.txt", "generator-common.txt"):
        lines += [line.split("#")[0].strip() for line in (REQUIREMENTS / name).read_text().splitlines()]
    pins = [line for line in lines if line and not line.startswith("-r")]
    torch = next(pin for pin in pins if pin.startswith("torch=="))
    alone = [pin for pin in pins if pin.split("==")[0] in NO_DEPS]
    return torch, [pin for pin in pins if pin != torch and pin not in alone], alone


def _resolve(platform: str, python: str, requirements: list[str], extra_index: str | None, deps: bool) -> list[dict]:
    tags = [arg for tag in PLATFORM_TAGS[platform] for arg in ("--platform", tag)]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                   "--only-binary=:all:", *tags, "--python-version", python, "--target", str(Path(tmp) / "t"),
                   "--report", str(report), "--retries", "1", *([] if deps else ["--no-deps"]),
                   *(["--extra-index-url", extra_index] if extra_index else []), *requirements]
        run = subprocess.run(command, capture_output=True, text=True)
        if run.returncode != 0:
            errors = [line for line in run.stderr.splitlines() if line.startswith("ERROR") and "Ignored" not in line]
            raise LookupError(errors[-1] if errors else run.stderr.strip()[-300:])
        return json.loads(report.read_text())["install"]


@cache
def _pypi_sizes(project: str) -> dict[str, int]:
    """File name -> size in bytes, from PyPI's JSON simple index (the API pip itself reads)."""
    request = urllib.request.Request(f"https://pypi.org/simple/{project}/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return {f["filename"]: f.get("size", 0) for f in json.load(response)["files"]}


def _size(item: dict) -> int:
    url = item["download_info"]["url"]
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path)).stat().st_size
    return _pypi_sizes(item["metadata"]["name"].lower()).get(unquote(parsed.path.rsplit("/", 1)[-1]), 0)


def lock(device: str, platform: str, python: str) -> Path:
    torch, with_deps, alone = _pins(device)
    torch_index = PYTORCH_INDEX.get((device, platform))
    if torch_index:
        torch += "+" + torch_index.rsplit("/", 1)[1]  # that index's build: 2.13.0+cpu, 2.13.0+cu128
    torch = torch.replace("==", "===")  # exactly this build: "==2.13.0" would also take a local 2.13.0+cpu
    items = _resolve(platform, python, [torch, *with_deps], torch_index, deps=True)
    items += _resolve(platform, python, alone, None, deps=False)
    rows = sorted((i["metadata"]["name"].lower().replace("_", "-"), i["metadata"]["version"],
                   i["download_info"]["archive_info"]["hashes"]["sha256"], _size(i)) for i in items)
    total_mb = sum(row[3] for row in rows) / 1e6
    out = lock_path(device, platform, python)
    lines = [
        f"# Object generator, {device} on {platform}, Python {python}: {len(rows)} wheels.",
        "# Written by scripts/lock_generator.py from requirements/generator-*.txt; installed by",
        "# inference/generate/worker_env.py with pip --no-deps --require-hashes --only-binary=:all:.",
        f"# download_mb: {total_mb:.0f}",
        *([f"# torch-index: {torch_index}"] if torch_index else []),
        *(f"{name}{'===' if name == 'torch' else '=='}{version} --hash=sha256:{sha}" for name, version, sha, _ in rows),
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    return out


def main(args: list[str]) -> None:
    here = host_platform()
    for device in [a for a in args if a in DEVICES] or list(DEVICES):
        if here not in DEVICES[device]:
            print(f"skipped {device}: not supported on {here}")
            continue
        for python in PYTHONS:
            try:
                path = lock(device, here, python)
                size = re.search(r"download_mb: (\d+)", path.read_text())[1]
                print(f"{path.relative_to(ROOT)}: {size} MB")
            except LookupError as err:
                print(f"skipped {device} {here} Python {python}: {err}")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Build the object generator's environment once, as --setup-generator does; CI's `make test` builds it here for
the test suite (.cache/generator-env). Does nothing when the environment there is complete and current.

    python scripts/setup_generator_env.py FOLDER [BASE_PYTHON] [--device cpu|cuda|mps]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import cli  # noqa: E402

cli.load_package()
from image_to_mesh.inference.errors import InputError  # noqa: E402
from image_to_mesh.inference.generate.worker_env import DEVICES, ensure_environment  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("base_python", nargs="?", help="the interpreter to build from (default: this one)")
    parser.add_argument("--device", default="cpu", choices=DEVICES)
    args = parser.parse_args()
    try:
        environment = ensure_environment(args.folder, args.device, args.base_python, log=print)
    except InputError as err:
        raise SystemExit(f"setup_generator_env: {err}")
    print(f"{environment.folder}: torch {environment.torch_version} for {environment.device}")

"""The wheels a GPU machine lacks, downloaded here to be carried there (`make gpu-wheels`).

    python experiments/gpu/carry.py              # -> .gpu/ (git-ignored), with its size
    python experiments/gpu/carry.py --list       # what it would fetch, fetching nothing

The lent GPU machine (see experiments/gpu/README.md) has PyTorch, Lightning, transformers and
the scientific stack (`image.txt`: its packages as the device tool lists them) but not Hydra,
MLflow or dataeff's smaller dependencies, and it reaches no package index. This walks dataeff's
requirements as installed here (the versions the suite passed with), stops at what the image
has (its own versions bring their own requirements), and fetches the rest for the image's Python
(CPython 3.12, manylinux x86_64); a package with no such wheel is built here (pure Python ones).
The jobs log to a file store, so MLflow travels as mlflow-skinny plus the SQLite store's
SQLAlchemy and alembic, without the server's web UI and its web stack (27 MB). The benchmarks'
text (../shared/data/mr, which stays behind: only the checkout travels) goes along in .gpu/data.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BENCH_TEXT = ROOT.parent / "shared" / "data" / "mr"
# the image's interpreter and platform, for markers and wheel tags
TARGET_ENV = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
              "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
              "platform_python_implementation": "CPython", "os_name": "posix", "extra": ""}
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64"]
INSTEAD = {"mlflow": ["mlflow-skinny", "sqlalchemy", "alembic"]}  # no server on the GPU machine


def image_packages() -> set[str]:
    lines = (HERE / "image.txt").read_text().splitlines()
    return {canonicalize_name(line) for line in lines if line and not line.startswith("#")}


def to_carry(image: set[str]) -> dict[str, str]:
    """name -> version installed here, for everything dataeff needs that the image lacks."""
    pinned: dict[str, str] = {}
    todo = ["dataeff"]
    while todo:
        name = todo.pop()
        if name in INSTEAD:
            todo += INSTEAD[name]
            continue
        installed = distribution(name)
        if name != "dataeff":
            pinned[name] = installed.version
        for line in installed.requires or []:
            req = Requirement(line)
            needed = canonicalize_name(req.name)
            if req.marker is not None and not req.marker.evaluate(TARGET_ENV):
                continue  # an extra, or another platform's
            if needed not in image and needed not in pinned:
                todo.append(needed)
    return dict(sorted(pinned.items()))


def fetch(pins: dict[str, str], folder: Path) -> list[str]:
    """Each wheel for the image's Python, else one built here; the names that could not be had."""
    folder.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "-q"]
    binary = [*pip, "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
              "--implementation", "cp", *(f"--platform={p}" for p in PLATFORMS), "-d", str(folder)]
    missing = []
    for name, version in pins.items():
        spec = f"{name}=={version}"
        if subprocess.run([*binary, spec], capture_output=True).returncode == 0:
            continue
        built = subprocess.run([*pip, "wheel", "--no-deps", "-w", str(folder), spec], capture_output=True)
        if built.returncode != 0:
            missing.append(spec)
    return missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print what would be fetched, fetch nothing")
    parser.add_argument("--into", type=Path, default=ROOT / ".gpu")
    args = parser.parse_args()
    try:
        pins = to_carry(image_packages())
    except PackageNotFoundError as err:
        sys.exit(f"{err.name} is not installed here: run `make install` first, then this.")
    for name, version in pins.items():
        print(f"{name}=={version}")
    if args.list:
        return
    missing = fetch(pins, args.into / "wheels")
    if BENCH_TEXT.is_dir():
        shutil.copytree(BENCH_TEXT, args.into / "data" / "mr", dirs_exist_ok=True)
    size = sum(f.stat().st_size for f in args.into.rglob("*") if f.is_file()) / 2**20
    print(f"\n{len(pins) - len(missing)} wheels and the benchmarks' text in {args.into} ({size:.1f} MiB; a "
          "device call carries 64 MiB with the working tree)")
    if missing:
        sys.exit(f"No wheel for Python 3.12 and none could be built here: {', '.join(missing)}")


if __name__ == "__main__":
    main()

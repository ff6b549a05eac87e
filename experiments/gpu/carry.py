"""The wheels a GPU machine lacks, downloaded here to be carried there (`make gpu-wheels`).

    python experiments/gpu/carry.py              # -> .gpu/ (git-ignored), with its size
    python experiments/gpu/carry.py --list       # what it would fetch, fetching nothing

The lent GPU machine (see experiments/gpu/README.md) has PyTorch, Lightning, transformers and
the scientific stack (`image.txt`: its packages as the device tool lists them) but not Hydra,
MLflow or dataeff's smaller dependencies, and it reaches no package index. This walks dataeff's
requirements as installed here (the versions the suite passed with), stops at what the image
has (its own versions bring their own requirements), and fetches the rest for the image's Python
(CPython 3.12, manylinux x86_64); a package with no such wheel is built here, and kept only if
it runs there (pure Python). The jobs log to a file store, so MLflow travels as mlflow-skinny
plus the SQLite store's SQLAlchemy and alembic, without the server's web UI and its web stack
(27 MB). The MLM benchmark's text (../shared/data/mr, which stays behind: only the checkout
travels) goes along in .gpu/data.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BENCH_TEXT = ROOT.parent / "shared" / "data" / "mr"
# the image's interpreter and platform, for markers and wheel tags
TARGET_ENV = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
              "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
              "platform_python_implementation": "CPython", "os_name": "posix", "extra": ""}
# pip matches a manylinux tag exactly: every glibc level up to the image's (2.35 or newer)
PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(35, 4, -1)] + [
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
RUNS_THERE = {*cpython_tags((3, 12), platforms=PLATFORMS),
              *compatible_tags((3, 12), interpreter="cp312", platforms=PLATFORMS)}
INSTEAD = {"mlflow": ["mlflow-skinny", "sqlalchemy", "alembic"]}  # no server on the GPU machine


def image_packages() -> set[str]:
    lines = (HERE / "image.txt").read_text().splitlines()
    return {canonicalize_name(line) for line in lines if line and not line.startswith("#")}


def needs(name: str, extras: frozenset[str]) -> list[tuple[str, frozenset[str]]]:
    """What an installed package requires on the image's Python, with the extras asked of it."""
    found = []
    for line in distribution(name).requires or []:
        req = Requirement(line)
        if req.marker is None or any(req.marker.evaluate({**TARGET_ENV, "extra": extra})
                                     for extra in ("", *extras)):
            found.append((canonicalize_name(req.name), frozenset(req.extras)))
    return found


def to_carry(image: set[str]) -> dict[str, str]:
    """name -> version installed here, for everything dataeff needs that the image lacks."""
    pinned: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [("dataeff", frozenset())]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen or name in image:
            continue
        seen.add((name, extras))
        if name in INSTEAD:
            todo += [(other, frozenset()) for other in INSTEAD[name]]
            continue
        if name != "dataeff":
            pinned[name] = distribution(name).version
        todo += needs(name, extras)
    return dict(sorted(pinned.items()))


def runs_there(wheel: Path) -> bool:
    return bool(parse_wheel_filename(wheel.name)[3] & RUNS_THERE)


def fetch(pins: dict[str, str], folder: Path) -> list[str]:
    """Each wheel for the image's Python, else one built here; the names that could not be had.
    The folder starts empty: two versions of one package would stop the install there."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    pip = [sys.executable, "-m", "pip", "-q"]
    binary = [*pip, "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
              "--implementation", "cp", *(f"--platform={p}" for p in PLATFORMS), "-d", str(folder)]
    missing = []
    for name, version in pins.items():
        spec = f"{name}=={version}"
        if subprocess.run([*binary, spec], capture_output=True).returncode == 0:
            continue
        before = set(folder.iterdir())
        subprocess.run([*pip, "wheel", "--no-deps", "-w", str(folder), spec], capture_output=True)
        built = set(folder.iterdir()) - before
        if not built or not all(runs_there(wheel) for wheel in built):  # e.g. a cp311 build
            for wheel in built:
                wheel.unlink()
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
    print(f"\n{len(pins) - len(missing)} wheels and the MLM benchmark's text in {args.into} ({size:.1f} MiB; "
          "a device call carries 64 MiB with the working tree)")
    if missing:
        sys.exit(f"No wheel for Python 3.12 and none could be built here: {', '.join(missing)}")


if __name__ == "__main__":
    main()

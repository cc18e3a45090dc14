"""``--ssh user@host``: the whole HIL session on a board, driven from a laptop.

The working tree (without .venv, .git and caches; uncommitted changes included, since
those are what one wants timed) and the chosen images are packed into one archive,
copied with scp, unpacked, run with the same measurement flags, and the JSON report
is fetched back; the markdown and the threshold check are then made locally from it.
The board needs Python with numpy, numba, Pillow and pyserial (docs/HIL.md).
"""

from __future__ import annotations

import shlex
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXCLUDED_NAMES = {".venv", ".git", "build", "__pycache__", ".pytest_cache", ".hypothesis"}
EXCLUDED_SUFFIXES = (".egg-info", ".nbi", ".nbc", ".pyc")
REMOTE_IMAGE_DIR = "hil-images"
REMOTE_REPORT = "hil-report.json"


@dataclass(frozen=True)
class RemotePlan:
    target: str  # user@host, as ssh takes it
    remote_dir: str  # relative paths are under the remote home directory
    remote_python: str
    archive: Path  # local archive to copy
    run_args: tuple[str, ...]  # measurement flags for the remote hil/run.py
    local_report: Path

    @property
    def remote_archive(self) -> str:
        return f"{self.remote_dir}.tar.gz"


def remote_image_names(images: list[Path]) -> list[str]:
    """Archive paths of the images: numbered, so that equal file names cannot collide."""
    return [f"{REMOTE_IMAGE_DIR}/{index:03d}-{path.name}" for index, path in enumerate(images)]


def _excluded(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    name = Path(info.name).name
    if name in EXCLUDED_NAMES or name.endswith(EXCLUDED_SUFFIXES):
        return None
    return info


def write_archive(archive: Path, images: list[Path]) -> None:
    """The repository (minus .venv, .git, caches) plus the images, as a gzipped tar."""
    with tarfile.open(archive, "w:gz") as tar:
        for entry in sorted(ROOT.iterdir()):
            tar.add(entry, arcname=entry.name, filter=_excluded)
        for path, name in zip(images, remote_image_names(images), strict=True):
            tar.add(path, arcname=name)


def remote_commands(plan: RemotePlan) -> list[list[str]]:
    """The argv of every step: copy, unpack, run, fetch. Pure, so it can be tested."""
    directory = shlex.quote(plan.remote_dir)
    archive = shlex.quote(plan.remote_archive)
    run = [plan.remote_python, "hil/run.py", *plan.run_args, "--json", REMOTE_REPORT]
    return [
        ["scp", "-q", str(plan.archive), f"{plan.target}:{plan.remote_archive}"],
        ["ssh", plan.target, f"mkdir -p {directory} && tar -xzf {archive} -C {directory} && rm -f {archive}"],
        ["ssh", plan.target, f"cd {directory} && {shlex.join(run)}"],
        ["scp", "-q", f"{plan.target}:{plan.remote_dir}/{REMOTE_REPORT}", str(plan.local_report)],
    ]


def run_remote(plan: RemotePlan, images: list[Path], log=print) -> None:
    """Pack, then run each step; a failing step raises CalledProcessError with its argv."""
    write_archive(plan.archive, images)
    for command in remote_commands(plan):
        log("hil: " + shlex.join(command))
        subprocess.run(command, check=True)

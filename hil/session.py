"""One HIL session: every frame size x backend measured in worker processes, plus the
link timing, gathered into the report dictionary (see hil/schema.json).

Per size and backend, in order:
1. ``throughput`` worker: calibration to the bit rate, interleaved timed repetitions of
   our codec and libjpeg-turbo, per-stage breakdown. It uses numba's usual cache
   directory, which it leaves warm (if it was not already).
2. ``startup`` workers with that warm cache, with a fresh empty cache directory (numba
   compiles everything), and the JPEG reference: process start to first encoded frame,
   and the peak RSS of a process that encodes one frame.
3. ``encode_memory`` worker: what one encode adds to a process already running the
   codec, per pixel; ``decode_memory`` worker: the peak RSS of decoding the stream.
Then the link timing of hil/linktime.py for each link size.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import board, linktime
from .backends import backend_status
from .frames import FrameSize, build_frame, images_used

ROOT = Path(__file__).resolve().parents[1]
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
SCHEMA_VERSION = 1
KIB_PER_MIB = 1024


@dataclass(frozen=True)
class Settings:
    sizes: tuple[FrameSize, ...]
    images: tuple[Path, ...]
    gray: bool
    bpp: float
    repeat: int
    start_repeat: int
    backends: tuple[str, ...]
    profile: str
    threads: int
    packet_size: int
    framing: str
    baud: int
    link_sizes: tuple[FrameSize, ...]
    serial: tuple[str, ...]
    quick: bool
    note: str | None

    def as_report(self) -> dict:
        fields = asdict(self)
        fields["sizes"] = [s.label for s in self.sizes]
        fields["link_sizes"] = [s.label for s in self.link_sizes]
        fields["images"] = [p.name for p in self.images]
        fields["serial"] = list(self.serial)
        fields["backends"] = list(self.backends)
        return fields


class WorkerError(RuntimeError):
    """A measurement process failed; carries its stderr so the cause is visible."""


def worker_env(threads: int, numba_cache: Path | None = None) -> dict[str, str]:
    """Environment of a worker: thread limits, and ``numba_cache`` as its numba cache
    directory (None: numba's usual cache, as a deployed board has it)."""
    env = dict(os.environ)
    if numba_cache is not None:
        env["NUMBA_CACHE_DIR"] = str(numba_cache)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if threads > 0:
        env.update({name: str(threads) for name in THREAD_VARIABLES})
    return env


def run_worker(job: dict, env: dict[str, str]) -> tuple[dict, float]:
    """Run one worker job; return its result and the monotonic time it was spawned."""
    spawned = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "hil.worker", json.dumps(job)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise WorkerError(f"worker job {job['kind']} failed (exit {done.returncode}):\n{done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1]), spawned


def _summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def start_times(job: dict, env_for_run, runs: int) -> dict:
    """Process start to first encoded frame over ``runs`` processes, with a breakdown."""
    samples = []
    for run in range(runs):
        result, spawned = run_worker(job, env_for_run(run))
        samples.append((result, spawned))
    return {
        "first_frame_s": _summary([r["encoded"] - s for r, s in samples]),
        "interpreter_s": statistics.median(r["began"] - s for r, s in samples),
        "imports_s": statistics.median(r["imported"] - r["began"] for r, _ in samples),
        "first_encode_s": statistics.median(r["encoded"] - r["loaded"] for r, _ in samples),
        "peak_rss_mib": max(r["peak_rss_kib"] for r, _ in samples) / KIB_PER_MIB,
    }


def measure_size(size: FrameSize, backend: str, settings: Settings, workdir: Path) -> dict:
    tag = f"{size.label}-{backend}"
    frame_path = frame_file(size, settings, workdir)
    stream_path = workdir / f"{tag}.qpv"
    warm_env = worker_env(settings.threads)
    common = {"frame": str(frame_path), "backend": backend, "profile": settings.profile}
    speed, _ = run_worker(
        {
            "kind": "throughput",
            **common,
            "bpp": settings.bpp,
            "repeat": settings.repeat,
            "packet_size": settings.packet_size,
            "framing": settings.framing,
            "stream_out": str(stream_path),
        },
        warm_env,
    )
    budget = speed["rate"]["budget_bytes"]
    qpv_start = {"kind": "startup", "codec": "qpv", **common, "max_bytes": budget}
    cold_caches = [Path(tempfile.mkdtemp(prefix="numba-cold-", dir=workdir)) for _ in range(settings.start_repeat)]
    warm = start_times(qpv_start, lambda run: warm_env, settings.start_repeat)
    cold = start_times(qpv_start, lambda run: worker_env(settings.threads, cold_caches[run]), settings.start_repeat)
    jpeg_quality = speed["rate"]["jpeg_quality"]
    jpeg_start = {"kind": "startup", "codec": "jpeg", "frame": str(frame_path), "jpeg_quality": jpeg_quality}
    jpeg = start_times(jpeg_start, lambda run: warm_env, settings.start_repeat)
    encode_rss, _ = run_worker({**qpv_start, "kind": "encode_memory"}, warm_env)
    decode_rss, _ = run_worker({"kind": "decode_memory", "stream": str(stream_path)}, warm_env)
    mpix = speed["mpix_per_s"]
    return {
        "size": size.label,
        "width": size.width,
        "height": size.height,
        "megapixels": size.pixels / 1e6,
        "backend": backend,
        "images": images_used(size, list(settings.images)),
        "rate": speed["rate"],
        "mpix_per_s": mpix,
        "seconds": speed["seconds"],
        "ratios_vs_jpeg": {
            "encode_fixed": mpix["qpv_encode_fixed"]["median"] / mpix["jpeg_encode"]["median"],
            "encode_rate_control": mpix["qpv_encode_rate_control"]["median"] / mpix["jpeg_encode"]["median"],
            "decode": mpix["qpv_decode"]["median"] / mpix["jpeg_decode"]["median"],
            "start_warm_cache": warm["first_frame_s"]["median"] / jpeg["first_frame_s"]["median"],
            "start_cold_cache": cold["first_frame_s"]["median"] / jpeg["first_frame_s"]["median"],
        },
        "stages_s": speed["stages_s"],
        "cold_start": {"warm_cache": warm, "cold_cache": cold, "jpeg": jpeg},
        "memory": {
            "encode_peak_rss_mib": warm["peak_rss_mib"],
            "encode_rss_growth_mib": encode_rss["growth_kib"] / KIB_PER_MIB,
            "encode_rss_bytes_per_pixel": encode_rss["growth_kib"] * 1024 / size.pixels,
            "decode_peak_rss_mib": decode_rss["peak_rss_kib"] / KIB_PER_MIB,
            "jpeg_encode_peak_rss_mib": jpeg["peak_rss_mib"],
        },
    }


def frame_file(size: FrameSize, settings: Settings, workdir: Path) -> Path:
    """The saved test frame of ``size`` (built on first use)."""
    path = workdir / f"{size.label}.npy"
    if not path.exists():
        np.save(path, build_frame(size, list(settings.images), settings.gray))
    return path


def measure_link(settings: Settings, workdir: Path, log) -> dict:
    port = ",".join(settings.serial) if settings.serial else linktime.PTY_PORT
    missing = linktime.link_modules_missing()
    if not settings.link_sizes or missing:
        return {"port": port, "unavailable": missing or "not requested (--link-sizes none)", "runs": []}
    env = worker_env(settings.threads)
    runs = []
    for size in settings.link_sizes:
        log(f"hil: link {size.label} at {settings.baud} baud over {port} ...")
        runs.append(linktime.time_frame(size, frame_file(size, settings, workdir), settings, env, ROOT, workdir))
    return {"port": port, "unavailable": None, "runs": runs}


def run_session(settings: Settings, log=print) -> dict:
    """Measure everything the settings ask for; return the report dictionary."""
    thermal = [board.thermal_sample()]
    results = []
    with tempfile.TemporaryDirectory(prefix="qpv-hil-") as tmp:
        workdir = Path(tmp)
        for size in settings.sizes:
            frame_file(size, settings, workdir)
            for backend in settings.backends:
                log(f"hil: {size.label} {backend} ...")
                results.append(measure_size(size, backend, settings, workdir))
                thermal.append(board.thermal_sample())
        link = measure_link(settings, workdir, log)
        thermal.append(board.thermal_sample())
    return {
        "schema_version": SCHEMA_VERSION,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": settings.as_report(),
        "machine": board.machine_info(settings.note),
        "backends": backend_status(settings.profile),
        "thermal": thermal_summary(thermal),
        "results": results,
        "link": link,
    }


def thermal_summary(samples: list[dict]) -> dict:
    """Samples taken between measurements, the hottest reading, and every throttle flag seen."""
    temperatures = [s["max_temp_c"] for s in samples if s["max_temp_c"] is not None]
    throttles = [s["throttled"] for s in samples if s["throttled"] is not None]
    return {
        "samples": samples,
        "max_temp_c": max(temperatures) if temperatures else None,
        "throttle_flags": sorted({flag for t in throttles for flag in t["flags"]}) if throttles else None,
    }

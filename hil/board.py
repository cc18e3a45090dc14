"""What the harness runs on: board, CPU, software versions, temperature and throttling.

Every reader returns None where the board does not expose the figure (a VM has no
thermal zones, only a Raspberry Pi has ``vcgencmd``); the report prints those as "n/a"
rather than guessing.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

DEVICE_TREE_MODEL = Path("/proc/device-tree/model")
DMI_DIR = Path("/sys/class/dmi/id")
THERMAL_DIR = Path("/sys/class/thermal")
CPUFREQ_GLOB = "cpu[0-9]*/cpufreq/scaling_cur_freq"
CPU_DIR = Path("/sys/devices/system/cpu")

# ARM "CPU part" ids of the boards the thresholds ship for (/proc/cpuinfo has no model name there).
ARM_CPU_PARTS = {
    "0xd03": "Cortex-A53",
    "0xd08": "Cortex-A72",
    "0xd0b": "Cortex-A76",
    "0xd42": "Cortex-A78AE",
}

# Bits of `vcgencmd get_throttled` (Raspberry Pi firmware documentation).
THROTTLE_BITS = {
    0: "under-voltage",
    1: "arm-frequency-capped",
    2: "throttled",
    3: "soft-temperature-limit",
    16: "under-voltage-occurred",
    17: "arm-frequency-capping-occurred",
    18: "throttling-occurred",
    19: "soft-temperature-limit-occurred",
}

# Distributions whose versions decide the figures; absent ones are reported as null.
PACKAGES = (
    "qpv",
    "numpy",
    "numba",
    "llvmlite",
    "pillow",
    "pyserial",
    "onnxruntime",
    "ai-edge-litert",
    "tflite-runtime",
)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip("\x00 \n")
    except OSError:
        return None


def board_model() -> str:
    """The device-tree model (Pi, Jetson), else DMI vendor + product, else 'unknown'."""
    model = _read_text(DEVICE_TREE_MODEL)
    if model:
        return model
    vendor, product = _read_text(DMI_DIR / "sys_vendor"), _read_text(DMI_DIR / "product_name")
    dmi = " ".join(part for part in (vendor, product) if part)
    return dmi or "unknown"


def cpu_model(cpuinfo: str | None = None) -> str:
    """x86 'model name', else the ARM core named from its CPU part id, else platform.processor()."""
    cpuinfo = _read_text(Path("/proc/cpuinfo")) if cpuinfo is None else cpuinfo
    fields = dict(
        (key.strip().lower(), value.strip())
        for key, _, value in (line.partition(":") for line in (cpuinfo or "").splitlines())
        if value
    )
    if "model name" in fields:
        return fields["model name"]
    part = fields.get("cpu part")
    if part:
        return ARM_CPU_PARTS.get(part.lower(), f"ARM CPU part {part}")
    return platform.processor() or platform.machine() or "unknown"


def is_virtual_machine() -> bool:
    """True when the CPU flags say a hypervisor runs this kernel (figures are then noisier)."""
    cpuinfo = _read_text(Path("/proc/cpuinfo")) or ""
    return bool(re.search(r"^flags\s*:.*\bhypervisor\b", cpuinfo, re.MULTILINE))


def memory_mib() -> int | None:
    meminfo = _read_text(Path("/proc/meminfo")) or ""
    match = re.search(r"^MemTotal:\s+(\d+) kB", meminfo, re.MULTILINE)
    return int(match.group(1)) // 1024 if match else None


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["libjpeg-turbo"] = _libjpeg_turbo_version()
    return versions


def _libjpeg_turbo_version() -> str | None:
    try:
        from PIL import features
    except ImportError:
        return None
    return features.version("libjpeg_turbo")


def machine_info(note: str | None = None) -> dict:
    return {
        "board": board_model(),
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 1,
        "arch": platform.machine(),
        "kernel": platform.release(),
        "virtual_machine": is_virtual_machine(),
        "memory_mib": memory_mib(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "packages": package_versions(),
        "note": note,
    }


def cpu_temperatures() -> dict[str, float]:
    """Degrees Celsius of every thermal zone, keyed by zone type (e.g. 'cpu-thermal')."""
    temperatures = {}
    for zone in sorted(THERMAL_DIR.glob("thermal_zone*")):
        millidegrees = _read_text(zone / "temp")
        if millidegrees is None or not millidegrees.lstrip("-").isdigit():
            continue
        kind = _read_text(zone / "type") or zone.name
        temperatures[f"{kind}:{zone.name}"] = int(millidegrees) / 1000.0
    return temperatures


def cpu_frequencies_mhz() -> list[float]:
    values = (_read_text(path) for path in sorted(CPU_DIR.glob(CPUFREQ_GLOB)))
    return [int(v) / 1000.0 for v in values if v and v.isdigit()]


def decode_throttled(value: int) -> list[str]:
    """Names of the set bits of a `vcgencmd get_throttled` word."""
    return [name for bit, name in THROTTLE_BITS.items() if value >> bit & 1]


def throttling() -> dict | None:
    """The Pi firmware's throttling word and its flags, or None where there is no vcgencmd."""
    tool = shutil.which("vcgencmd")
    if tool is None:
        return None
    try:
        output = subprocess.run([tool, "get_throttled"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"throttled=(0x[0-9a-fA-F]+)", output)
    if not match:
        return None
    value = int(match.group(1), 16)
    return {"raw": match.group(1), "flags": decode_throttled(value)}


def thermal_sample() -> dict:
    """One reading of temperatures, clock, load and throttling, taken between measurements."""
    temperatures = cpu_temperatures()
    frequencies = cpu_frequencies_mhz()
    return {
        "max_temp_c": max(temperatures.values()) if temperatures else None,
        "temps_c": temperatures,
        "cpu_mhz": frequencies,
        "loadavg_1min": os.getloadavg()[0],
        "throttled": throttling(),
    }

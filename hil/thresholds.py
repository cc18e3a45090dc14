"""``--check THRESHOLDS.toml``: does a report regress past a board's limits?

Limits are on ratios to libjpeg-turbo measured in the same run, on memory, and on the
link's time relative to the wire time; an absolute time would fail on a busy or hot
board for reasons that are not a regression. Every figure of every size and backend
is checked. A key the checker does not know is an error, so that a typo cannot
silently switch a check off.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (e.g. JetPack 6): the same parser as a package
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        tomllib = None

THRESHOLD_DIR = Path(__file__).resolve().parent / "thresholds"
# Below this ideal wire time the ground's fixed per-frame work (the final render), not
# the link, decides the full-frame time, so the link ratio is not checked.
MIN_WIRE_S_FOR_LINK_RATIO = 0.5
PROFILE_KEYS = {"name", "description", "provisional"}


@dataclass(frozen=True)
class Check:
    section: str
    key: str
    bound: str  # "min" or "max"
    scope: str  # "result": each size x backend; "link": each link run; "report": once
    figure: Callable[[dict], float | None]
    what: str
    applies: Callable[[dict], bool] = lambda subject: True


CHECKS = (
    Check(
        "encode",
        "min_ratio_fixed",
        "min",
        "result",
        lambda r: r["ratios_vs_jpeg"]["encode_fixed"],
        "encode MPix/s at fixed quality / libjpeg-turbo",
    ),
    Check(
        "encode",
        "min_ratio_rate_control",
        "min",
        "result",
        lambda r: r["ratios_vs_jpeg"]["encode_rate_control"],
        "encode MPix/s with rate control / libjpeg-turbo",
    ),
    Check(
        "decode", "min_ratio", "min", "result", lambda r: r["ratios_vs_jpeg"]["decode"], "decode MPix/s / libjpeg-turbo"
    ),
    Check(
        "start",
        "max_ratio_warm_cache",
        "max",
        "result",
        lambda r: r["ratios_vs_jpeg"]["start_warm_cache"],
        "first frame with warm numba cache / JPEG reference process",
    ),
    Check(
        "start",
        "max_ratio_cold_cache",
        "max",
        "result",
        lambda r: r["ratios_vs_jpeg"]["start_cold_cache"],
        "first frame with cold numba cache / JPEG reference process",
    ),
    Check(
        "memory",
        "max_encode_peak_rss_mib",
        "max",
        "result",
        lambda r: r["memory"]["encode_peak_rss_mib"],
        "peak RSS of a process encoding one frame (MiB)",
    ),
    Check(
        "memory",
        "max_encode_rss_bytes_per_pixel",
        "max",
        "result",
        lambda r: r["memory"]["encode_rss_bytes_per_pixel"],
        "RSS growth of one encode per pixel (bytes)",
    ),
    Check(
        "memory",
        "max_decode_peak_rss_mib",
        "max",
        "result",
        lambda r: r["memory"]["decode_peak_rss_mib"],
        "peak RSS of a process decoding one frame (MiB)",
    ),
    Check(
        "link",
        "max_full_frame_vs_wire",
        "max",
        "link",
        lambda run: math.inf if run["full_frame_vs_wire"] is None else run["full_frame_vs_wire"],
        "time to full frame at the ground / ideal wire time (inf: the frame never completed)",
        lambda run: run["ideal_wire_s"] >= MIN_WIRE_S_FOR_LINK_RATIO,
    ),
    Check(
        "thermal",
        "fail_on_throttling",
        "max",
        "report",
        lambda report: (
            None if report["thermal"]["throttle_flags"] is None else len(report["thermal"]["throttle_flags"])
        ),
        "throttling flags raised during the run",
    ),
)


class ThresholdError(ValueError):
    """A thresholds file that cannot be read or names an unknown check."""


@dataclass(frozen=True)
class Finding:
    passed: bool
    message: str


def load_thresholds(path: Path) -> dict:
    if tomllib is None:
        raise ThresholdError("reading thresholds needs Python 3.11+ or the 'tomli' package")
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ThresholdError(f"{path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ThresholdError(f"{path}: not valid TOML ({exc})") from None
    known = {(c.section, c.key) for c in CHECKS}
    for section, values in data.items():
        if section == "profile":
            unknown = set(values) - PROFILE_KEYS
        elif not isinstance(values, dict):
            unknown = {section}
        else:
            unknown = {key for key in values if (section, key) not in known}
        if unknown:
            raise ThresholdError(f"{path}: unknown threshold(s) {', '.join(sorted(unknown))} in [{section}]")
        if section != "profile":
            _check_values(path, section, values)
    return data


def _check_values(path: Path, section: str, values: dict) -> None:
    for key, value in values.items():
        expected = bool if key == "fail_on_throttling" else (int, float)
        if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            raise ThresholdError(
                f"{path}: [{section}] {key} = {value!r} is not a {'boolean' if expected is bool else 'number'}"
            )


def _limit(check: Check, thresholds: dict):
    value = thresholds.get(check.section, {}).get(check.key)
    if check.key == "fail_on_throttling":
        return 0 if value else None
    return value


def _subjects(check: Check, report: dict) -> list[tuple[str, dict]]:
    if check.scope == "result":
        return [(f"{r['size']} {r['backend']}", r) for r in report["results"]]
    if check.scope == "link":
        return [(f"link {run['size']} @ {run['baud']} baud", run) for run in report["link"]["runs"]]
    return [("run", report)]


def check_report(report: dict, thresholds: dict) -> list[Finding]:
    """One finding per threshold and subject; figures the report lacks (or a check does
    not apply to) are skipped."""
    findings = []
    for check in CHECKS:
        limit = _limit(check, thresholds)
        if limit is None:
            continue
        for subject, data in _subjects(check, report):
            value = check.figure(data)
            if value is None or not check.applies(data):
                continue
            passed = value >= limit if check.bound == "min" else value <= limit
            relation = ">=" if check.bound == "min" else "<="
            verdict = "ok" if passed else "REGRESSION"
            findings.append(
                Finding(passed, f"{verdict}: {subject}: {check.what} = {value:.4g} (limit {relation} {limit})")
            )
    return findings

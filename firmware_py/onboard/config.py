"""Configuration of the onboard daemon: a TOML file, overridable by command-line flags.

Every key is declared once, as a dataclass field with its type, default and limits;
:func:`load_config` checks a file against those declarations and names the file,
the section and the key in every error, so a typo on a flight computer is found at
start-up and not an hour into a pass. Unknown keys are errors, not ignored.
Relative paths in the file are relative to the file's directory.

Layout (docs/onboard.example.toml is a complete, commented example)::

    station = "N0CALL"          # source id in every packet
    spool = "/var/lib/qpv/spool"
    [link]    url, baud, pace_baud, framing, packet_size, write_timeout
    [source]  kind = "directory" | "synthetic" | "camera", path, settle_seconds, width, height, gray, camera_index
    [frames]  interval, utilization, max_bytes, quality, profile
    [queue]   policy = "latest" | "newest-first" | "fifo", max_pending, max_age
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..codec.errors import QpvError
from ..codec.packet_tables import packet_profiles
from ..link.framing import FRAMINGS
from ..link.packets import MAX_PACKET_SIZE, MIN_PACKET_SIZE, encode_source

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 onboard images
    import tomli as tomllib

SOURCE_KINDS = ("directory", "synthetic", "camera")
POLICIES = ("latest", "newest-first", "fifo")


class ConfigError(QpvError, ValueError):
    """The configuration file or a flag has a missing, unknown, mistyped or out-of-range key."""


def _limits(low: float | None = None, high: float | None = None, *, choices: tuple = (), low_open: bool = False):
    return {"low": low, "high": high, "choices": choices, "low_open": low_open}


@dataclass(frozen=True)
class LinkConfig:
    url: str  # pyserial URL or device path, or file:PATH
    baud: int = field(default=9600, metadata=_limits(50, 10_000_000))
    # The air rate when the radio is slower than its UART (pace to it, not to baud).
    pace_baud: int | None = field(default=None, metadata=_limits(50, 10_000_000))
    framing: str = field(default="kiss", metadata=_limits(choices=FRAMINGS))
    packet_size: int = field(default=256, metadata=_limits(MIN_PACKET_SIZE, MAX_PACKET_SIZE))
    write_timeout: float = field(default=5.0, metadata=_limits(0, 3600, low_open=True))

    @property
    def line_baud(self) -> int:
        """The rate the daemon paces to and budgets with."""
        return self.pace_baud or self.baud


@dataclass(frozen=True)
class SourceConfig:
    kind: str = field(metadata=_limits(choices=SOURCE_KINDS))
    path: Path | None = None  # directory source: the inbox the camera writes into
    settle_seconds: float = field(default=1.0, metadata=_limits(0, 3600))
    width: int = field(default=640, metadata=_limits(8, 8192))  # synthetic and camera
    height: int = field(default=480, metadata=_limits(8, 8192))
    gray: bool = False  # code luma only
    camera_index: int = field(default=0, metadata=_limits(0, 63))  # OpenCV device number


@dataclass(frozen=True)
class FrameConfig:
    interval: float = field(default=10.0, metadata=_limits(0, 86400, low_open=True))  # seconds per frame
    utilization: float = field(default=0.9, metadata=_limits(0, 1, low_open=True))  # share of the link a frame gets
    max_bytes: int | None = field(default=None, metadata=_limits(64, 1 << 30))  # fixed wire budget per frame
    quality: float | None = field(default=None, metadata=_limits(0, 1000, low_open=True))  # fixed quality, no budget
    profile: str | None = None


@dataclass(frozen=True)
class QueueConfig:
    policy: str = field(default="latest", metadata=_limits(choices=POLICIES))
    max_pending: int = field(default=16, metadata=_limits(1, 100_000))  # unsent frames kept
    max_age: float = field(default=0.0, metadata=_limits(0, 10 * 365 * 86400))  # seconds; 0 = no limit


@dataclass(frozen=True)
class OnboardConfig:
    station: str
    spool: Path
    link: LinkConfig
    source: SourceConfig
    frames: FrameConfig = FrameConfig()
    queue: QueueConfig = QueueConfig()


SECTIONS = {"link": LinkConfig, "source": SourceConfig, "frames": FrameConfig, "queue": QueueConfig}
TOP_LEVEL = ("station", "spool")


def _type_name(kind: type) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false", Path: "a path string"}[kind]


def _base_type(annotation: Any) -> tuple[type, bool]:
    """(type, optional) of a field annotation such as ``int | None``."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0], True
    return annotation, False


def _convert(value: Any, kind: type, where: str, base_dir: Path) -> Any:
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    else:
        ok = isinstance(value, str) and (kind is str or value != "")
    if not ok:
        raise ConfigError(f"{where} must be {_type_name(kind)}, got {value!r}")
    if kind is float:
        return float(value)
    if kind is Path:
        return base_dir / os.path.expanduser(value)  # os.path: an unknown ~user stays as written
    return value


def _check_limits(value: Any, limits: dict, where: str) -> None:
    if limits.get("choices") and value not in limits["choices"]:
        raise ConfigError(f"{where} must be one of {', '.join(map(repr, limits['choices']))}, got {value!r}")
    low, high = limits.get("low"), limits.get("high")
    if low is not None and (value < low or (limits["low_open"] and value == low)):
        bound = f"above {low}" if limits["low_open"] else f"at least {low}"
        raise ConfigError(f"{where} must be {bound}, got {value!r}")
    if high is not None and value > high:
        raise ConfigError(f"{where} must be at most {high}, got {value!r}")


def _build(cls: type, table: Any, where: str, base_dir: Path) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table, got {table!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(names))})")
    values = {}
    for spec in dataclasses.fields(cls):
        key_where = f"{where} {spec.name}"
        if spec.name not in table:
            if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{key_where} is required")
            continue
        kind, _ = _base_type(hints[spec.name])
        value = _convert(table[spec.name], kind, key_where, base_dir)
        _check_limits(value, spec.metadata, key_where)
        values[spec.name] = value
    return cls(**values)


def _check_consistency(config: OnboardConfig, origin: str) -> None:
    if config.source.kind == "directory" and config.source.path is None:
        raise ConfigError(f"{origin}: [source] path is required when kind = 'directory'")
    if config.frames.max_bytes is not None and config.frames.quality is not None:
        raise ConfigError(f"{origin}: [frames] give max_bytes or quality, not both")
    profiles = packet_profiles()
    if config.frames.profile is not None and config.frames.profile not in profiles:
        raise ConfigError(
            f"{origin}: [frames] profile must be one of {', '.join(map(repr, profiles))} (the profiles packet mode can send)"
        )
    try:
        encode_source(config.station)
    except ValueError as exc:
        raise ConfigError(f"{origin}: station: {exc}") from None


def build_config(raw: dict, *, origin: str = "config", base_dir: Path = Path(".")) -> OnboardConfig:
    """Validate a parsed TOML document (plus overrides) into an :class:`OnboardConfig`."""
    unknown = sorted(set(raw) - set(TOP_LEVEL) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{origin}: unknown key {unknown[0]!r} (sections: {', '.join(SECTIONS)})")
    for key in TOP_LEVEL:
        if key not in raw:
            raise ConfigError(f"{origin}: {key} is required")
    for name in ("link", "source"):
        if name not in raw:
            raise ConfigError(f"{origin}: section [{name}] is required")
    station = _convert(raw["station"], str, f"{origin}: station", base_dir)
    spool = _convert(raw["spool"], Path, f"{origin}: spool", base_dir)
    sections = {name: _build(cls, raw.get(name, {}), f"{origin}: [{name}]", base_dir) for name, cls in SECTIONS.items()}
    config = OnboardConfig(station=station, spool=spool, **sections)
    _check_consistency(config, origin)
    return config


def apply_overrides(raw: dict, overrides: dict[str, Any]) -> dict:
    """A copy of ``raw`` with dotted keys (``link.baud``, ``station``) replaced; None = not given."""
    merged = {key: dict(value) if isinstance(value, dict) else value for key, value in raw.items()}
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, _, key = dotted.rpartition(".")
        target = merged.setdefault(section, {}) if section else merged
        if not isinstance(target, dict):
            raise ConfigError(f"[{section}] must be a table, got {target!r}")
        target[key] = value
    return merged


def parse_toml(text: str, origin: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML ({exc})") from None


def load_config(path: Path, overrides: dict[str, Any] | None = None) -> OnboardConfig:
    """Read the TOML file ``path``, apply flag ``overrides`` (dotted keys) and validate.

    File paths are relative to the file's directory, flag paths to the working directory.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config ({getattr(exc, 'strerror', None) or exc})") from None
    raw = parse_toml(text, str(path))
    flags = {key: str(Path(v).resolve()) if isinstance(v, Path) else v for key, v in (overrides or {}).items()}
    return build_config(apply_overrides(raw, flags), origin=str(path), base_dir=Path(path).resolve().parent)

"""The daemon's TOML configuration: defaults, flags over file, one clear error per mistake."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from firmware_py.codec import QpvError
from firmware_py.codec.packet_tables import packet_profiles
from firmware_py.link.framing import FRAMINGS
from firmware_py.link.packets import MAX_PACKET_SIZE, MIN_PACKET_SIZE
from firmware_py.onboard.config import (
    POLICIES,
    SOURCE_KINDS,
    ConfigError,
    build_config,
    load_config,
    parse_toml,
)

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "docs" / "onboard.example.toml"

MINIMAL = """
station = "N0CALL"
spool = "spool"
[link]
url = "/dev/serial0"
[source]
kind = "synthetic"
"""


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # the strategies keep to characters where JSON and TOML strings agree
    return repr(value)


def dump_toml(raw: dict) -> str:
    """A TOML document of scalars at the top and one level of tables (all a config has)."""
    lines = [f"{key} = {toml_value(value)}" for key, value in raw.items() if not isinstance(value, dict)]
    for name, table in raw.items():
        if isinstance(table, dict):
            lines.append(f"[{name}]")
            lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "onboard.toml"
    path.write_text(text)
    return path


def test_the_shipped_example_is_valid(tmp_path):
    config = load_config(EXAMPLE)
    assert config.link.url == "/dev/serial0"
    assert config.source.kind == "directory"


def test_defaults_and_paths_relative_to_the_file(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    assert config.spool == tmp_path / "spool"
    assert (config.link.baud, config.link.framing, config.link.packet_size) == (9600, "kiss", 256)
    assert config.link.line_baud == 9600
    assert (config.frames.interval, config.frames.utilization, config.frames.max_bytes) == (10.0, 0.9, None)
    assert (config.queue.policy, config.queue.max_pending, config.queue.max_age) == ("latest", 16, 0.0)


def test_flags_override_the_file_and_paths_from_flags_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    overrides = {"link.baud": 115200, "link.url": "loop://", "spool": Path("elsewhere"), "frames.max_bytes": None}
    config = load_config(write(tmp_path, MINIMAL), overrides)
    assert (config.link.baud, config.link.url, config.frames.max_bytes) == (115200, "loop://", None)
    assert config.spool == tmp_path / "elsewhere"


def test_pace_baud_sets_the_line_rate(tmp_path):
    config = load_config(write(tmp_path, MINIMAL), {"link.baud": 57600, "link.pace_baud": 19200})
    assert config.link.line_baud == 19200


@pytest.mark.parametrize(
    "text, message",
    [
        ("station = ", "not valid TOML"),
        (MINIMAL + "bogus = 1\n", "unknown key 'bogus'"),
        (MINIMAL.replace("[link]", "[link]\nbuad = 9600"), r"\[link\]: unknown key 'buad'"),
        (MINIMAL.replace("[link]", "[link]\nbaud = \"fast\""), r"\[link\] baud must be an integer, got 'fast'"),
        (MINIMAL.replace("[link]", "[link]\nbaud = 9600.0"), r"\[link\] baud must be an integer"),
        (MINIMAL.replace("[link]", "[link]\nbaud = true"), r"\[link\] baud must be an integer"),
        (MINIMAL.replace("[link]", "[link]\nbaud = 0"), r"\[link\] baud must be at least 50"),
        (MINIMAL.replace("[link]", "[link]\nframing = \"hdlc\""), r"\[link\] framing must be one of 'kiss', 'cobs'"),
        (MINIMAL.replace("[link]", f"[link]\npacket_size = {MAX_PACKET_SIZE + 1}"), r"packet_size must be at most"),
        (MINIMAL.replace('url = "/dev/serial0"', ""), r"\[link\] url is required"),
        (MINIMAL.replace('kind = "synthetic"', 'kind = "directory"'), r"\[source\] path is required"),
        (MINIMAL + "[frames]\nmax_bytes = 5000\nquality = 1.0\n", "max_bytes or quality, not both"),
        (MINIMAL + "[frames]\nutilization = 0\n", r"utilization must be above 0"),
        (MINIMAL + "[frames]\ninterval = nan\n", r"interval must be a number"),
        (MINIMAL + "[queue]\npolicy = \"random\"\n", r"policy must be one of"),
        (MINIMAL + "[frames]\nprofile = \"nosuch\"\n", r"profile must be one of"),
        (MINIMAL + "[frames]\nprofile = \"klt\"\n", r"profile must be one of 'seed' \(the profiles packet mode can send\)"),
        ("queue = 3\n" + MINIMAL, r"\[queue\] must be a table"),
        (MINIMAL.replace('spool = "spool"', ""), "spool is required"),
        (MINIMAL.replace('spool = "spool"', 'spool = ""'), "spool must be a path string"),
        (MINIMAL.replace("[source]", "[sauce]"), "unknown key 'sauce'"),
        (MINIMAL.replace('[source]\nkind = "synthetic"', ""), "section \\[source\\] is required"),
    ],
)
def test_each_mistake_is_one_clear_error_naming_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, QpvError)


def test_bad_station_id_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="station"):
        load_config(write(tmp_path, MINIMAL.replace('"N0CALL"', '""')))


def test_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "absent.toml")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(binary)


# -- property tests ---------------------------------------------------------------

safe_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters='"\\'), min_size=1)
callsigns = st.sampled_from(["N0CALL", "DL1ABC", "CUBE-1", "g4xyz", "QPV"])
positive = st.floats(min_value=0.001, max_value=1000.0, allow_nan=False)

link_tables = st.fixed_dictionaries(
    {"url": safe_text},
    optional={
        "baud": st.integers(50, 10_000_000),
        "pace_baud": st.integers(50, 10_000_000),
        "framing": st.sampled_from(FRAMINGS),
        "packet_size": st.integers(MIN_PACKET_SIZE, MAX_PACKET_SIZE),
        "write_timeout": positive,
    },
)
source_tables = st.fixed_dictionaries(
    {"kind": st.sampled_from([k for k in SOURCE_KINDS if k != "directory"])},
    optional={"width": st.integers(8, 8192), "height": st.integers(8, 8192), "gray": st.booleans()},
) | st.fixed_dictionaries({"kind": st.just("directory"), "path": safe_text}, optional={"settle_seconds": positive})
frame_tables = st.fixed_dictionaries(
    {},
    optional={
        "interval": positive,
        "utilization": st.floats(0.01, 1.0),
        "max_bytes": st.integers(64, 1 << 30),
        "profile": st.sampled_from(packet_profiles()),
    },
)
queue_tables = st.fixed_dictionaries(
    {},
    optional={
        "policy": st.sampled_from(POLICIES),
        "max_pending": st.integers(1, 100_000),
        "max_age": st.floats(0, 1e6),
    },
)
configs = st.fixed_dictionaries(
    {"station": callsigns, "spool": safe_text, "link": link_tables, "source": source_tables},
    optional={"frames": frame_tables, "queue": queue_tables},
)


@given(configs)
def test_any_valid_config_survives_toml_and_keeps_every_value(raw):
    config = build_config(parse_toml(dump_toml(raw), "prop"), origin="prop", base_dir=Path("/base"))
    assert config.station == raw["station"]
    assert config.spool == Path("/base") / os.path.expanduser(raw["spool"])
    for section in ("link", "source", "frames", "queue"):
        for key, value in raw.get(section, {}).items():
            got = getattr(getattr(config, section), key)
            assert got == (Path("/base") / os.path.expanduser(value) if key == "path" else value), (section, key)


wrong_values = st.one_of(
    st.text(st.characters(min_codepoint=0x61, max_codepoint=0x7A), min_size=1),
    st.integers(-(10**12), -1),
    st.integers(10**11, 10**12),
    st.lists(st.integers(), max_size=2),
    st.booleans(),
)


@given(configs, st.sampled_from(["link", "source", "frames", "queue"]), st.data())
def test_a_wrong_value_anywhere_is_a_config_error_naming_its_key(raw, section, data):
    table = dict(raw.get(section, {}))
    key = data.draw(
        st.sampled_from(
            {
                "link": ["baud", "pace_baud", "framing", "packet_size", "write_timeout"],
                "source": ["kind", "settle_seconds", "width", "height", "camera_index"],
                "frames": ["interval", "utilization", "max_bytes", "quality"],
                "queue": ["policy", "max_pending", "max_age"],
            }[section]
        )
    )
    value = data.draw(wrong_values)
    assume(value not in (*FRAMINGS, *SOURCE_KINDS, *POLICIES))
    table[key] = value
    broken = {**raw, section: table}
    with pytest.raises(ConfigError) as caught:
        build_config(broken, origin="prop")
    assert f"[{section}] {key}" in str(caught.value)


@given(st.text(max_size=200))
def test_arbitrary_text_is_a_config_or_a_config_error(text):
    try:
        build_config(parse_toml(text, "prop"), origin="prop")
    except ConfigError:
        pass

"""The HIL harness: ``hil/run.py --quick`` runs for real here and its report matches the
schema; the pieces around it (stage hooks, frames, threshold check, ssh commands) are
tested on their own. No figure is asserted against a speed: timing is the harness's
output, never a pass/fail criterion of the suite (docs/HIL.md).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from firmware_py.codec import DEFAULT_PROFILE, blocking, decode, encode
from hil import backends, board, frames, reference, remote, run, stages, thresholds, throughput

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "hil" / "run.py"
SCHEMA = json.loads((REPO / "hil" / "schema.json").read_text())
# Stages every profile's encoder runs, and those only one stream format has.
CODEC_STAGES = {"colour", "transform", "huffman_tables", "huffman_coding", "bitstream"}
# klt encodes blocking + transform + quantization in one fused stage (blockcoder); its
# decoder still reassembles blocks.
PROFILE_STAGES = {"seed": {"classification", "blocking", "quantization"}, "klt": {"prediction", "restoration", "blocking"}}


def run_hil(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(RUN), *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> tuple[dict, str, Path]:
    """One real quick run (what CI runs): report, markdown, and the report's path."""
    out = tmp_path_factory.mktemp("hil")
    done = run_hil("--quick", "--json", str(out / "report.json"), "--md", str(out / "report.md"))
    assert done.returncode == 0, done.stderr
    return json.loads((out / "report.json").read_text()), (out / "report.md").read_text(), out / "report.json"


@pytest.mark.slow
def test_quick_report_matches_the_schema(quick):
    report, _, _ = quick
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(report, SCHEMA, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("path", sorted((REPO / "docs" / "results").glob("hil-*.json")), ids=lambda p: p.name)
def test_committed_reports_match_the_schema(path):
    jsonschema.validate(json.loads(path.read_text()), SCHEMA, cls=jsonschema.Draft202012Validator)


def test_schema_rejects_a_report_without_a_figure(quick):
    report = copy.deepcopy(quick[0])
    del report["results"][0]["ratios_vs_jpeg"]["encode_fixed"]
    with pytest.raises(jsonschema.ValidationError, match="encode_fixed"):
        jsonschema.validate(report, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_quick_report_times_every_codec_stage_and_the_reference(quick):
    report, markdown, _ = quick
    (result,) = report["results"]
    assert (result["size"], result["backend"]) == ("640x480", "numba")
    assert report["settings"]["profile"] == DEFAULT_PROFILE
    for operation in ("qpv_encode_fixed", "qpv_encode_rate_control"):
        assert set(result["stages_s"][operation]) >= CODEC_STAGES, operation
    mpix = result["mpix_per_s"]
    assert result["ratios_vs_jpeg"]["encode_fixed"] == pytest.approx(
        mpix["qpv_encode_fixed"]["median"] / mpix["jpeg_encode"]["median"]
    )
    rate = result["rate"]
    assert rate["target_reachable"] and rate["qpv_rate_control_bpp"] <= rate["target_bpp"]
    assert "| 640x480 | numba |" in markdown


def test_quick_report_times_a_frame_over_the_link(quick):
    link = quick[0]["link"]
    assert link["unavailable"] is None, link["unavailable"]
    (run_,) = link["runs"]
    assert run_["full_frame_s"] is not None, "the ground decoder never completed the frame"
    assert run_["first_preview_s"] <= run_["full_frame_s"]
    assert run_["wire_bytes"] <= quick[0]["results"][0]["rate"]["budget_bytes"]


def _thresholds_file(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


def test_check_exits_1_on_a_regression_and_0_within_limits(quick, tmp_path):
    report, _, report_path = quick
    ratio = report["results"][0]["ratios_vs_jpeg"]["encode_fixed"]
    rss = report["results"][0]["memory"]["encode_peak_rss_mib"]
    passing = _thresholds_file(
        tmp_path / "ok.toml",
        f"[encode]\nmin_ratio_fixed = {ratio / 2}\n[memory]\nmax_encode_peak_rss_mib = {rss * 2}\n",
    )
    done = run_hil("--from-json", str(report_path), "--check", str(passing))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 of 2 checks passed" in done.stdout
    failing = _thresholds_file(tmp_path / "bad.toml", f"[memory]\nmax_encode_peak_rss_mib = {rss / 2}\n")
    done = run_hil("--from-json", str(report_path), "--check", str(failing))
    assert done.returncode == run.EXIT_REGRESSION
    assert "REGRESSION: 640x480 numba: peak RSS" in done.stdout


def test_unknown_threshold_is_a_bad_input_error(quick, tmp_path):
    typo = _thresholds_file(tmp_path / "typo.toml", "[encode]\nmin_ratio_fixd = 0.1\n")
    done = run_hil("--from-json", str(quick[2]), "--check", str(typo))
    assert done.returncode == run.EXIT_BAD_INPUT
    assert done.stderr.startswith("hil: error:") and "min_ratio_fixd" in done.stderr


@pytest.mark.parametrize("name", ["pi4", "pi5", "jetson-orin-nano", "generic-x86"])
def test_shipped_threshold_profiles_load_and_say_if_provisional(name):
    limits = thresholds.load_thresholds(thresholds.THRESHOLD_DIR / f"{name}.toml")
    assert limits["profile"]["name"] == name
    assert limits["profile"]["provisional"] is (name != "generic-x86")
    assert {"encode", "decode", "memory", "start", "link"} <= set(limits)


@pytest.mark.parametrize("profile", sorted(PROFILE_STAGES))
def test_stage_hooks_time_the_real_functions_and_restore_them(kodim23, profile):
    image = kodim23[:96, :128]
    plain = encode(image, bpp=0.3, profile=profile)
    with stages.timed_stages() as clock:
        assert getattr(blocking.plane_to_blocks, "__wrapped_stage__", None) == "blocking"
        timed = encode(image, bpp=0.3, profile=profile)
        decode(timed)
    assert timed == plain, "timing must not change the stream"
    assert not hasattr(blocking.plane_to_blocks, "__wrapped_stage__")
    assert CODEC_STAGES | PROFILE_STAGES[profile] <= {stage for stage, calls in clock.calls.items() if calls}
    breakdown = clock.breakdown(10.0)
    assert breakdown["other"] == pytest.approx(10.0 - sum(v for k, v in breakdown.items() if k != "other"))


def test_every_stage_target_resolves_and_the_schema_knows_every_stage():
    _, missing = stages.available_stages()
    assert not missing, missing
    assert SCHEMA["$defs"]["stages"]["propertyNames"]["enum"] == [*dict.fromkeys(s for s, _ in stages.STAGES), "other"]


def test_frames_are_tiled_from_the_real_images():
    images = frames.resolve_images(["kodak"])[:2]
    frame = frames.build_frame(frames.FrameSize(640, 480), images)
    first, second = (frames.load_tile(p, gray=False) for p in images)
    assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame[:, :512], first[:480])
    np.testing.assert_array_equal(frame[:, 512:], second[:480, :128])
    assert frames.images_used(frames.FrameSize(640, 480), images) == [p.name for p in images]


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="640by480"):
        frames.parse_sizes("640by480")
    done = run_hil("--sizes", "4x4")
    assert done.returncode == run.EXIT_BAD_INPUT and done.stderr.startswith("hil: error:")


def test_calibration_falls_back_to_the_lowest_rate_the_profile_reaches():
    frame = frames.build_frame(frames.FrameSize(128, 96), frames.resolve_images(["kodak"])[:1])
    job = {"bpp": 0.01, "backend": "numba", "profile": "seed", "packet_size": 256, "framing": "kiss"}
    rate = throughput.calibrate(frame, job)
    target = int(0.01 * frame.shape[0] * frame.shape[1] / 8)
    assert rate["target_reachable"] is False and rate["budget_bytes"] > target
    assert rate["qpv_rate_control_bpp"] == pytest.approx(rate["budget_bytes"] * 8 / (128 * 96))
    # Packets get the stream's budget; packet mode's own floor may lie above it too.
    assert rate["packet_target_reachable"] == (rate["packet_wire_budget_bytes"] == rate["budget_bytes"])
    floor, reachable = backends.reachable_wire_budget(frame, 256, "kiss", target)
    assert not reachable and floor > target


def test_jpeg_quality_search_finds_the_nearest_rate(kodim23):
    target = 6000
    sizes = {q: len(reference.jpeg_encode(kodim23, q)) for q in range(1, 40)}
    chosen = reference.closest_setting(lambda q: sizes[q], list(sizes), target)
    assert abs(sizes[chosen] - target) == min(abs(size - target) for size in sizes.values())


def test_ssh_session_commands(tmp_path):
    args = run.build_parser().parse_args(
        [
            "--ssh",
            "pi@rover",
            "--quick",
            "--baud",
            "9600",
            "--serial",
            "/dev/serial0",
            "--json",
            "local.json",
            "--check",
            "hil/thresholds/pi4.toml",
            "--remote-dir",
            "hil runs/a",
        ]
    )
    flags = run.forwarded_args(args, ["hil-images/000-kodim01.png"])
    assert "--ssh" not in flags and "--json" not in flags and "--check" not in flags
    assert flags[:2] == ["--images", "hil-images/000-kodim01.png"]
    assert flags[flags.index("--baud") : flags.index("--baud") + 2] == ["--baud", "9600"] and "--quick" in flags
    plan = remote.RemotePlan(
        "pi@rover", args.remote_dir, "python3", tmp_path / "a.tar.gz", tuple(flags), tmp_path / "r.json"
    )
    copy_, unpack, run_, fetch = remote.remote_commands(plan)
    assert copy_ == ["scp", "-q", str(tmp_path / "a.tar.gz"), "pi@rover:hil runs/a.tar.gz"]
    assert unpack[:2] == ["ssh", "pi@rover"] and "tar -xzf 'hil runs/a.tar.gz' -C 'hil runs/a'" in unpack[2]
    assert run_[2].startswith("cd 'hil runs/a' && python3 hil/run.py --images hil-images/000-kodim01.png")
    assert run_[2].endswith(f"--json {remote.REMOTE_REPORT}")
    assert fetch == ["scp", "-q", f"pi@rover:hil runs/a/{remote.REMOTE_REPORT}", str(tmp_path / "r.json")]


def test_ssh_ships_only_the_images_the_frames_use():
    quick = run.build_parser().parse_args(["--ssh", "pi@rover", "--quick"])
    assert [p.name for p in run.images_to_ship(quick)] == ["kodim01.png", "kodim02.png"]
    full = run.build_parser().parse_args(["--ssh", "pi@rover", "--link-sizes", "none"])
    assert len(run.images_to_ship(full)) == len(frames.resolve_images(None)) == 36


def test_ssh_archive_holds_the_package_and_images_but_no_venv(tmp_path):
    image = frames.resolve_images(["kodak"])[0]
    archive = tmp_path / "a.tar.gz"
    remote.write_archive(archive, [image])
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert {"hil/run.py", "firmware_py/codec/encoder.py", f"hil-images/000-{image.name}"} <= set(names)
    assert not [n for n in names if n.split("/")[0] in {".venv", ".git"} or "__pycache__" in n]


def test_board_readers_parse_what_boards_print():
    pi4 = "processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd08\nModel\t: Raspberry Pi 4 Model B Rev 1.4\n"
    assert board.cpu_model(pi4) == "Cortex-A72"
    assert board.cpu_model("model name\t: Intel(R) Xeon(R) Processor\n") == "Intel(R) Xeon(R) Processor"
    assert board.decode_throttled(0x50005) == [
        "under-voltage",
        "throttled",
        "under-voltage-occurred",
        "throttling-occurred",
    ]
    assert board.decode_throttled(0) == []

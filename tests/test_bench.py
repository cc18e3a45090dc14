"""``qpv bench rd``: BD-rate, curve interpolation, and one small end-to-end run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from codec_helpers import crop

from firmware_py import imageio
from firmware_py.bench.bdrate import bjontegaard
from firmware_py.bench.codecs import QpvCodec
from firmware_py.bench.curves import interpolate_at, monotone_envelope
from firmware_py.bench.sweep import thin_by_rate
from firmware_py.cli import main
from firmware_py.codec import encode
from firmware_py.codec.profiles import MAX_QUALITY, MIN_QUALITY

# A curve whose PSNR is linear in log(rate): the cubic fit of log-rate against PSNR is
# exact, and so is interpolating it at the window's edges, so BD-rates are known exactly.
RATES = np.geomspace(0.05, 0.25, 7)


def psnr_of(rates: np.ndarray) -> np.ndarray:
    return 32.0 + 4.0 * np.log(rates / 0.25)


@pytest.mark.parametrize("factor", [0.8, 1.25, 1.5])
def test_bd_rate_of_a_curve_needing_a_known_factor_more_bits(factor):
    # The test codec reaches every PSNR of the anchor with `factor` times the bits.
    result = bjontegaard(RATES, psnr_of(RATES), RATES * factor, psnr_of(RATES))
    assert result.reason is None
    assert result.percent == pytest.approx((factor - 1) * 100, abs=1e-6)


def test_bd_rate_of_identical_curves_is_zero():
    assert bjontegaard(RATES, psnr_of(RATES), RATES, psnr_of(RATES)).percent == pytest.approx(0, abs=1e-9)


def test_bd_rate_ignores_points_outside_the_window():
    anchor_rates = np.concatenate(([0.01], RATES, [1.0]))
    anchor_psnr = np.concatenate(([5.0], psnr_of(RATES), [60.0]))  # far off the curve
    result = bjontegaard(anchor_rates, anchor_psnr, RATES * 1.25, psnr_of(RATES))
    assert result.percent == pytest.approx(25.0, abs=1e-6)


def test_bd_rate_of_curves_without_shared_psnr_is_not_given():
    result = bjontegaard(RATES, psnr_of(RATES), RATES, psnr_of(RATES) + 20.0)
    assert result.percent is None
    assert "do not overlap" in result.reason


def test_bd_rate_needs_a_curve_inside_the_window():
    far = np.geomspace(0.4, 2.0, 6)
    result = bjontegaard(far, psnr_of(far), RATES, psnr_of(RATES))
    assert result.percent is None
    assert "does not reach" in result.reason


def test_bd_rate_needs_four_points_for_the_cubic_fit():
    # One point inside 0.05-0.25 plus the two window edges make only 3 points.
    sparse = np.array([0.04, 0.1, 0.3])
    result = bjontegaard(sparse, psnr_of(sparse), RATES, psnr_of(RATES))
    assert result.percent is None
    assert "needs 4" in result.reason


def test_interpolation_is_linear_in_log_rate_and_exact_at_points():
    rates, values = [0.1, 0.4], [20.0, 30.0]
    assert interpolate_at(rates, values, [0.1, 0.2, 0.4]) == pytest.approx([20.0, 25.0, 30.0])


def test_interpolation_never_extrapolates():
    rates, values = [0.1, 0.2, 0.4], [20.0, 24.0, 30.0]
    assert interpolate_at(rates, values, [0.05, 0.0999, 0.41, 1.0]) == [None, None, None, None]
    assert interpolate_at([], [], [0.1]) == [None]


def test_interpolation_uses_the_monotone_envelope():
    # The 0.2 bpp point decodes worse than the cheaper 0.1 bpp one: it is raised to it.
    rates, values = [0.4, 0.1, 0.2], [30.0, 24.0, 22.0]
    assert interpolate_at(rates, values, [0.2]) == pytest.approx([24.0])
    envelope_rates, envelope = monotone_envelope([0.1, 0.1, 0.2], [21.0, 23.0, 22.0])
    assert envelope_rates.tolist() == [0.1, 0.2]
    assert envelope.tolist() == [23.0, 23.0]


def test_thinning_keeps_the_ends_and_spaces_the_rest():
    streams = [(float(n), bytes(n)) for n in (100, 103, 108, 115, 130, 131)]
    kept = [len(stream) for _, stream in thin_by_rate(streams, 1.1)]
    assert kept == [100, 115, 131]


def test_qpv_sweep_codes_exactly_what_encode_makes(gray_crop, colour_crop):
    # The bench re-codes one analysis per quality; the streams must be encode()'s own.
    for image in (gray_crop, colour_crop):
        code = QpvCodec("seed").encoder(image)
        for quality in (MIN_QUALITY, 0.7, MAX_QUALITY):
            assert code(quality) == encode(image, quality=quality, profile="seed")


def test_transform_profiles_are_swept_by_budget_as_an_operator_runs_them(lena2):
    codec = QpvCodec("klt")
    image = crop(lena2, 256, 256)
    budgets = codec.settings(image, (0.05, 0.25))
    assert budgets == sorted(budgets) and budgets[0] < 0.05 and budgets[-1] > 0.25
    code = codec.encoder(image)
    assert code(0.04) == encode(image, bpp=0.04, profile="klt")  # half resolution: only with a budget
    tiny = crop(lena2, 16, 16)
    assert QpvCodec("klt").encoder(tiny)(0.01) == encode(tiny, quality=MAX_QUALITY, profile="klt")


@pytest.fixture
def crops_dir(tmp_path, lena2, kodim23):
    """Two 64x64 PNG crops of test images (one gray, one colour) in a fresh directory."""
    folder = tmp_path / "images"
    folder.mkdir()
    imageio.save_image(folder / "lena2-crop.png", crop(lena2, 64, 64))
    imageio.save_image(folder / "kodim23-crop.png", crop(kodim23, 64, 64))
    return folder


def test_rd_command_writes_json_markdown_and_plot(crops_dir, tmp_path, capsys):
    out = tmp_path / "rd"
    targets = [0.4, 0.5, 0.7, 2.0]
    code = main(
        [
            "bench",
            "rd",
            "--images",
            str(crops_dir),
            "--bpp",
            "2,0.5,0.7,0.4",
            "--profile",
            "seed",
            "--out",
            str(out),
            "--name",
            "crops",
        ]
    )
    assert code == 0
    doc = json.loads((out / "rd.json").read_text())
    assert {"schema", "command", "date", "versions", "codecs", "images", "mean", "bd_rate"} <= doc.keys()
    assert doc["targets_bpp"] == targets
    assert doc["versions"]["pillow"] and doc["versions"]["libjpeg-turbo"]
    keys = [c["key"] for c in doc["codecs"]]
    assert keys == ["qpv-seed", "jpeg", "jpeg2000", "webp"]
    assert [e["name"] for e in doc["images"]] == ["kodim23-crop.png", "lena2-crop.png"]
    for entry in doc["images"]:
        assert (entry["width"], entry["height"], entry["channels"]) == (64, 64, 1)
        for key in keys:
            curve = entry["curves"][key]
            assert len(curve["bpp"]) >= 3 and curve["bpp"] == sorted(curve["bpp"])
            assert all(b == pytest.approx(n * 8 / 4096, abs=1e-6) for b, n in zip(curve["bpp"], curve["bytes"]))
            assert len(entry["at_targets"][key]["psnr"]) == len(targets)
        # On 64x64 crops the headers alone exceed 0.25 bpp for the references: no BD-rate.
        for result in entry["bd_rate"].values():
            assert (result["percent"] is None) == (result["reason"] is not None)
    for key in keys:
        mean = doc["mean"][key]
        for index in range(len(targets)):
            values = [e["at_targets"][key]["psnr"][index] for e in doc["images"]]
            covered = [v for v in values if v is not None]
            assert mean["images"][index] == len(covered)
            if covered:
                assert mean["psnr"][index] == pytest.approx(sum(covered) / len(covered))
    # qpv's finest quality stays under 1 bpp on these crops: 2 bpp is missing, not extrapolated.
    assert doc["mean"]["qpv-seed"]["images"] == [2, 2, 2, 0]
    assert doc["mean"]["qpv-seed"]["psnr"][3] is None
    assert all(20 < v < 50 for v in doc["mean"]["qpv-seed"]["psnr"][:3])
    assert (out / "rd.png").read_bytes().startswith(b"\x89PNG")
    markdown = (out / "rd.md").read_text()
    assert "## crops" in markdown and "### Per image" in markdown
    printed = capsys.readouterr().out
    assert "| 0.5 |" in printed and "(2/2)" in printed and "– (0/2)" in printed


def test_rd_reports_can_be_remade_from_the_json(crops_dir, tmp_path):
    first = tmp_path / "first"
    assert (
        main(
            [
                "bench",
                "rd",
                "--images",
                str(crops_dir / "lena2-crop.png"),
                "--bpp",
                "0.6",
                "--out",
                str(first),
                "--color",
                "rgb",
            ]
        )
        == 0
    )
    again = tmp_path / "again"
    assert main(["bench", "rd", "--from-json", str(first / "rd.json"), "--out", str(again)]) == 0
    # Everything derived is recomputed from the stored curves, and comes out the same.
    assert (again / "rd.json").read_text() == (first / "rd.json").read_text()
    assert (again / "rd.md").read_text() == (first / "rd.md").read_text()
    assert (again / "rd.png").is_file()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--images", "no/such/dir"], "no such file or directory"),
        (["--images", "IMAGES", "--bpp", "0.1,x"], "comma-separated numbers"),
        (["--images", "IMAGES", "--bpp", "-1"], "between 0 and 64"),
        (["--images", "IMAGES", "--profile", "nope"], "unknown profile"),
        (["--from-json", "IMAGES/lena2-crop.png"], "not a readable rd.json"),
    ],
)
def test_rd_bad_input_is_one_line_and_exit_code_2(arguments, message, crops_dir, tmp_path, capsys):
    arguments = [a.replace("IMAGES", str(crops_dir)) for a in arguments]
    assert main(["bench", "rd", *arguments, "--out", str(tmp_path / "rd")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("qpv: error:") and message in error and "\n" not in error
    assert not (tmp_path / "rd").exists()


def test_rd_colour_mode_codes_colour_images_in_colour(tmp_path, kodim23):
    path = tmp_path / "colour.png"
    imageio.save_image(path, crop(kodim23, 48, 48))
    out = tmp_path / "rd"
    assert main(["bench", "rd", "--images", str(path), "--bpp", "1.5", "--color", "rgb", "--out", str(out)]) == 0
    entry = json.loads((out / "rd.json").read_text())["images"][0]
    assert entry["channels"] == 3
    assert all(math.isfinite(p) for p in entry["curves"]["jpeg"]["psnr"])

"""The ``qpv`` command line: one line per success, one ``qpv: error:`` line and exit
code 2 for bad input, and no output file left behind by a failed run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from firmware_py import imageio
from firmware_py.cli import EXIT_BAD_INPUT, main
from firmware_py.codec import DEFAULT_PROFILE, decode, read_header

from codec_helpers import REPO, crop


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, lena2, kodim23):
    """A gray and a colour PNG (crops of real test images) and a valid gray stream."""
    folder = tmp_path_factory.mktemp("cli-inputs")
    gray, colour = folder / "gray.png", folder / "colour.png"
    imageio.save_image(gray, crop(lena2, 72, 88))
    imageio.save_image(colour, crop(kodim23, 45, 61))
    stream = folder / "gray.qpv"
    assert main(["encode", str(gray), "-o", str(stream)]) == 0
    return {"gray": gray, "colour": colour, "stream": stream}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line(text: str) -> str:
    assert text.endswith("\n") and text.count("\n") == 1, repr(text)
    return text.strip()


def assert_bad_input(result: tuple[int, str, str], *fragments: str) -> None:
    code, out, err = result
    assert code == EXIT_BAD_INPUT
    assert out == ""
    line = assert_one_line(err)
    assert line.startswith("qpv: error: ")
    for fragment in fragments:
        assert fragment in line


def files_in(folder: Path) -> list[str]:
    """Every file name in ``folder``, temporary ones of an atomic write included."""
    return sorted(p.name for p in folder.iterdir())


# -- happy paths ----------------------------------------------------------------------------


def test_encode_gray_prints_one_line(capsys, inputs, tmp_path):
    out = tmp_path / "g.qpv"
    code, stdout, stderr = run(capsys, "encode", inputs["gray"], "-o", out)
    assert code == 0 and stderr == ""
    line = assert_one_line(stdout)
    assert "88x72 gray" in line and "bpp" in line and "PSNR" in line and f"profile {DEFAULT_PROFILE}" in line
    assert f"{out.stat().st_size} bytes" in line
    assert decode(out.read_bytes()).shape == (72, 88)


def test_encode_colour_and_gray_flag(capsys, inputs, tmp_path):
    code, stdout, _ = run(capsys, "encode", inputs["colour"], "-o", tmp_path / "c.qpv")
    assert code == 0 and "colour 4:2:0" in assert_one_line(stdout)
    assert decode((tmp_path / "c.qpv").read_bytes()).shape == (45, 61, 3)
    code, stdout, _ = run(capsys, "encode", inputs["colour"], "--gray", "-o", tmp_path / "l.qpv")
    assert code == 0 and "gray" in assert_one_line(stdout)
    assert decode((tmp_path / "l.qpv").read_bytes()).shape == (45, 61)


@pytest.mark.parametrize(("option", "value"), [("--bpp", "0.5"), ("--max-bytes", "400"), ("--quality", "0.5")])
def test_encode_rate_options(capsys, inputs, tmp_path, option, value):
    out = tmp_path / "r.qpv"
    code, stdout, _ = run(capsys, "encode", inputs["gray"], option, value, "-o", out)
    assert code == 0
    assert_one_line(stdout)
    size = out.stat().st_size
    if option == "--bpp":
        assert size * 8 / (72 * 88) <= 0.5
    if option == "--max-bytes":
        assert size <= 400


def test_decode_prints_one_line_and_writes_the_image(capsys, inputs, tmp_path):
    out = tmp_path / "d.png"
    code, stdout, stderr = run(capsys, "decode", inputs["stream"], "-o", out)
    assert code == 0 and stderr == ""
    assert "88x72 gray" in assert_one_line(stdout)
    np.testing.assert_array_equal(imageio.load_image(out), decode(inputs["stream"].read_bytes()))


def test_info_prints_the_header(capsys, inputs):
    code, stdout, _ = run(capsys, "info", inputs["stream"])
    line = assert_one_line(stdout)
    header = read_header(inputs["stream"].read_bytes())
    assert code == 0
    assert f"qpv format {header.version}" in line and f"(id {header.profile_id})" in line
    assert header.model_fingerprint.hex() in line


# -- bad input ------------------------------------------------------------------------------


def test_missing_input_file(capsys, tmp_path):
    assert_bad_input(run(capsys, "encode", tmp_path / "nope.png", "-o", tmp_path / "x.qpv"), "no such file")
    assert_bad_input(run(capsys, "decode", tmp_path / "nope.qpv", "-o", tmp_path / "x.png"), "nope.qpv")
    assert_bad_input(run(capsys, "info", tmp_path / "nope.qpv"), "nope.qpv")
    assert files_in(tmp_path) == []


def test_text_file_named_png(capsys, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("these are not pixels\n")
    assert_bad_input(run(capsys, "encode", fake, "-o", tmp_path / "x.qpv"), "not a readable image")
    assert files_in(tmp_path) == ["notes.png"]


def test_truncated_stream(capsys, inputs, tmp_path):
    truncated = tmp_path / "cut.qpv"
    truncated.write_bytes(inputs["stream"].read_bytes()[:-7])
    assert_bad_input(run(capsys, "decode", truncated, "-o", tmp_path / "out.png"), "CRC-32")
    assert_bad_input(run(capsys, "info", truncated), "CRC-32")
    assert files_in(tmp_path) == ["cut.qpv"]


def test_failed_decode_keeps_an_existing_output(capsys, inputs, tmp_path):
    out = tmp_path / "out.png"
    out.write_bytes(b"previous contents")
    (tmp_path / "bad.qpv").write_bytes(b"QPVC garbage")
    assert_bad_input(run(capsys, "decode", tmp_path / "bad.qpv", "-o", out))
    assert out.read_bytes() == b"previous contents"
    assert files_in(tmp_path) == ["bad.qpv", "out.png"]


def test_impossible_budget(capsys, inputs, tmp_path):
    out = tmp_path / "x.qpv"
    assert_bad_input(run(capsys, "encode", inputs["gray"], "--max-bytes", "20", "-o", out), "over the budget of 20")
    assert_bad_input(run(capsys, "encode", inputs["gray"], "--max-bytes", "0", "-o", out), "max_bytes")
    assert_bad_input(run(capsys, "encode", inputs["gray"], "--bpp", "-1", "-o", out), "bpp")
    assert files_in(tmp_path) == []


def test_bad_quality_and_profile(capsys, inputs, tmp_path):
    out = tmp_path / "x.qpv"
    assert_bad_input(run(capsys, "encode", inputs["gray"], "--quality", "100", "-o", out), "outside")
    assert_bad_input(run(capsys, "encode", inputs["gray"], "--profile", "nope", "-o", out), "unknown profile 'nope'")
    assert files_in(tmp_path) == []


def test_unwritable_outputs(capsys, inputs, tmp_path):
    assert_bad_input(run(capsys, "encode", inputs["gray"], "-o", tmp_path / "missing-dir" / "x.qpv"))
    assert_bad_input(run(capsys, "decode", inputs["stream"], "-o", tmp_path / "x.unknownext"), "extension")
    assert files_in(tmp_path) == []


def test_bpp_with_quality_is_a_usage_error(capsys, inputs, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["encode", str(inputs["gray"]), "--bpp", "0.2", "--quality", "1", "-o", str(tmp_path / "x.qpv")])
    assert exit_info.value.code == EXIT_BAD_INPUT
    assert "not allowed with argument" in capsys.readouterr().err


# -- the installed entry point --------------------------------------------------------------


def test_python_dash_m_entry_point(inputs, tmp_path):
    out = tmp_path / "s.qpv"
    ok = subprocess.run(
        [sys.executable, "-m", "firmware_py", "encode", str(inputs["colour"]), "--bpp", "1.0", "-o", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count("\n") == 1 and "colour 4:2:0" in ok.stdout
    out.write_bytes(out.read_bytes()[:-1])
    bad = subprocess.run(
        [sys.executable, "-m", "firmware_py", "decode", str(out), "-o", str(tmp_path / "s.png")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert bad.returncode == EXIT_BAD_INPUT
    assert bad.stderr.startswith("qpv: error: ") and bad.stderr.count("\n") == 1
    assert files_in(tmp_path) == ["s.qpv"]

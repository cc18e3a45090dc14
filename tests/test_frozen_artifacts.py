"""The klt upsampler and static Huffman sets are named in stream fingerprints: the tools
that train them refuse to replace a different file unless told to (docs/MODELS.md,
"Frozen artifacts"), and leave the models directory as it was when they refuse."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from export import train_tables, train_upsampler
from export.manifest import FrozenArtifactError, write_frozen_artifact
from firmware_py.codec import models

from codec_helpers import REPO


def test_frozen_artifact_is_written_when_new_or_unchanged(tmp_path):
    path = tmp_path / "set.npz"
    write_frozen_artifact(path, b"first", replace=False)
    write_frozen_artifact(path, b"first", replace=False)
    assert path.read_bytes() == b"first"


def test_frozen_artifact_that_would_change_is_refused_and_kept(tmp_path):
    path = tmp_path / "set.npz"
    path.write_bytes(b"first")
    with pytest.raises(FrozenArtifactError, match="--replace-frozen"):
        write_frozen_artifact(path, b"second", replace=False)
    assert path.read_bytes() == b"first"
    write_frozen_artifact(path, b"second", replace=True)
    assert path.read_bytes() == b"second"


def _models_copy(tmp_path, artifact: str):
    out = tmp_path / "models"
    out.mkdir()
    for name in (models.MANIFEST_NAME, artifact):
        shutil.copy(REPO / "models" / name, out / name)
    return out


def _fake_tables(paths, k, log, version):
    """A set other than the shipped one (training it for real takes minutes)."""
    return {"joint_luma": np.ones((1, 4), dtype=np.int64)}


def _fake_upsampler(fit_part, rule_paths, log):
    return {"weights": np.zeros((4, 49)), "thresholds": {"gray": 0.05, "colour": 0.1}, "gains_db": {}}


@pytest.mark.parametrize(
    "tool, patch, artifact",
    [
        (train_tables, ("train", _fake_tables), "klt-context-tables.npz"),
        (train_upsampler, ("fit", _fake_upsampler), "klt-half.npz"),
    ],
)
def test_training_tool_refuses_to_replace_a_fingerprinted_artifact(
    tmp_path, monkeypatch, capsys, tool, patch, artifact
):
    out = _models_copy(tmp_path, artifact)
    monkeypatch.setattr(tool, *patch)
    before = {name: (out / name).read_bytes() for name in (models.MANIFEST_NAME, artifact)}

    assert tool.main(["--out", str(out)]) == 2
    assert "would change" in capsys.readouterr().err
    assert {name: (out / name).read_bytes() for name in before} == before

    assert tool.main(["--out", str(out), "--replace-frozen"]) == 0
    entry = json.loads((out / models.MANIFEST_NAME).read_text())["models"][artifact.removesuffix(".npz")]
    assert (out / artifact).read_bytes() != before[artifact]
    assert entry["sha256"] == models.file_sha256(out / artifact)

"""Atomic writes: readers see the old file or the new one, with ordinary permissions."""

import os

import pytest

from firmware_py import fsutil


def test_new_file_gets_the_permissions_open_would_give(tmp_path):
    target = tmp_path / "out.png"
    fsutil.write_atomically(target, b"data")
    assert target.read_bytes() == b"data"
    assert os.stat(target).st_mode & 0o777 == 0o666 & ~fsutil._UMASK


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        fsutil.write_atomically(target, "not bytes")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]

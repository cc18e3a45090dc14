"""export/ablation_v2.py measures what the codec does: its stream sizes and decoded images
are the encoder's and decoder's, its split keeps held-out images out of fitting, and its
alternative parts (DCT basis, whole-block KLT, coding without zero runs) are what they
claim to be, and the klt basis is the separable KLT it claims to be."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from export import ablation_v2, train_v2
from firmware_py import datasets
from firmware_py.codec import decoder_v2, encode, read_header, runlength
from firmware_py.codec.profile_v2 import get_transform_profile

from codec_helpers import crop

KLT = ablation_v2.VARIANTS[0]


@pytest.mark.parametrize("quality", [0.5, 2.0])
def test_sizes_and_decoded_images_are_the_codecs(lena2, quality):
    image = crop(lena2, 72, 104)
    stream = encode(image, quality=quality, profile="klt")
    profile = get_transform_profile("klt")
    step = read_header(stream).steps[0]
    plane = train_v2.plane_coefficients(image, profile.basis)
    levels = train_v2.levels_at(plane, step, profile.rounding)
    static = profile.context_tables.for_plane(0)
    assert ablation_v2.stream_bytes(levels, plane, image.shape, step, KLT, static) == len(stream)
    decoded = ablation_v2.decoded_image(
        levels, step, profile.rounding, plane, image.shape, profile.basis, profile.restoration
    )
    read_stream, read_profile = decoder_v2.read(stream)
    unfiltered = replace(read_profile, postfilter=None)
    planes = decoder_v2.reconstruct_planes(read_stream, unfiltered)
    np.testing.assert_array_equal(decoded, decoder_v2.render(read_stream, unfiltered, planes))


def test_held_out_images_are_every_fourth_training_image_and_never_fitted():
    paths = datasets.training_images()
    fit, held = train_v2.split_training(paths)
    assert held == paths[3::4] and not set(fit) & set(held) and sorted(fit + held) == paths
    assert not {p.name for p in fit + held} & set(datasets.PAPER_TEST_IMAGES)


def test_dct_basis_is_orthonormal_in_zigzag_order():
    basis = ablation_v2.dct_basis()
    np.testing.assert_allclose(basis @ basis.T, np.eye(64), atol=1e-12)
    np.testing.assert_allclose(basis[0], np.full(64, 1 / 8))
    ramp = np.tile(np.arange(8.0), 8)  # varies along a row only: the (0, 1) cosine, zigzag position 1
    assert np.argmax(np.abs(basis[1:] @ (ramp - ramp.mean()))) == 0


def test_klt_basis_is_a_separable_orthonormal_basis_ordered_by_variance():
    # Blocks whose rows vary far more than their columns: the first AC axis is horizontal.
    rng = np.random.default_rng(5)
    rows = np.cumsum(rng.normal(0, 9, (4000, 1, 8)), axis=2) + rng.normal(0, 2, (4000, 8, 8))
    blocks = (128 + rows).reshape(-1, 64)
    basis = train_v2.learn_basis(blocks)
    np.testing.assert_allclose(basis @ basis.T, np.eye(64), atol=1e-12)
    np.testing.assert_allclose(basis[0], np.full(64, 1 / 8))
    assert all(np.linalg.matrix_rank(row.reshape(8, 8), tol=1e-9) == 1 for row in basis)
    variances = ((blocks - 128) @ basis[1:].T).var(axis=0)
    assert np.all(np.diff(variances) <= 1e-9)
    assert np.allclose(basis[1].reshape(8, 8), basis[1].reshape(8, 8)[:1], atol=1e-12)  # constant down columns
    whole = ablation_v2.full_klt_basis(blocks)  # the ablation's alternative: not separable
    np.testing.assert_allclose(whole @ whole.T, np.eye(64), atol=1e-12)


def test_coding_without_zero_runs_costs_more_on_sparse_blocks():
    levels = np.zeros((200, 64), dtype=np.int64)
    levels[::3, 40] = 1
    levels[::5, 2] = -3
    dc_hist, ac_hist, _ = runlength.symbol_counts(np.zeros(200, dtype=np.int64), levels)
    with_runs = runlength.payload_bits(np.zeros_like(dc_hist), ac_hist, 0, runlength.tables_for(dc_hist, ac_hist))
    assert ablation_v2.ac_bits_without_runs(levels) > with_runs

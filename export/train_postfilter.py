"""Train the ``klt`` profile's ground-side post-filter (firmware_py/codec/postfilter.py).

    python -m export.train_postfilter --out models          # the shipped model: every training image
    python -m export.train_postfilter --check OUT.json      # fit part only; measured on the held-out part

Data: the Waterloo training split only (never lena*, boat*, goldhill*, kodak or aerials).
Each image (colour images also as gray) and its smooth frames (smooth_frame) is coded by
the real klt encoder at every rate of LEARN_BPP (so the encoder's own rule picks half
resolution at the low rates) and decoded up to the post-filter
(decoder_v2.reconstruct_planes); the filter learns, on PATCH x PATCH tiles of every
decoded plane (Y, Cb, Cr or gray), the correction to the plane the encoder coded. Tiles
start on the 8x8 block grid, so each pixel's block phase is known. The model records the
range of training steps at each coded scale (trained_step_range); the decoder leaves
planes outside it unfiltered.

TensorFlow on one thread (intra/inter-op threads 1: the machine is shared), Adam for
STEPS steps of BATCH tiles, seeded: a rerun gives the same weights. ``--check`` fits on
the fit part of export.train_v2.split_training and reports, on its 6 held-out images,
PSNR at ablation_v2.TARGETS and the BD-rate of klt with the filter against klt without,
luma (every image as gray) and RGB (the colour images).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from export import ablation_v2, train_v2
from export.manifest import record_profile_model, update_manifest
from firmware_py import datasets, imageio, metrics
from firmware_py.codec import decoder_v2, models, postfilter, resample
from firmware_py.codec.blocking import BLOCK
from firmware_py.codec.encoder import image_planes
from firmware_py.codec.encoder_v2 import encode
from firmware_py.codec.errors import RateControlError
from firmware_py.fsutil import write_atomically

PROFILE = "klt"
MODEL = "klt-postfilter"
COMMAND = "python -m export.train_postfilter --out models"
LEARN_BPP = (0.04, 0.06, 0.09, 0.13, 0.19, 0.28)
SMOOTH_ZOOMS = (4, 8)  # smooth frames: the central 1/4 and 1/8 (side) of an image, upscaled to its size
PATCH = 5 * BLOCK  # output side of a training tile; tiles start on the block grid
SEED = 20260105
STEPS = 12000
BATCH = 32
LEARNING_RATE = (2e-3, 3e-4)  # Adam, decayed geometrically from the first to the second
MAX_TILES = 40000


def coded_variants(path: Path) -> list[np.ndarray]:
    """The image, for a colour image also its gray version, and smooth frames of each."""
    image = imageio.load_image(path)
    variants = [image] + ([imageio.load_image(path, gray=True)] if image.ndim == 3 else [])
    return variants + [smooth_frame(variant, zoom) for variant in variants for zoom in SMOOTH_ZOOMS]


def smooth_frame(image: np.ndarray, zoom: int) -> np.ndarray:
    """The central 1/``zoom`` (side) of ``image`` upscaled bicubically to the image's size.

    Large frames of smooth content (a 12 Mpx sensor behind soft optics) are coded at
    small steps even at half resolution, which the training images alone never are;
    without such frames the filter lost 1.3 dB on an 8x upscale coded at half resolution.
    """
    height, width = image.shape[:2]
    top, left = (height - height // zoom) // 2, (width - width // zoom) // 2
    centre = image[top : top + height // zoom, left : left + width // zoom]
    return np.asarray(Image.fromarray(centre).resize((width, height), Image.BICUBIC))


def decoded_pairs(image: np.ndarray, bpp: float) -> tuple[int, list[tuple[np.ndarray, np.ndarray, float]]]:
    """The coded scale, and (decoded plane before the post-filter, coded original plane,
    step) of each plane of ``image`` coded at ``bpp`` (none if the rate cannot be reached)."""
    try:
        data = encode(image, bpp=bpp, profile=PROFILE)
    except RateControlError:
        return resample.FULL, []
    stream, profile = decoder_v2.read(data)
    coded = image if stream.scale == resample.FULL else resample.downsample(image)
    originals = image_planes(coded)[1]
    planes = decoder_v2.reconstruct_planes(stream, profile)
    return stream.scale, [(plane, original, step) for (plane, step), original in zip(planes, originals)]


def plane_tiles(decoded: np.ndarray, original: np.ndarray, step: float):
    """(inputs, targets, step inputs) of every grid-aligned PATCH tile of a plane, normalized."""
    radius = postfilter.RADIUS
    padded = (np.pad(decoded, radius, mode="edge") - postfilter.CENTRE) / postfilter.SCALE
    target = (original - postfilter.CENTRE) / postfilter.SCALE
    inputs, targets = [], []
    for top in range(0, decoded.shape[0] - PATCH + 1, PATCH):
        for left in range(0, decoded.shape[1] - PATCH + 1, PATCH):
            inputs.append(padded[top : top + PATCH + 2 * radius, left : left + PATCH + 2 * radius])
            targets.append(target[top : top + PATCH, left : left + PATCH])
    return inputs, targets, [postfilter.step_input(step)] * len(inputs)


def training_tiles(paths: list[Path], log) -> tuple[np.ndarray, ...]:
    """(inputs, targets, step inputs, coded scales) of up to MAX_TILES tiles,
    drawn at random from every plane of every image at every rate of LEARN_BPP."""
    inputs, targets, steps, scales = [], [], [], []
    for path in paths:
        for image in coded_variants(path):
            for bpp in LEARN_BPP:
                scale, pairs = decoded_pairs(image, bpp)
                for decoded, original, step in pairs:
                    tile_inputs, tile_targets, tile_steps = plane_tiles(decoded, original, step)
                    inputs += tile_inputs
                    targets += tile_targets
                    steps += tile_steps
                    scales += [scale] * len(tile_inputs)
        log(f"tiles: {path.name} ({len(inputs)} so far)")
    order = np.random.default_rng(SEED).permutation(len(inputs))[:MAX_TILES]
    return tuple(np.asarray([items[i] for i in order], dtype=np.float32) for items in (inputs, targets, steps, scales))


def trained_step_range(steps: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """(postfilter.SCALES, 2) smallest and largest step of the training tiles at each coded scale."""
    ranges = []
    for scale in postfilter.SCALES:
        at_scale = steps[scales == scale]
        if at_scale.size == 0:
            raise ValueError(f"no training tile was coded at scale {scale}")
        ranges.append(np.exp([at_scale.min(), at_scale.max()]) * postfilter.STEP_REFERENCE)
    return np.array(ranges)


def fit(paths: list[Path], log) -> postfilter.PostFilter:
    """Train the post-filter on decoded tiles of ``paths``; deterministic (seeded, one thread)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()
    inputs, targets, steps, scales = training_tiles(paths, log)
    radius = postfilter.RADIUS
    unfiltered = np.sqrt(np.mean(np.square(inputs[:, radius:-radius, radius:-radius] - targets))) * postfilter.SCALE
    log(f"training on {len(inputs)} tiles of {PATCH}x{PATCH}, unfiltered rmse {unfiltered:.3f}")
    rng = np.random.default_rng(SEED)
    weights = {key: tf.Variable(initial_weights(key, postfilter.SHAPES[key], rng)) for key in postfilter.TRAINED}
    margin = postfilter.RADIUS - postfilter.KERNELS[0] // 2
    phases = np.arange(-margin, PATCH + margin) % BLOCK  # tiles start on the block grid

    def forward(x, s):
        w = weights
        s = s[:, None, None, None]
        hidden = tf.nn.conv2d(x[..., None], w["conv1"], 1, "VALID") + w["bias1"] + s * w["step1"]
        hidden += tf.gather(w["phase_rows"], phases)[:, None, :] + tf.gather(w["phase_cols"], phases)[None, :, :]
        hidden = tf.nn.conv2d(tf.nn.relu(hidden), w["conv2"], 1, "VALID") + w["bias2"] + s * w["step2"]
        correction = tf.nn.conv2d(tf.nn.relu(hidden), w["conv3"], 1, "VALID")[..., 0] + w["bias3"][0]
        return x[:, radius:-radius, radius:-radius] + correction

    schedule = tf.keras.optimizers.schedules.ExponentialDecay(
        LEARNING_RATE[0], STEPS, LEARNING_RATE[1] / LEARNING_RATE[0]
    )
    optimizer = tf.keras.optimizers.Adam(schedule)
    variables = list(weights.values())

    @tf.function
    def train_step(x, y, s):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(forward(x, s) - y))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    started, losses = time.monotonic(), []
    for step in range(STEPS):
        batch = rng.integers(0, len(inputs), BATCH)
        losses.append(float(train_step(inputs[batch], targets[batch], steps[batch])))
        if (step + 1) % 250 == 0:
            rmse = np.sqrt(np.mean(losses[-250:])) * postfilter.SCALE
            log(f"step {step + 1}: rmse {rmse:.3f} ({time.monotonic() - started:.0f} s)")
    arrays = {key: v.numpy() for key, v in weights.items()}
    arrays["step_range"] = trained_step_range(steps, scales)
    log(f"trained step range per coded scale {postfilter.SCALES}: {arrays['step_range'].round(2).tolist()}")
    return postfilter.PostFilter(MODEL, postfilter.check_arrays(MODEL, arrays), "")


def initial_weights(key: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """He-normal convolutions, zero biases, and a last layer that starts as no correction."""
    if not key.startswith("conv") or key == "conv3":
        return np.zeros(shape, dtype=np.float32)
    fan_in = int(np.prod(shape[:3]))
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def curves(image: np.ndarray, candidate: postfilter.PostFilter) -> tuple[dict, dict]:
    """(without, with the candidate filter) RD curves of klt on ``image`` at ablation_v2.CURVE_BPP."""
    without: dict = {"bpp": [], "psnr": []}
    filtered: dict = {"bpp": [], "psnr": []}
    for bpp in ablation_v2.CURVE_BPP:
        try:
            data = encode(image, bpp=bpp, profile=PROFILE)
        except RateControlError:
            continue
        stream, profile = decoder_v2.read(data)
        planes = decoder_v2.reconstruct_planes(stream, profile)
        for curve, model in ((without, None), (filtered, candidate)):
            decoded = decoder_v2.render(stream, replace(profile, postfilter=model), planes)
            curve["bpp"].append(len(data) * 8 / (image.shape[0] * image.shape[1]))
            curve["psnr"].append(metrics.psnr(image, decoded))
    return without, filtered


def check(held_out: list[Path], candidate: postfilter.PostFilter, log) -> dict:
    """Held-out PSNR at the targets and BD-rate with the filter against klt without it."""
    report: dict = {}
    for kind in ("luma", "rgb"):
        pairs = []
        for path in held_out:
            image = imageio.load_image(path, gray=kind == "luma")
            if image.ndim == 3 or kind == "luma":
                pairs.append(curves(image, candidate))
                log(f"{kind}: {path.name} measured")
        anchors, tests = [p[0] for p in pairs], [p[1] for p in pairs]
        report[kind] = {
            "images": len(pairs),
            "targets_bpp": list(ablation_v2.TARGETS),
            "psnr_without": ablation_v2.mean_at_targets(anchors)[0],
            "psnr_with": ablation_v2.mean_at_targets(tests)[0],
            "bd_rate_vs_without": ablation_v2.mean_bd_rate(anchors, tests, ("klt", "klt+postfilter")),
        }
    return report


def save(out: Path, model: postfilter.PostFilter) -> dict:
    path = out / f"{MODEL}.npz"
    buffer = io.BytesIO()
    np.savez(buffer, **model.arrays)
    write_atomically(path, buffer.getvalue())
    return {"file": path.name, "sha256": models.file_sha256(path), "kind": postfilter.KIND}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models"))
    parser.add_argument("--check", type=Path, help="fit on the fit part and write the held-out report here instead")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    training = datasets.training_images()
    if args.check:
        fit_part, held_out = train_v2.split_training(training)
        report = {
            "command": f"python -m export.train_postfilter --check {args.check}",
            "fit": [p.name for p in fit_part],
            "held_out": [p.name for p in held_out],
        }
        report |= check(held_out, fit(fit_part, log), log)
        write_atomically(args.check, (json.dumps(report, indent=2) + "\n").encode())
        print(json.dumps({k: report[k] for k in ("luma", "rgb")}, indent=2))
        return 0
    # The filter learns from decodes without a filter; unhook the old one first, so that a
    # model file this code no longer reads does not stop the codec that makes the data.
    update_manifest(args.out, lambda manifest: manifest["profiles"][PROFILE].pop("postfilter", None))
    entry = save(args.out, fit(training, log))
    entry["training"] = {
        "data": "waterloo training split (all but lena*, boat*, goldhill*) and smooth frames of each (central part upscaled), klt-decoded planes (gray, Y, Cb, Cr; full and half resolution)",
        "images": [p.name for p in training],
        "smooth_zooms": list(SMOOTH_ZOOMS),
        "learn_bpp": list(LEARN_BPP),
        "max_tiles": MAX_TILES,
        "tile": PATCH,
        "steps": STEPS,
        "batch": BATCH,
        "seed": SEED,
        "command": COMMAND,
    }

    record_profile_model(args.out, PROFILE, "postfilter", MODEL, entry)
    print(f"{MODEL}: {entry['sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The markdown report of ``qpv bench rd``, made from its JSON alone."""

from __future__ import annotations

METRICS = (("psnr", "PSNR (dB)", "{:.2f}"), ("ssim", "SSIM", "{:.4f}"))
NO_VALUE = "–"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    rule = [":---", *("---:" for _ in header[1:])]
    return ["| " + " | ".join(cells) + " |" for cells in (header, rule, *rows)]


def _labels(doc: dict) -> dict[str, str]:
    return {c["key"]: c["label"] for c in doc["codecs"]}


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f} %"


def mean_tables(doc: dict) -> list[str]:
    """Mean PSNR and SSIM per target bpp and codec, with how many images reached it."""
    labels, total = _labels(doc), len(doc["images"])
    lines = []
    for metric, title, number in METRICS:
        rows = []
        for index, target in enumerate(doc["targets_bpp"]):
            row = [f"{target:g}"]
            for key in labels:
                mean = doc["mean"][key]
                value = mean[metric][index]
                shown = NO_VALUE if value is None else number.format(value)
                row.append(f"{shown} ({mean['images'][index]}/{total})")
            rows.append(row)
        lines += [f"### {title}", "", *_table(["bpp", *labels.values()], rows), ""]
    return lines


def bd_rate_table(doc: dict) -> list[str]:
    labels = _labels(doc)
    low, high = doc["bd_window_bpp"]
    ours = labels[doc["test_codec"]]
    rows = []
    for key, summary in doc["bd_rate"].items():
        note = ""
        if summary["mean_percent"] is None and summary["reasons"]:
            image, reason = next(iter(summary["reasons"].items()))
            others = len(summary["reasons"]) - 1
            note = f"{image}: {reason}" + (f" (and {others} more, see rd.json)" if others else "")
        rows.append([labels[key], _percent(summary["mean_percent"]), f"{summary['images']}/{summary['of']}", note])
    header = ["reference", "BD-rate", "images", "why n/a"]
    if not any(row[-1] for row in rows):
        header, rows = header[:-1], [row[:-1] for row in rows]
    return [
        f"### BD-rate of {ours} (PSNR, {low:g}-{high:g} bpp)",
        "",
        (
            f"Negative: {ours} needs fewer bits than the reference for the same PSNR. Mean of the per-image "
            "BD-rates over the images where one is computable (cubic fit of log-rate against PSNR over the "
            "shared PSNR range; see firmware_py/bench/bdrate.py)."
        ),
        "",
        *_table(header, rows),
        "",
    ]


def per_image_tables(doc: dict) -> list[str]:
    labels = _labels(doc)
    targets = [f"{t:g}" for t in doc["targets_bpp"]]
    rows = []
    for entry in doc["images"]:
        for key, label in labels.items():
            values = entry["at_targets"][key]["psnr"]
            rows.append([entry["name"], label, *(NO_VALUE if v is None else f"{v:.2f}" for v in values)])
    lines = ["### Per image: PSNR (dB) at each target bpp", "", *_table(["image", "codec", *targets], rows), ""]
    references = list(doc["bd_rate"])
    bd_rows, reasons = [], []
    for entry in doc["images"]:
        bd_rows.append([entry["name"], *(_percent(entry["bd_rate"][key]["percent"]) for key in references)])
        reasons += [
            f"- {entry['name']} vs {labels[key]}: {entry['bd_rate'][key]['reason']}"
            for key in references
            if entry["bd_rate"][key]["percent"] is None
        ]
    header = ["image", *(f"vs {labels[key]}" for key in references)]
    lines += [f"### Per image: BD-rate of {labels[doc['test_codec']]}", "", *_table(header, bd_rows), ""]
    if reasons:
        lines += ["n/a because:", "", *reasons, ""]
    return lines


def provenance(doc: dict) -> list[str]:
    versions = ", ".join(f"{name} {version}" for name, version in doc["versions"].items() if version)
    knobs = [f"- {c['label']}: {c['knob']}" for c in doc["codecs"]]
    return [
        "### How it was made",
        "",
        f"`{doc['command']}`",
        "",
        f"{doc['date']}, {doc.get('seconds', '?')} s; {versions}. Swept settings:",
        "",
        *knobs,
        "",
    ]


def markdown_report(doc: dict, *, per_image: bool = True) -> str:
    """The report: mean tables and BD-rates, then (``per_image``) per-image figures and provenance."""
    total = len(doc["images"])
    measure = "luma (Pillow convert('L'))" if doc["color"] == "luma" else "RGB, over all channels"
    lines = [
        f"## {doc['name']}",
        "",
        (
            f"{total} image{'s' if total != 1 else ''}, PSNR and SSIM on {measure}; bpp counts whole files. "
            "Each cell is the mean over the images whose own RD curve reaches that rate (interpolated in "
            "log-bpp, never extrapolated), then (images reached/images). A mean over fewer than all images "
            "is over a different subset per codec: compare only cells with the same count."
        ),
        "",
        *mean_tables(doc),
        *bd_rate_table(doc),
    ]
    if per_image:
        lines += per_image_tables(doc) + provenance(doc)
    return "\n".join(lines).rstrip() + "\n"

"""The markdown view of a HIL report (the JSON is the record; this is for reading it)."""

from __future__ import annotations

from .stages import OTHER, STAGES

NOT_AVAILABLE = "n/a"
STAGE_ORDER = [*dict.fromkeys(stage for stage, _ in STAGES), OTHER]
STAGED_OPERATIONS = (
    ("qpv_encode_fixed", "encode, fixed quality"),
    ("qpv_encode_rate_control", "encode, rate control"),
    ("qpv_packetize", "frame to link packets"),
    ("qpv_decode", "decode"),
)


def fmt(value, spec: str = ".2f") -> str:
    return NOT_AVAILABLE if value is None else format(value, spec)


def _spread(summary: dict, spec: str = ".2f") -> str:
    """'median (min-max)' of a {median, min, max} summary."""
    return f"{fmt(summary['median'], spec)} ({fmt(summary['min'], spec)}-{fmt(summary['max'], spec)})"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def machine_section(report: dict) -> list[str]:
    machine, settings, thermal = report["machine"], report["settings"], report["thermal"]
    packages = ", ".join(f"{name} {version}" for name, version in machine["packages"].items() if version)
    lines = [
        f"- Board: {machine['board']}; CPU: {machine['cpu']}, {machine['cores']} cores ({machine['arch']}), "
        f"{fmt(machine['memory_mib'], 'd')} MiB RAM{'; virtual machine' if machine['virtual_machine'] else ''}",
        f"- Python {machine['python']}; {packages}",
        f"- Frames: {', '.join(settings['sizes'])}, {'gray' if settings['gray'] else 'RGB'}, tiled from "
        f"{len(settings['images'])} real images; target {settings['bpp']} bpp; {settings['repeat']} repetitions, "
        f"{settings['start_repeat']} start-ups each; threads {settings['threads'] or 'library default'}; "
        f"profile {settings['profile']}{'; quick mode' if settings['quick'] else ''}",
        f"- CPU temperature max: {fmt(thermal['max_temp_c'], '.1f')} C; throttling flags: "
        f"{NOT_AVAILABLE if thermal['throttle_flags'] is None else ', '.join(thermal['throttle_flags']) or 'none'}",
    ]
    unusable = [f"{name} ({reason})" for name, reason in report["backends"].items() if reason]
    lines.append(
        f"- Backends measured: {', '.join(settings['backends'])}"
        + (f"; not runnable here: {'; '.join(unusable)}" if unusable else "")
    )
    if machine.get("note"):
        lines.append(f"- Note: {machine['note']}")
    return lines


def throughput_table(results: list[dict]) -> list[str]:
    rows = []
    for r in results:
        mpix, ratios, rate = r["mpix_per_s"], r["ratios_vs_jpeg"], r["rate"]
        reach = "" if rate["target_reachable"] else " (floor)"
        rows.append(
            [
                r["size"],
                r["backend"],
                f"{rate['qpv_rate_control_bpp']:.3f}{reach} / {rate['jpeg_bpp']:.3f} (q{rate['jpeg_quality']})",
                _spread(mpix["qpv_encode_fixed"]),
                _spread(mpix["qpv_encode_rate_control"]),
                _spread(mpix["jpeg_encode"]),
                f"{ratios['encode_fixed']:.3f}",
                f"{ratios['encode_rate_control']:.3f}",
                _spread(mpix["qpv_decode"]),
                _spread(mpix["jpeg_decode"]),
                f"{ratios['decode']:.3f}",
            ]
        )
    header = [
        "size",
        "backend",
        "bpp qpv / JPEG",
        "qpv enc fixed",
        "qpv enc rate ctl",
        "JPEG enc",
        "ratio enc fixed",
        "ratio enc rate ctl",
        "qpv dec",
        "JPEG dec",
        "ratio dec",
    ]
    return _table(header, rows)


def start_memory_table(results: list[dict]) -> list[str]:
    rows = []
    for r in results:
        start, memory, ratios = r["cold_start"], r["memory"], r["ratios_vs_jpeg"]
        rows.append(
            [
                r["size"],
                r["backend"],
                _spread(start["warm_cache"]["first_frame_s"]),
                _spread(start["cold_cache"]["first_frame_s"]),
                _spread(start["jpeg"]["first_frame_s"]),
                f"{ratios['start_warm_cache']:.1f} / {ratios['start_cold_cache']:.1f}",
                f"{memory['encode_peak_rss_mib']:.0f}",
                f"{memory['encode_rss_bytes_per_pixel']:.0f}",
                f"{memory['decode_peak_rss_mib']:.0f}",
                f"{memory['jpeg_encode_peak_rss_mib']:.0f}",
            ]
        )
    header = [
        "size",
        "backend",
        "first frame, warm cache (s)",
        "cold cache (s)",
        "JPEG process (s)",
        "ratio warm / cold",
        "encode peak RSS (MiB)",
        "encode RSS (B/pixel)",
        "decode peak RSS (MiB)",
        "JPEG peak RSS (MiB)",
    ]
    return _table(header, rows)


def stage_table(results: list[dict]) -> list[str]:
    present = [
        s for s in STAGE_ORDER if any(s in r["stages_s"].get(op, {}) for r in results for op, _ in STAGED_OPERATIONS)
    ]
    rows = []
    for r in results:
        for op, label in STAGED_OPERATIONS:
            stages = r["stages_s"].get(op)
            if stages is None:
                continue
            total = sum(stages.values())
            cells = [fmt(stages[s] * 1e3, ".1f") if s in stages else "" for s in present]
            rows.append([r["size"], r["backend"], label, *cells, f"{total * 1e3:.1f}"])
    return _table(["size", "backend", "operation", *present, "total"], rows)


def link_table(link: list[dict]) -> list[str]:
    rows = [
        [
            entry["size"],
            entry["port"],
            str(entry["baud"]),
            f"{entry['packets']} x {entry['packet_size']} B ({entry['framing']})",
            f"{entry['wire_bytes']}{'' if entry['target_reachable'] else ' (floor)'}",
            f"{entry['ideal_wire_s']:.2f}",
            fmt(entry["first_preview_s"]),
            fmt(entry["full_frame_s"]),
            fmt(entry["full_frame_vs_wire"], ".3f"),
            entry["error"] or "",
        ]
        for entry in link
    ]
    header = [
        "size",
        "port",
        "baud",
        "packets",
        "wire bytes",
        "ideal wire time (s)",
        "first preview (s)",
        "full frame (s)",
        "full frame / wire time",
        "error",
    ]
    return _table(header, rows)


def render_markdown(report: dict) -> str:
    """The report as markdown: environment, then one table per kind of figure."""
    results = report["results"]
    lines = [f"# qpv HIL report ({report['created_utc']})", "", *machine_section(report), ""]
    lines += [
        "## Throughput vs libjpeg-turbo (MPix/s: median (min-max); ratio = qpv / JPEG medians)",
        "",
        *throughput_table(results),
        "",
        "## Start-up (process start to first encoded frame) and memory",
        "",
        *start_memory_table(results),
        "",
        "## Time per stage (ms, median over repetitions)",
        "",
        *stage_table(results),
        "",
    ]
    link = report["link"]
    lines += ["## Link: frame packets over a paced serial line into the ground decoder", ""]
    lines += link_table(link["runs"]) if link["runs"] else [f"Not measured: {link['unavailable']}"]
    return "\n".join(lines) + "\n"

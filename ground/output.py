"""What the ground decoder writes per frame: ``<source>-<frame>.png`` and its JSON sidecar.

Both are written atomically (a viewer polling the directory never sees half a file),
PNG first, so that a sidecar always describes a PNG at least as new as itself.
The sidecar's fields are listed in docs/FORMAT.md ("Ground output").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from firmware_py import imageio
from firmware_py.codec.blocking import BLOCK
from firmware_py.eventlog import utc_timestamp
from firmware_py.fsutil import write_atomically

PLANE_NAMES = {1: ("Y",), 3: ("Y", "Cb", "Cr")}


def frame_stem(source: str, frame_id: int) -> str:
    return f"{source}-{frame_id}"


def lost_regions(missing: list[np.ndarray], width: int, height: int) -> list[dict]:
    """Concealed areas as rectangles in image pixels: runs of lost blocks along block rows.

    ``missing`` holds one (rows, cols) bool grid per plane; a chroma plane's blocks cover
    16x16 image pixels (4:2:0). Rectangles are clipped to the image.
    """
    names = PLANE_NAMES[len(missing)]
    regions = []
    for index, grid in enumerate(missing):
        scale = BLOCK * (2 if index else 1)
        for row in range(grid.shape[0]):
            padded = np.concatenate([[False], grid[row], [False]])
            edges = np.flatnonzero(padded[1:] != padded[:-1])
            for first, stop in zip(edges[0::2], edges[1::2]):
                x, y = int(first) * scale, row * scale
                regions.append(
                    {
                        "plane": names[index],
                        "x": x,
                        "y": y,
                        "width": min(int(stop) * scale, width) - x,
                        "height": min(y + scale, height) - y,
                    }
                )
    return regions


@dataclass
class FrameRecord:
    """The sidecar of one frame, as the assembler knows it so far."""

    source: str
    frame_id: int
    first_packet: float  # receive times, seconds since the epoch
    last_packet: float
    bytes: int = 0  # packet bytes received (headers and CRC included), duplicates not counted
    indices: set[int] = field(default_factory=set)  # packet indices used
    duplicate: int = 0
    corrupt: int = 0

    @property
    def received(self) -> int:
        return len(self.indices)

    def lost_indices(self, packet_count: int) -> list[int]:
        return sorted(set(range(packet_count)) - self.indices)

    def to_json(self, descriptor=None, profile_name: str | None = None, regions: list[dict] | None = None,
                concealed_fraction: float | None = None, error: str | None = None) -> dict:
        record = {
            "source": self.source,
            "frame_id": self.frame_id,
            "first_packet_utc": utc_timestamp(self.first_packet),
            "last_packet_utc": utc_timestamp(self.last_packet),
            "bytes": self.bytes,
            "packets": {
                "expected": descriptor.packet_count if descriptor else None,
                "received": self.received,
                "lost": descriptor.packet_count - self.received if descriptor else None,
                "lost_indices": self.lost_indices(descriptor.packet_count) if descriptor else None,
                "duplicate": self.duplicate,
                "corrupt": self.corrupt,
            },
            "final_packet_seen": descriptor is not None and descriptor.packet_count - 1 in self.indices,
        }
        if descriptor is not None:
            record.update(
                width=descriptor.width,
                height=descriptor.height,
                colour="gray" if len(descriptor.plane_shapes()) == 1 else "ycbcr420",
                profile=profile_name,
                quality=round(descriptor.quality, 4),
                bpp=round(self.bytes * 8 / (descriptor.width * descriptor.height), 5),
                complete=self.received == descriptor.packet_count,
            )
        if concealed_fraction is not None:
            record["concealed_fraction"] = round(concealed_fraction, 5)
        if regions is not None:
            record["lost_regions"] = regions
        if error is not None:
            record["error"] = error
        return record


def write_frame(out_dir: Path, stem: str, image: np.ndarray | None, record: dict) -> Path:
    """Write the preview (if any) and then its sidecar; return the sidecar's path."""
    if image is not None:
        imageio.save_image(out_dir / f"{stem}.png", image)
    sidecar = out_dir / f"{stem}.json"
    write_atomically(sidecar, (json.dumps(record, indent=1) + "\n").encode("utf-8"))
    return sidecar

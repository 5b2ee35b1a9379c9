"""What the dataset tests share: the synthetic spec every layout is written with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vssl_datasets.synth_disk import SynthSpec, SynthVideo

# Small enough to write every layout in a few seconds, large enough for 2 videos per class and
# subset (so per-class subsampling has a choice) and for the stamped frame index (32 px rows).
TINY = SynthSpec(num_classes=4, videos_per_class=2, frames=16, size=32, stamp=True)
K, N = TINY.num_classes, TINY.videos_per_class


@dataclass(frozen=True)
class Synth:
    """One layout on disk and what synth wrote there (path relative to root -> content)."""

    root: Path
    written: dict[str, SynthVideo]

    def rel(self, path: str) -> str:
        return str(Path(path).relative_to(self.root))

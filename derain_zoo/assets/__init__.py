"""Files shipped inside the package: NIQE / BRISQUE parameters and a short real rainy clip (NOTICE.md)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def sample_clip() -> Path:
    """A 16-frame real rainy video (NTURain ra1, MIT via S2VD) to try a shipped model on::

    clip=$(python -c "from derain_zoo.assets import sample_clip; print(sample_clip())")
    derain-zoo predict ... --data.input=$clip
    """
    return Path(str(resources.files(__name__))) / "ra1_rain.mp4"

"""Replace one section of BENCHMARKS.md, keeping the rest of the file as it is."""
from __future__ import annotations

from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def replace_section(heading: str, body: str, path: Path = BENCHMARKS) -> None:
    """Swap the ``## <heading>...`` section (up to the next ``## ``) for ``body``, or append it."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    start = old.find(f"## {heading}")
    if start >= 0:
        end = old.find("\n## ", start + 1)
        old = old[:start] + (old[end + 1:] if end >= 0 else "")
    path.write_text(old.rstrip() + "\n\n" + body.rstrip() + "\n")

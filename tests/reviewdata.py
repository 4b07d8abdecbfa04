"""A small seeded text project with planted label flips, and the scan run through the worker.

Each text's words name its topic, so an out-of-fold model reads the true topic and a flipped
label stands out: what the scan must find. Shared by the trust, API, CLI and browser tests.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from sqlalchemy import select

from looplab import worker
from looplab.core import jobs, projects
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import Annotation, Job, Record, User
from looplab.govern import access
from looplab.trust import review

LABELS = ["business", "sport", "tech"]
VOCAB = {
    "business": "market shares profit bank investors sales economy growth deal firm",
    "sport": "match goal team season coach players league win cup injury",
    "tech": "software phone chip users internet data mobile network apps device",
}
FILLER = [
    "the",
    "a",
    "of",
    "on",
    "and",
    "said",
    "was",
    "new",
    "year",
    "after",
    "its",
    "for",
    "with",
]


def seeded_rows(n: int, flips: int, seed: int = 0) -> tuple[list[tuple[str, str]], set[int]]:
    """``(text, given label)`` rows whose words say the true topic; ``flips`` rows mislabeled."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, str]] = []
    for i in range(n):
        topic = LABELS[i % 3]
        words = [*rng.choice(VOCAB[topic].split(), 6), *rng.choice(FILLER, 4), f"doc{i}"]
        rng.shuffle(words)
        rows.append((" ".join(words), topic))
    flipped = {int(i) for i in rng.choice(n, flips, replace=False)}
    for i in flipped:
        text, topic = rows[i]
        rows[i] = (text, LABELS[(LABELS.index(topic) + 1) % 3])
    return rows, flipped


def make_project(
    store: Store, n: int = 150, flips: int = 12, annotator: str = "ann"
) -> tuple[list[int], set[int]]:
    """Project ``news`` whose records carry one human answer each (by ``annotator``)."""
    rows, flipped = seeded_rows(n, flips)
    with store.write() as session:
        project = projects.create_project(session, "news", task="text", labels=LABELS, actor="t")
        ann = session.scalar(select(User).where(User.name == annotator))
        if ann is None:
            ann, _ = access.create_user(session, annotator, "annotator", actor="t")
        ids = []
        for text, label in rows:
            record = Record(
                project_id=project.id,
                content_hash=hashlib.blake2b(text.encode(), digest_size=16).digest(),
                payload={"text": text},
                meta={},
                n_human=1,
            )
            session.add(record)
            session.flush()
            session.add(
                Annotation(
                    project_id=project.id,
                    record_id=record.id,
                    annotator_id=ann.id,
                    value={"label": label},
                    label=label,
                    origin="human",
                )
            )
            ids.append(record.id)
    return ids, {ids[i] for i in flipped}


def scan(store: Store, tmp_path: Path) -> dict:
    """Queue a scan and let the worker run it (the path `looplab quality --run` takes)."""
    with store.write() as session:
        project = projects.get_project(session, "news")
        job_id = jobs.enqueue(session, review.SCAN_KIND, project_id=project.id).id
    worker.drain(store, Settings(home=tmp_path))
    with store.read() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == "done", job and job.error
        return dict(job.result)

"""A small synthetic text project (three topics, two sources) that trains in well under a second.

``add_labeled`` adds one record with an imported label to any project, for tests that build their
own training data; ``train`` runs the training job's handler on the project ``news``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from looplab import configure
from looplab.core import projects
from looplab.core.settings import Settings
from looplab.core.store import Store
from looplab.core.tables import Annotation, Job, Project, Record
from looplab.learn import training

LABELS = ["business", "sport", "tech"]
VOCAB = {
    "business": "market shares profit bank investors sales economy growth deal firm",
    "sport": "match goal team season coach players league win cup injury",
    "tech": "software phone chip users internet data mobile network apps device",
}
COMMON = "the a of on and said was new year after its for with"


def rows(n: int = 300, seed: int = 0) -> list[tuple[str, str, str]]:
    """``(text, label, source)`` rows; about 10% of texts carry another topic's words."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        label = LABELS[i % 3]
        topic = LABELS[(i + 1) % 3] if rng.random() < 0.1 else label
        words = [*rng.choice(VOCAB[topic].split(), 5), *rng.choice(COMMON.split(), 6), f"id{i}"]
        rng.shuffle(words)
        out.append((" ".join(words), label, "mail" if i % 4 == 0 else "web"))
    return out


def add_labeled(
    session: Session,
    project: Project,
    key: str,
    payload: dict[str, Any],
    label: str,
    meta: dict[str, Any] | None = None,
) -> Record:
    """A record carrying an imported label; its content hash is BLAKE2b of ``key``."""
    record = Record(
        project_id=project.id,
        content_hash=hashlib.blake2b(key.encode(), digest_size=16).digest(),
        payload=payload,
        meta={} if meta is None else meta,
        score=0.0,
    )
    session.add(record)
    session.flush()
    session.add(
        Annotation(
            project_id=project.id,
            record_id=record.id,
            origin="import",
            value={"label": label},
            label=label,
        )
    )
    return record


def add_text_project(session: Session, name: str = "news", n: int = 300) -> Project:
    """A text project whose records all carry an imported label."""
    project = projects.create_project(session, name, task="text", labels=LABELS, actor="test")
    for text, label, source in rows(n):
        add_labeled(session, project, text, {"text": text}, label, meta={"source": source})
    session.flush()
    return project


def train(store: Store, tmp_path: Path, **changes: object) -> dict:
    """Run the training job's handler (after applying setting ``changes``); return its result.

    The handler is called directly, so the pool-scoring job it queues is left alone (the CLI and
    API tests run the whole job path).
    """
    with store.write() as session:
        project = projects.get_project(session, "news")
        if changes:
            configure.update_settings(session, project, dict(changes), actor="test")
        project_id = project.id
    job = Job(kind="train", project_id=project_id, params={"actor": "test"})
    return training.train_project(store, Settings(home=tmp_path), job)

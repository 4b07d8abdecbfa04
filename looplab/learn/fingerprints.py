"""Has this exact model been trained already? A fingerprint of what a training run learns from.

A training run is a pure function of its inputs: the records in each split, the answers behind
each record's label, and the recipe (task, fields, label set, estimator, calibration setting,
library versions). :func:`training_fingerprint` hashes exactly those, before anything is fitted,
so ``looplab train`` right after the server's background retrain finds the version it would
duplicate (:func:`identical_version`) and skips it, naming that version, instead of registering
a twin under a new name.

What it cannot see: a change in code that is not a library version (a looplab upgrade with the
same scikit-learn) fingerprints the same; ``looplab train --force`` trains anyway.
"""

from __future__ import annotations

import hashlib
import json
import platform
from typing import TYPE_CHECKING

from sqlalchemy import select

from looplab.core.projects import setting
from looplab.core.tables import ModelVersion, Project, version_name

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from looplab.learn.dataset import LabeledSet


def training_fingerprint(project: Project, train: LabeledSet, test: LabeledSet) -> str:
    """SHA-256 over the splits (record, label, answers behind it, rows) and the recipe."""
    import numpy as np
    import sklearn

    def rows(data: LabeledSet) -> list[tuple[int, str, list[int], int]]:
        # The weights too: new rows of an input already labeled change what is learned.
        ids = [sorted(a) for a in data.annotation_ids]
        return sorted(zip(data.record_ids, data.labels, ids, data.weights, strict=True))

    recipe = {
        "task": project.task,
        "fields": list(project.fields or []),
        "labels": list(project.labels),
        "estimator": setting(project, "estimator"),
        "calibration": setting(project, "calibration"),
        "versions": [platform.python_version(), sklearn.__version__, np.__version__],
        "train": rows(train),
        "test": rows(test),
    }
    text = json.dumps(recipe, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def identical_version(session: Session, project: Project, fingerprint: str) -> str | None:
    """The name of a registered version of ``project`` trained from ``fingerprint``, if any."""
    for version, config in session.execute(
        select(ModelVersion.version, ModelVersion.config)
        .where(ModelVersion.project_id == project.id)
        .order_by(ModelVersion.version.desc())
    ).tuples():
        if (config or {}).get("fingerprint") == fingerprint:
            return version_name(version)
    return None

"""The real crowds of ``shared/crowd`` (Zheng et al., PVLDB 2017), when this checkout has them.

The folder sits beside the repository (``../shared/crowd``) in CI and the main checkout, two
levels up from a worktree; ``LOOPLAB_CROWD_DIR`` overrides. Tests skip when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from looplab.trust.matrix import from_triples

ROOT = Path(__file__).resolve().parents[2]


def crowd_dir() -> Path | None:
    candidates = [ROOT.parent / "shared" / "crowd", ROOT.parent.parent / "shared" / "crowd"]
    if os.environ.get("LOOPLAB_CROWD_DIR"):
        candidates.insert(0, Path(os.environ["LOOPLAB_CROWD_DIR"]))
    return next((path for path in candidates if (path / "README.md").is_file()), None)


def load_crowd(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(label matrix, true class index per item, worker ids) of ``d_<name>``."""
    folder = crowd_dir()
    assert folder is not None
    answers = pd.read_csv(folder / f"d_{name}_answer.csv")
    truth = pd.read_csv(folder / f"d_{name}_truth.csv").set_index("question")["truth"]
    matrix = from_triples(
        answers["question"].tolist(), answers["worker"].tolist(), answers["answer"].tolist()
    )
    index = {c: k for k, c in enumerate(matrix.classes)}
    true = np.array([index[truth[item]] for item in matrix.items])
    return matrix.values, true, [str(w) for w in matrix.annotators]

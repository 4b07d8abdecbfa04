"""crowd-kit's consensus on label matrices, for bench/label_quality.py (run by the peer venv).

    bench/.peers/crowdkit/bin/python bench/peers/crowdkit_ds.py matrices.npz > labels.json

Reads every array of the .npz (items x annotators, -1 missing), fits crowd-kit's
``DawidSkene()`` with its defaults (100 iterations, tol 1e-5) and ``MajorityVote()``, and
prints ``{name: {"ds": labels, "mv": labels, "seconds": ds fit time}}``. Never run by
looplab's interpreter: crowd-kit is a peer, not a dependency.
"""

from __future__ import annotations

import json
import sys
import time
from importlib.metadata import version

import numpy as np
import pandas as pd
from crowdkit.aggregation import DawidSkene, MajorityVote


def main(path: str) -> None:
    out: dict[str, object] = {"version": version("crowd-kit")}
    with np.load(path) as arrays:
        for name in arrays.files:
            labels = arrays[name]
            rows, cols = np.nonzero(labels != -1)
            frame = pd.DataFrame({"task": rows, "worker": cols, "label": labels[rows, cols]})
            started = time.perf_counter()
            ds = DawidSkene().fit_predict(frame)
            seconds = time.perf_counter() - started
            mv = MajorityVote().fit_predict(frame)
            out[name] = {
                "ds": ds.reindex(range(labels.shape[0])).astype(int).tolist(),
                "mv": mv.reindex(range(labels.shape[0])).astype(int).tolist(),
                "seconds": seconds,
            }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])

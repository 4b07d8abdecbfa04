"""crowd-kit's DawidSkene on the fixed matrix of ``data/crowdkit_dawid_skene.json``.

Run by crowd-kit's own interpreter (never looplab's: crowd-kit is a peer, not a dependency)::

    bench/.peers/crowdkit/bin/python tests/trust/crowdkit_reference.py \
        tests/trust/data/crowdkit_dawid_skene.json

It reads the file's ``labels`` (items x annotators, -1 missing), fits ``DawidSkene(n_iter=1000,
tol=1e-12)`` (run to its fixed point) and prints ``{"posterior", "labels", "version"}`` as JSON.
The posteriors checked into the data file were produced exactly this way (crowd-kit 1.4.2);
tests/trust/test_consensus.py re-runs it when the peer venv exists.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import version

import numpy as np
import pandas as pd
from crowdkit.aggregation import DawidSkene


def main(path: str) -> None:
    with open(path) as file:
        labels = np.array(json.load(file)["labels"])
    rows, cols = np.nonzero(labels != -1)
    frame = pd.DataFrame({"task": rows, "worker": cols, "label": labels[rows, cols]})
    model = DawidSkene(n_iter=1000, tol=1e-12).fit(frame)
    k = labels.max() + 1
    probas = model.probas_.reindex(index=range(labels.shape[0]), columns=range(k), fill_value=0.0)
    json.dump(
        {
            "posterior": probas.to_numpy().round(8).tolist(),
            "labels": model.labels_.reindex(range(labels.shape[0])).astype(int).tolist(),
            "version": version("crowd-kit"),
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main(sys.argv[1])

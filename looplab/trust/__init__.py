"""Trust: how far each label and each annotator can be believed.

Plain functions over numpy arrays, one idea per module:

* :mod:`looplab.trust.matrix` -- the items x annotators label matrix (from answer triples) and
  its one check;
* :mod:`looplab.trust.agreement` -- Krippendorff's alpha (nominal) with a bootstrap interval,
  per label and per time batch; Cohen's kappa per annotator pair;
* :mod:`looplab.trust.consensus` -- majority vote, Dawid-Skene (EM over full confusion
  matrices) and, where a classifier's out-of-fold probabilities exist, a model-aware consensus
  (cleanlab's CROWDLAB): a label and a posterior per item;
* :mod:`looplab.trust.gold` -- per-annotator accuracy on known-answer records with a Wilson
  interval;
* :mod:`looplab.trust.reliability` -- the evidence about each annotator and the rule that flags
  one whose labels are systematically wrong;
* :mod:`looplab.trust.label_errors` -- out-of-fold probabilities from a small ensemble (its
  members chosen by out-of-fold log loss, its candidates by input kind) and cleanlab's
  confident learning: the labeled records whose given label is probably wrong;
* :mod:`looplab.trust.review` -- the review queue in the store: suspects queued by the scan
  (:mod:`looplab.learn.labelscan`), reviewers' decisions (keep, relabel, ambiguous) and the
  scan's precision measured from them.

Every function but the label-error scan reads an items x annotators matrix of class indices,
``-1`` where an annotator did not label an item (:data:`MISSING`). The stage sits between
``collect`` and ``learn``: the training set will ask it for each record's label and weight;
nothing here touches the store yet.
"""

from __future__ import annotations

MISSING = -1
"""The entry of a label matrix where an annotator gave no label to an item."""

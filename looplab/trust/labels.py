"""Each record's training label, its confidence and its weight: what the training set asks trust."""

from __future__ import annotations

#: The project setting ``consensus``: how people's answers on one record become its label.
CONSENSUS_METHODS = ("majority", "dawid_skene")


def check_method(name: object) -> str:
    """``name`` if it is a consensus method, else :class:`ValueError` listing the valid ones."""
    if name not in CONSENSUS_METHODS:
        raise ValueError(
            f"unknown consensus {name!r}; valid: {', '.join(CONSENSUS_METHODS)} (majority: one "
            "vote per person; dawid_skene: votes weighed by each person's estimated confusions)"
        )
    return str(name)

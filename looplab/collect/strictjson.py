"""JSON parsing that refuses an object naming one key twice.

``json.loads('{"a": 1, "a": 2}')`` keeps the last value and says nothing, so a file that names a
label twice imports whichever came last. Imports parse with :data:`DECODER` instead, which raises
:class:`DuplicateKey` naming the key (at any depth).

Examples
--------
>>> DECODER.decode('{"text": "x", "label": "a"}')
{'text': 'x', 'label': 'a'}
>>> DECODER.decode('{"label": "a", "label": "b"}')
Traceback (most recent call last):
...
looplab.collect.strictjson.DuplicateKey: 'label'
"""

from __future__ import annotations

import json
from typing import Any


class DuplicateKey(ValueError):
    """An object names ``key`` twice."""

    def __init__(self, key: str) -> None:
        super().__init__(repr(key))
        self.key = key


def unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for :class:`json.JSONDecoder`: a dict, or :class:`DuplicateKey`."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return obj


#: A decoder with the duplicate check (``decode`` for whole texts, ``raw_decode`` for streams).
DECODER = json.JSONDecoder(object_pairs_hook=unique_object)

"""A change of column types is a new recipe: `looplab train` after `looplab schema` trains."""

from __future__ import annotations

from looplab.collect import schema
from looplab.core.tables import Project
from looplab.learn.dataset import LabeledSet
from looplab.learn.fingerprints import training_fingerprint


def test_overriding_a_type_changes_the_fingerprint() -> None:
    rows = [{"zip": z, "age": a} for z, a in [("00523", 30), ("97095", 41), ("10001", 52)]]
    inferred = schema.infer(rows, ["zip", "age"])
    project = Project(name="p", task="tabular", labels=["a", "b"], fields=["zip", "age"])
    data = LabeledSet(
        record_ids=[1, 2], labels=["a", "b"], annotation_ids=[[1], [2]], weights=[1, 1]
    )
    before = training_fingerprint(project, data, LabeledSet())
    project.field_types = inferred.to_dict()
    typed = training_fingerprint(project, data, LabeledSet())
    project.field_types = schema.override(inferred, {"zip": "numeric"}).to_dict()
    overridden = training_fingerprint(project, data, LabeledSet())
    assert len({before, typed, overridden}) == 3
    project.field_types = inferred.to_dict()
    assert training_fingerprint(project, data, LabeledSet()) == typed

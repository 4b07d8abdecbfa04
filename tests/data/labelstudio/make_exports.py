"""Produce the Label Studio export files of tests/data/labelstudio with a real Label Studio.

These files are Label Studio's own output, not written by hand: this script drives a running
Label Studio (1.23.2, installed by ``make bench-peers`` in ``bench/.peers/labelstudio``) through
its HTTP API. It creates two annotators, four projects (one Choices control; multi-choice; two
Choices controls; spans), imports tasks with annotations attributed by e-mail, cancelled answers
and scored predictions, labels one task through the annotation API as a person would, and
downloads each project's exports (JSON snapshot, JSON_MIN, CSV).

Start Label Studio first (its own data dir, on 127.0.0.1), then run::

    LATEST_VERSION_CHECK=false LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true \\
      bench/.peers/labelstudio/bin/label-studio start --no-browser --host 127.0.0.1 \\
      --port 18420 --data-dir /tmp/ls-data --username admin@looplab.test \\
      --password Passw0rd-looplab --user-token 0123456789abcdef0123456789abcdef01234567 &
    python tests/data/labelstudio/make_exports.py --url http://127.0.0.1:18420 \\
      --token 0123456789abcdef0123456789abcdef01234567

Only the standard library is used, so any Python runs it.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
ANNOTATORS = [
    {"email": "alice@looplab.test", "username": "alice", "first_name": "Alice"},
    {"email": "bob@looplab.test", "username": "bob", "first_name": "Bob"},
]

TOPIC_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="topic" toName="text" choice="single">
    <Choice value="business"/><Choice value="tech"/><Choice value="sport"/>
    <Choice value="politics"/>
  </Choices>
</View>"""

MULTI_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="topic" toName="text" choice="multiple">
    <Choice value="business"/><Choice value="tech"/><Choice value="sport"/>
  </Choices>
</View>"""

TWO_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="topic" toName="text" choice="single">
    <Choice value="business"/><Choice value="tech"/>
  </Choices>
  <Choices name="sentiment" toName="text" choice="single">
    <Choice value="positive"/><Choice value="negative"/>
  </Choices>
</View>"""

SPAN_CONFIG = """<View>
  <Labels name="label" toName="text">
    <Label value="PER"/><Label value="ORG"/>
  </Labels>
  <Text name="text" value="$text"/>
</View>"""

# Hard text: emoji with a zero-width joiner, right-to-left script, combining marks, CJK, a no-break
# space, a line separator, quotes, commas and newlines (for CSV), padding whitespace.
TEXTS = [
    "Markets rally as the central bank holds rates \U0001f4c8",
    "Nouveau processeur: 3\u00a0nm, \u00ab\u00a0plus rapide\u00a0\u00bb",
    "\u0627\u0644\u0641\u0631\u064a\u0642 \u064a\u0641\u0648\u0632"
    " \u0628\u0627\u0644\u0643\u0623\u0633 (the team wins the cup)",
    'Parliament votes, 312 to 290, on the "budget, part 2"',
    "  Start-up raises $40M\nfor chips  ",
    "Cafe\u0301 owners protest the new tax",
    "\u30b5\u30c3\u30ab\u30fc\u65e5\u672c\u4ee3\u8868\u304c\u52dd\u5229",
    "Family \U0001f468\u200d\U0001f469\u200d\U0001f467 app tops the store\u2028charts",
    "Minister resigns after leak; 'no comment' says office",
    "Chipmaker's shares fall 8% on weak guidance",
    "Striker signs a five-year deal",
    "Tab\there, and a back\\slash",
]


def task_data(i: int, text: str) -> dict[str, Any]:
    """Typed metadata: string, int, float, bool, list, nested object and null."""
    return {
        "text": text,
        "source": ["bbc", "reuters", "afp"][i % 3],
        "n_words": len(text.split()),
        "weight": round(0.5 + i / 8, 3),
        "reviewed": i % 2 == 0,
        "tags": ["news", f"t{i}"],
        "origin": {"feed": "rss", "page": i},
        "note": None,
    }


def answer(email: str, choice: str | list[str], *, control: str = "topic", **extra: Any) -> dict:
    choices = choice if isinstance(choice, list) else [choice]
    return {
        "completed_by": {"email": email},
        "result": [
            {
                "from_name": control,
                "to_name": "text",
                "type": "choices",
                "value": {"choices": choices},
            }
        ],
        "ground_truth": False,
        **extra,
    }


def cancelled(email: str) -> dict:
    return {
        "completed_by": {"email": email},
        "result": [],
        "was_cancelled": True,
        "ground_truth": False,
        "lead_time": 3.0,
    }


def prediction(choice: str, score: float, version: str = "m-2024", control: str = "topic") -> dict:
    return {
        "model_version": version,
        "score": score,
        "result": [
            {
                "from_name": control,
                "to_name": "text",
                "type": "choices",
                "value": {"choices": [choice]},
            }
        ],
    }


def topic_tasks() -> list[dict[str, Any]]:
    a, b = ANNOTATORS[0]["email"], ANNOTATORS[1]["email"]
    gold = [
        "business",
        "tech",
        "sport",
        "politics",
        "business",
        "business",
        "sport",
        "tech",
        "politics",
        "business",
        "sport",
        "tech",
    ]
    tasks = []
    for i, text in enumerate(TEXTS):
        anns: list[dict] = []
        if i < 5:  # both agree
            anns = [answer(a, gold[i], lead_time=4.5 + i), answer(b, gold[i], lead_time=7.25)]
        elif i == 5:  # they disagree
            anns = [answer(a, "business", lead_time=12.0), answer(b, "politics", lead_time=9.5)]
        elif i in (6, 7):
            anns = (
                [answer(a, gold[i], lead_time=2.0, ground_truth=True)]
                if i == 6
                else [answer(b, gold[i], lead_time=5.0)]
            )
        elif i == 8:
            anns = [cancelled(b), answer(a, gold[i], lead_time=6.0)]
        elif i == 9:
            anns = [cancelled(a)]
        tasks.append({"data": task_data(i, text), "annotations": anns, "predictions": []})
    tasks[0]["predictions"] = [prediction("business", 0.91)]
    tasks[5]["predictions"] = [prediction("politics", 0.55)]
    # A near-duplicate of task 0 (other whitespace, other metadata): looplab merges it.
    dup = task_data(12, "Markets  rally as the central bank holds rates \U0001f4c8 ")
    dup["source"] = "wire"
    tasks.append({"data": dup, "annotations": [answer(b, "business", lead_time=3.5)]})
    return tasks


def multi_tasks() -> list[dict[str, Any]]:
    a, b = ANNOTATORS[0]["email"], ANNOTATORS[1]["email"]
    return [
        {
            "data": {"text": "Chip tariffs hit the market"},
            "annotations": [
                answer(a, ["business", "tech"], lead_time=8.0),
                answer(b, ["business"]),
            ],
        },
        {"data": {"text": "Club buys a stadium"}, "annotations": [answer(a, ["sport"])]},
        {"data": {"text": "Phone sales slow"}, "annotations": []},
    ]


def two_control_tasks() -> list[dict[str, Any]]:
    a, b = ANNOTATORS[0]["email"], ANNOTATORS[1]["email"]

    def both(email: str, topic: str, sentiment: str) -> dict:
        ann = answer(email, topic, lead_time=4.0)
        ann["result"].append(
            {
                "from_name": "sentiment",
                "to_name": "text",
                "type": "choices",
                "value": {"choices": [sentiment]},
            }
        )
        return ann

    return [
        {
            "data": {"text": "Profits soar at the bank"},
            "annotations": [both(a, "business", "positive")],
        },
        {
            "data": {"text": "App store outage angers users"},
            "annotations": [both(b, "tech", "negative"), both(a, "tech", "negative")],
        },
    ]


def span_tasks() -> list[dict[str, Any]]:
    a = ANNOTATORS[0]["email"]
    text = "Alice Smith joined Acme Corp."
    return [
        {
            "data": {"text": text},
            "annotations": [
                {
                    "completed_by": {"email": a},
                    "ground_truth": False,
                    "result": [
                        {
                            "from_name": "label",
                            "to_name": "text",
                            "type": "labels",
                            "value": {
                                "start": 0,
                                "end": 11,
                                "text": "Alice Smith",
                                "labels": ["PER"],
                            },
                        },
                        {
                            "from_name": "label",
                            "to_name": "text",
                            "type": "labels",
                            "value": {
                                "start": 19,
                                "end": 28,
                                "text": "Acme Corp",
                                "labels": ["ORG"],
                            },
                        },
                    ],
                }
            ],
        },
        {"data": {"text": "Nothing to see here."}, "annotations": []},
    ]


class Client:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url.rstrip("/"), token

    def call(self, method: str, path: str, body: Any = None, *, raw: bool = False) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Token {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise SystemExit(f"{method} {path}: HTTP {exc.code}: {exc.read()[:2000]!r}") from None
        if raw:
            return payload
        return json.loads(payload) if payload else None


def ensure_users(client: Client) -> None:
    known = {u["email"] for u in client.call("GET", "/api/users/")}
    for user in ANNOTATORS:
        if user["email"] not in known:
            client.call("POST", "/api/users/", user)


def make_project(client: Client, title: str, config: str, tasks: list[dict]) -> int:
    project = client.call("POST", "/api/projects/", {"title": title, "label_config": config})
    client.call("POST", f"/api/projects/{project['id']}/import", tasks)
    return int(project["id"])


def export(client: Client, project_id: int, stem: str, kinds: tuple[str, ...]) -> None:
    """A snapshot export (the one that keeps predictions whole), converted to each kind."""
    snapshot = client.call(
        "POST",
        f"/api/projects/{project_id}/exports/",
        {
            "task_filter_options": {"annotated": None},
            "serialization_options": {
                "drafts": {"only_id": True},
                "predictions": {"only_id": False},
                "annotations__completed_by": {"only_id": False},
            },
        },
    )
    eid = snapshot["id"]
    for _ in range(120):
        status = client.call("GET", f"/api/projects/{project_id}/exports/{eid}")["status"]
        if status == "completed":
            break
        if status == "failed":
            raise SystemExit(f"export of project {project_id} failed")
        time.sleep(0.5)
    suffix = {"JSON": "json", "JSON_MIN": "min.json", "CSV": "csv"}
    for kind in kinds:
        if kind != "JSON":
            client.call(
                "POST", f"/api/projects/{project_id}/exports/{eid}/convert", {"export_type": kind}
            )
            for _ in range(120):
                converted = client.call("GET", f"/api/projects/{project_id}/exports/{eid}")
                if any(
                    c.get("export_type") == kind and c.get("status") == "completed"
                    for c in converted.get("converted_formats", [])
                ):
                    break
                time.sleep(0.5)
        body = client.call(
            "GET", f"/api/projects/{project_id}/exports/{eid}/download?exportType={kind}", raw=True
        )
        (HERE / f"{stem}.{suffix[kind]}").write_bytes(body)
        print(f"wrote {stem}.{suffix[kind]} ({len(body):,} bytes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:18420")
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    client = Client(args.url, args.token)
    ensure_users(client)
    topic = make_project(client, "topic", TOPIC_CONFIG, topic_tasks())
    # One answer the way a person gives it: through the annotation API (completed_by = the admin).
    last = client.call("GET", f"/api/tasks/?project={topic}&page_size=100")
    tasks = last["tasks"] if isinstance(last, dict) else last
    unlabeled = next(t for t in tasks if t["data"]["text"] == TEXTS[10])
    client.call(
        "POST",
        f"/api/tasks/{unlabeled['id']}/annotations/",
        {
            "result": [
                {
                    "from_name": "topic",
                    "to_name": "text",
                    "type": "choices",
                    "value": {"choices": ["sport"]},
                }
            ],
            "lead_time": 1.5,
        },
    )
    export(client, topic, "topic", ("JSON", "JSON_MIN", "CSV"))
    export(client, make_project(client, "multi", MULTI_CONFIG, multi_tasks()), "multi", ("JSON",))
    export(
        client,
        make_project(client, "two-controls", TWO_CONFIG, two_control_tasks()),
        "two_controls",
        ("JSON",),
    )
    export(client, make_project(client, "spans", SPAN_CONFIG, span_tasks()), "spans", ("JSON",))


if __name__ == "__main__":
    main()

"""Run by tests/events/test_sdk_roundtrip.py in its own process (the SDK's login and
background logger are process-global): `write` fills an org through the official SDK,
`read` reads an org back through the SDK and prints what it saw as JSON."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import braintrust

URL = os.environ["RT_URL"]
KEY = os.environ["RT_KEY"]


def write() -> None:
    braintrust.login(app_url=URL, api_key=KEY, force_login=True)
    logger = braintrust.init_logger(project="rt-app", api_key=KEY, app_url=URL)
    with logger.start_span(name="handle", input={"question": "2+2?"}) as root:
        root.log(output={"answer": 4}, scores={"ok": 0.5}, metadata={"model": "m1"})
        with root.start_span(name="llm", type="llm") as child:
            child.log(
                input={
                    "file": braintrust.Attachment(
                        data=b"\x00attachment bytes\xff",
                        filename="a.bin",
                        content_type="application/octet-stream",
                    )
                },
                output="4",
            )
    logger.log_feedback(id=root.id, comment="checked by hand", metadata={"by": "qa"}, source="app")
    logger.log_feedback(id=root.id, comment="second look", source="api")
    logger.flush()

    dataset = braintrust.init_dataset(project="rt-app", name="golden", api_key=KEY, app_url=URL)
    ids = [
        dataset.insert(input={"q": i}, expected=i * 10, metadata={"v": 1}, id=f"row-{i}") for i in range(9)
    ]
    quoted = dataset.insert(input={"q": "quote"}, expected="'", id="it's")
    dataset.flush()
    experiment = braintrust.init(
        project="rt-app", experiment="pinned", dataset=dataset, api_key=KEY, app_url=URL
    )
    for row in dataset.fetch():
        experiment.log(input=row["input"], output=row["expected"], expected=row["expected"], scores={"s": 1})
    experiment.flush()
    dataset.update(id=ids[0], metadata={"v": 2})
    dataset.delete(ids[1])
    dataset.delete(quoted)
    dataset.insert(input={"q": "late"}, expected=0, id="row-late")
    dataset.flush()


def rows(records: Any, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    return sorted(({f: r.get(f) for f in fields} for r in records), key=lambda r: str(r["id"]))


def read() -> None:
    braintrust.login(app_url=URL, api_key=KEY, force_login=True)
    fields = ("id", "input", "expected", "metadata", "tags", "created")
    dataset = braintrust.init_dataset(project="rt-app", name="golden", api_key=KEY, app_url=URL)
    experiment = braintrust.init(project="rt-app", experiment="pinned", open=True, api_key=KEY, app_url=URL)
    out: dict[str, Any] = {"dataset": rows(dataset.fetch(), fields)}
    out["experiment"] = sorted(
        (
            {"input": r.get("input"), "output": r.get("output"), "scores": r.get("scores")}
            for r in experiment.fetch()
        ),
        key=lambda r: json.dumps(r, sort_keys=True),
    )
    pin = os.environ["RT_PIN"]
    pinned = braintrust.init_dataset(project="rt-app", name="golden", version=pin, api_key=KEY, app_url=URL)
    out["pinned"] = rows(pinned.fetch(), fields)
    print(json.dumps(out, sort_keys=True, default=str))


if __name__ == "__main__":
    {"write": write, "read": read}[sys.argv[1]]()

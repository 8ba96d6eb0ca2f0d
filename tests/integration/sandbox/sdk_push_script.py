"""Run by tests/sandbox/test_sdk_push_and_read.py, one mode per process (the SDK's login and
background logger are process-global). Each mode drives the official SDK against the sandbox
at RT_URL with key RT_KEY and prints what the SDK returned or read, as JSON."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import braintrust
from pydantic import BaseModel

URL = os.environ["RT_URL"]
KEY = os.environ["RT_KEY"]
PROJECT = os.environ.get("RT_PROJECT", "push-app")
IF_EXISTS = os.environ.get("RT_IF_EXISTS") or None
GREETING = os.environ.get("RT_GREETING", "Hello {{name}}")
WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "weather", "description": "Weather in a city", "parameters": {"type": "object"}},
}


class AddArgs(BaseModel):
    a: int
    b: int


def add(a: int, b: int) -> int:
    return a + b


def publish() -> Any:
    project = braintrust.projects.create(PROJECT)
    adder = project.tools.create(handler=add, name="adder", parameters=AddArgs)  # a code tool
    project.prompts.create(
        name="Greeter",
        slug="greeter",
        messages=[{"role": "system", "content": GREETING}],
        model="gpt-4o-mini",
        params={"temperature": 0},
        tools=[WEATHER_TOOL],  # a tool defined inline: needs no bundle
        if_exists=IF_EXISTS,
    )
    if os.environ.get("RT_WITH_CODE_TOOL"):
        project.prompts.create(
            name="Uses adder",
            slug="uses-adder",
            prompt="Add {{a}} and {{b}}",
            model="gpt-4o-mini",
            tools=[adder],  # sent by slug; publish() never sends the code itself (needs a bundle)
        )
    project.scorers.create(
        name="Judge",
        slug="judge",
        prompt="Is {{output}} polite? Y or N",
        model="gpt-4o-mini",
        use_cot=True,
        choice_scores={"Y": 1, "N": 0},
        if_exists=IF_EXISTS,
    )
    return project.publish()


def load() -> Any:
    prompt = braintrust.load_prompt(project=PROJECT, slug="greeter", api_key=KEY, app_url=URL)
    built = prompt.build(name="Ada")
    return {"slug": prompt.slug, "messages": built["messages"], "model": built["model"], "id": prompt.id}


def run_eval() -> Any:
    """A local Eval whose task renders the published prompt and whose scorer is Python code."""
    prompt = braintrust.load_prompt(project=PROJECT, slug="greeter", api_key=KEY, app_url=URL)

    def task(name: str) -> str:
        return prompt.build(name=name)["messages"][0]["content"]

    def exact(input: str, output: str, expected: str) -> float:
        return 1.0 if output == expected else 0.0

    result = braintrust.Eval(
        PROJECT,
        data=lambda: [
            braintrust.EvalCase(input="Ada", expected="Hello Ada"),
            braintrust.EvalCase(input="Bob", expected="Hi Bob"),
        ],
        task=task,
        scores=[exact],
        experiment_name="local-eval",
    )
    return {"experiment": result.summary.experiment_name, "scores": result.summary.scores["exact"].score}


def read_open() -> Any:
    experiment = braintrust.init(
        project=PROJECT, experiment="local-eval", open=True, api_key=KEY, app_url=URL
    )
    return sorted(
        (
            {
                "input": r["input"],
                "output": r["output"],
                "scores": r.get("scores"),
                "root": not r.get("span_parents"),
            }
            for r in experiment.fetch()
            if r.get("scores") or not r.get("span_parents")
        ),
        key=lambda r: str(r["input"]),
    )


MODES = {"publish": publish, "load": load, "eval": run_eval, "open": read_open}

if __name__ == "__main__":
    braintrust.login(app_url=URL, api_key=KEY, force_login=True)
    print(json.dumps(MODES[sys.argv[1]](), default=str))

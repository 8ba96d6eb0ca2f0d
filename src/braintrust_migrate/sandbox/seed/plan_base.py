"""What every seed planning step shares: helpers, per-project context, planner state.

:class:`PlannerBase` owns the single ``random.Random`` of the plan; the step
mixins (``plan_org``, ``plan_project``…) only draw from it, so the
order :mod:`.plan` calls them in fixes the whole plan.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from .events_ops import DatasetVersionMarker, EventRowsMarker
from .names import FUNCTION_WORDS, MESSAGES, MODELS, PROMPT_WORDS, NameFactory, slugify
from .plan_model import Op, Plan, Profile, Ref, UserRef

V1 = "/v1/"


def fn_ref(key: str, *, version: bool = False) -> dict[str, Any]:
    ref: dict[str, Any] = {"type": "function", "id": Ref(key)}
    if version:
        ref["version"] = Ref(key, "_xact_id")
    return ref


def global_ref(name: str, function_type: str | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"type": "global", "name": name}
    if function_type:
        ref["function_type"] = function_type
    return ref


def dataset_xact(plan: Plan, ds_key: str, rng: random.Random) -> Any:
    """The transaction id to pin a dataset version to (experiment ``dataset_version``, snapshot ``xact_id``).

    Once the events phase reads the dataset back after writing its rows (an op keyed
    ``<ds_key>.version``, e.g. ``POST /v1/dataset/{id}/fetch`` with ``{"limit": 1}``),
    this is the ``_xact_id`` of the newest row. Until then it is a synthetic,
    plausible xact id (19 digits) drawn from the plan's rng.
    """
    version_key = f"{ds_key}.version"
    if version_key in plan.ops:
        return Ref(version_key, "events.0._xact_id")
    return str(1000192000000000000 + rng.randrange(10**15))


def plan_dataset_events(plan: Plan, ds_key: str, rng: random.Random) -> None:
    """Events phase hook: the dataset's initial rows, then its version read back.

    ``{ds_key}.events`` writes the rows that exist before any experiment or snapshot
    pins the dataset (``POST /v1/dataset/{id}/insert``); ``{ds_key}.version`` then
    reads the newest ``_xact_id`` back (``POST /v1/dataset/{id}/fetch``), which
    :func:`dataset_xact` pins. Both bodies are markers: how many rows depends on
    ``--rows``, so ``events.EventsPhase`` writes them. Everything else (later
    rows, updates, merges, deletes, comments) is written after the plan.
    """
    path = ("/v1/dataset/", Ref(ds_key))
    plan.add(Op(f"{ds_key}.events", None, "POST", (*path, "/insert"), EventRowsMarker("dataset", ds_key)))
    plan.add(
        Op(
            f"{ds_key}.version",
            None,
            "POST",
            (*path, "/fetch"),
            DatasetVersionMarker(ds_key),
            after=(f"{ds_key}.events",),
        )
    )


def plan_experiment_events(plan: Plan, exp_key: str, rng: random.Random) -> None:
    """Events phase hook: experiment rows are written after the plan (``events``).

    An experiment on a dataset planned later (the next project's) got a synthetic
    ``dataset_version`` from :func:`dataset_xact`; point it at that dataset's real version.
    """
    body = plan.ops[exp_key].body
    dataset = body.get("dataset_id")
    if isinstance(dataset, Ref) and isinstance(body.get("dataset_version"), str):
        body["dataset_version"] = Ref(f"{dataset.key}.version", "events.0._xact_id")


def plan_project_logs(plan: Plan, project_key: str, rng: random.Random) -> None:
    """Events phase hook: project logs are written after the plan (``events``); nothing to plan."""


def inline_code(runtime: str, code: str) -> dict[str, Any]:
    version = "3.11" if runtime == "python" else "20"
    return {
        "type": "code",
        "data": {"type": "inline", "runtime_context": {"runtime": runtime, "version": version}, "code": code},
    }


PY_SNIPPETS = (
    "def handler(input, **kwargs):\n    return str(input).strip().lower()\n",
    "def handler(output, expected, **kwargs):\n    return 1.0 if output == expected else 0.0\n",
    "import json\n\ndef handler(output, **kwargs):\n    try:\n        json.loads(output)\n        return 1\n    except Exception:\n        return 0\n",
    "def handler(input, **kwargs):\n    return {'words': len(str(input).split()), 'note': \"naïve — ✓\"}\n",
)
JS_SNIPPETS = (
    "function handler({ input }) {\n  return String(input).replace(/<[^>]+>/g, '');\n}\n",
    "async function handler({ city }) {\n  return { city, forecast: 'sunny ☀️' };\n}\n",
    "function handler({ output, expected }) {\n  return output === expected ? 1 : 0;\n}\n",
)


@dataclass
class ProjectCtx:
    """What the per-project planning steps share."""

    i: int
    P: str  # the project's op key
    other: str  # op key of the project that cross-project references point at
    ds_keys: list[str] = field(default_factory=list)
    mcp_keys: list[str] = field(default_factory=list)
    exp_keys: list[str] = field(default_factory=list)
    prompt_keys: list[str] = field(default_factory=list)
    fn_counter: int = 0

    @property
    def pid(self) -> Ref:
        return Ref(self.P)

    def fn(self, suffix: str) -> str:
        return f"{self.P}.fn.{suffix}"


class PlannerBase:
    """The planner's state, and the body builders several planning steps use."""

    def __init__(self, profile: Profile, seed: int) -> None:
        self.p = profile
        self.rng = random.Random(seed)
        self.names = NameFactory(self.rng)
        self.plan = Plan(profile=profile, seed=seed)
        self.seq = 0  # org-wide counter for names that must be unique org-wide
        self.env_keys: list[str] = []
        self.role_keys: list[str] = []
        self.group_keys: list[str] = []
        self.project_keys: list[str] = []

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def add(
        self, key: str, kind: str | None, method: str, path: tuple[Any, ...], body: Any = None, **kw: Any
    ) -> str:
        name = kw.pop("name", None)
        if name is None and isinstance(body, dict) and isinstance(body.get("name"), str):
            name = body["name"]
        return self.plan.add(Op(key=key, kind=kind, method=method, path=path, body=body, name=name, **kw))

    def user(self) -> UserRef:
        return UserRef(self.rng.randrange(10_000))

    def _function(self, c: ProjectCtx, suffix: str, body: dict[str, Any], *, name: str | None = None) -> str:
        c.fn_counter += 1
        k = c.fn_counter
        full_name = name if name is not None else self.names.name(FUNCTION_WORDS, k)
        # Prompts and functions may share one slug namespace per project: suffix f<k> / p<k>.
        body = {"project_id": c.pid, "name": full_name, "slug": slugify(full_name, "fn", f"f{k}"), **body}
        return self.add(c.fn(suffix), "function", "POST", (V1 + "function",), body)

    def _prompt(self, c: ProjectCtx, suffix: str, body: dict[str, Any], *, name: str | None = None) -> str:
        k = len(c.prompt_keys)
        full_name = name if name is not None else self.names.name(PROMPT_WORDS, k, awkward=k == 1)
        body = {"project_id": c.pid, "name": full_name, "slug": slugify(full_name, "prompt", f"p{k}"), **body}
        key = self.add(f"{c.P}.prompt.{suffix}", "prompt", "POST", (V1 + "prompt",), body)
        c.prompt_keys.append(key)
        return key

    def prompt_data(
        self,
        *,
        chat: bool,
        tools: list[dict[str, Any]] | None = None,
        parser: bool = False,
        mcp: dict[str, Any] | None = None,
        transcript: bool = False,
    ) -> dict[str, Any]:
        rng = self.rng
        if chat:
            block: dict[str, Any] = {
                "type": "chat",
                "messages": [
                    {"role": "system", "content": rng.choice(MESSAGES)},
                    {"role": "user", "content": "{{input}}"},
                ],
            }
            if rng.random() < 0.3:
                block["messages"].append({"role": "assistant", "content": "Sure — here you go."})
            if transcript:
                block["messages"].extend(self._transcript())
        else:
            block = {"type": "completion", "content": "Complete this: {{input}} →"}
        data: dict[str, Any] = {
            "prompt": block,
            "options": {
                "model": rng.choice(MODELS),
                "params": {
                    "temperature": round(rng.random(), 2),
                    "max_tokens": rng.choice((256, 1024, 4096)),
                },
            },
            "template_format": rng.choice(("mustache", "nunjucks", "none")),
        }
        if parser:
            data["parser"] = {
                "type": "llm_classifier",
                "use_cot": True,
                "choice_scores": {"A": 1, "B": 0.5, "C": 0},
                "choice": ["A", "B", "C"],
                "allow_no_match": False,
            }
        if tools:
            data["tool_functions"] = tools
        if mcp:
            data["mcp"] = mcp
        return data

    def _transcript(self) -> list[dict[str, Any]]:
        """Few-shot messages carrying LLM-side ids (file, tool call, reasoning): not Braintrust objects."""
        rng = self.rng
        call_id = f"call_{rng.getrandbits(64):016x}"
        return [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this invoice? 🧾"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://files.example.com/invoice.png", "detail": "low"},
                    },
                    {
                        "type": "file",
                        "file": {"file_id": f"file-{rng.getrandbits(64):016x}", "filename": "invoice.pdf"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": "lookup_order", "arguments": '{"id": 42}'},
                    }
                ],
                "reasoning": [{"id": f"rs_{rng.getrandbits(64):016x}", "content": "Need the order first."}],
            },
            {"role": "tool", "tool_call_id": call_id, "content": '{"status": "shipped"}'},
        ]

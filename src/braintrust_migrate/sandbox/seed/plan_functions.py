"""Per-project seed functions: every function type, the agent (graph) and origin-linked functions."""

from __future__ import annotations

from functools import partial
from typing import Any

from .names import MODELS, TAG_WORDS
from .plan_base import (
    JS_SNIPPETS,
    PY_SNIPPETS,
    PlannerBase,
    ProjectCtx,
    fn_ref,
    global_ref,
    inline_code,
)
from .plan_model import Ref


class FunctionPlanner(PlannerBase):
    def _functions(self, c: ProjectCtx) -> None:
        """Functions: leaves first (the leveling does the ordering, keys document intent)."""
        p = self.p
        rng = self.rng
        names = self.names
        P = c.P
        function = partial(self._function, c)

        function(
            "task",
            {
                "function_type": "task",
                "function_data": inline_code("python", PY_SNIPPETS[0]),
                "description": "normalizes its input",
                "function_schema": {
                    "parameters": {"type": "object", "properties": {"input": {"type": "string"}}},
                    "returns": {"type": "string"},
                },
                "tags": ["seed", "task"],
            },
        )
        function(
            "scorer",
            {"function_type": "scorer", "function_data": inline_code("node", JS_SNIPPETS[2])},
        )
        function(
            "tool",
            {
                "function_type": "tool",
                "function_data": inline_code("node", JS_SNIPPETS[1]),
                "function_schema": {
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    }
                },
            },
            name=names.awkward(self.next_seq()),
        )
        fn_pre = function(
            "pre",
            {"function_type": "preprocessor", "function_data": inline_code("python", PY_SNIPPETS[3])},
        )
        function(
            "global",
            {
                "function_type": "scorer",
                "function_data": {
                    "type": "global",
                    "name": rng.choice(("Factuality", "ClosedQA", "Levenshtein", "ExactMatch")),
                    "function_type": "scorer",
                    "config": {"threshold": round(rng.random(), 2)},
                },
            },
        )
        function(
            "llm",
            {
                "function_type": "llm",
                "function_data": {"type": "prompt"},
                "prompt_data": self.prompt_data(
                    chat=True, tools=[global_ref("web_search", "tool")], transcript=True
                ),
            },
        )
        function(
            "classifier",
            {
                "function_type": "classifier",
                "function_data": {"type": "prompt"},
                "prompt_data": self.prompt_data(chat=True, parser=True),
            },
        )
        topic_maps = []
        for t in range(2):
            topic_maps.append(
                function(
                    f"topic_map{t}",
                    {
                        "function_data": {
                            "type": "topic_map",
                            "source_facet": "intent" if t == 0 else "sentiment",
                            "embedding_model": "text-embedding-3-small",
                            "bundle_key": f"topic-bundles/{P}/{t}/bundle.bin",
                            "report_key": f"topic-reports/{P}/{t}/report.json",
                            "topic_names": {"0": "billing", "1": "shipping", "2": "退货"},
                            "generation_settings": {
                                "algorithm": "hdbscan" if t == 0 else "kmeans",
                                "dimension_reduction": "umap",
                                "n_clusters": 8,
                                "naming_model": "gpt-4o-mini",
                            },
                            "distance_threshold": 0.35,
                        },
                    },
                )
            )
        function(
            "facet",
            {
                "function_type": "facet",
                "function_data": {
                    "type": "facet",
                    "preprocessor": fn_ref(fn_pre, version=True),
                    "prompt": "What is the user's intent? Answer with one word.",
                    "model": rng.choice(MODELS),
                    "embedding_model": "text-embedding-3-small",
                    "no_match_pattern": "^(none|n/a)$",
                },
            },
        )
        function(
            "batched_facet",
            {
                "function_type": "facet",
                "function_data": {
                    "type": "batched_facet",
                    "preprocessor": fn_ref(fn_pre),
                    "facets": [
                        {"name": "intent", "prompt": "Intent?", "model": "gpt-4o-mini"},
                        {"name": "sentiment", "prompt": "Sentiment?", "no_match_pattern": "neutral"},
                    ],
                    "topic_maps": {
                        "intent": [
                            {
                                "function_name": "intent topics",
                                "topic_map_id": Ref(topic_maps[0]),
                                "topic_map_data": {
                                    "type": "topic_map",
                                    "source_facet": "intent",
                                    "embedding_model": "text-embedding-3-small",
                                },
                            }
                        ],
                        "sentiment": [
                            {
                                "function_name": "sentiment topics",
                                "topic_map_id": Ref(topic_maps[1]),
                                "topic_map_data": {
                                    "type": "topic_map",
                                    "source_facet": "sentiment",
                                    "embedding_model": "text-embedding-3-small",
                                    "topic_names": {"0": "angry", "1": "happy"},
                                },
                            }
                        ],
                    },
                },
            },
        )
        fn_params = function(
            "params",
            {
                "function_type": "parameters",
                "function_data": {
                    "type": "parameters",
                    "data": {"model": rng.choice(MODELS), "temperature": round(rng.random(), 2), "top_k": 8},
                    "__schema": {
                        "type": "object",
                        "properties": {
                            "model": {"type": "string"},
                            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
                            "top_k": {"type": "integer"},
                        },
                        "required": ["model"],
                        "additionalProperties": False,
                    },
                },
            },
        )
        function(
            "remote_eval",
            {
                "function_type": "task",
                "function_data": {
                    "type": "remote_eval",
                    "endpoint": f"https://evals.example.com/{P}/run",
                    "eval_name": "nightly regression",
                    "parameters": {"model": "gpt-4o", "retries": 2},
                    "parameters_version": Ref(fn_params, "_xact_id"),
                },
            },
        )
        function(
            "bundle",
            {
                "function_type": "scorer",
                "function_data": {
                    "type": "code",
                    "data": {
                        "type": "bundle",
                        "runtime_context": {"runtime": "node", "version": "20"},
                        "location": {
                            "type": "experiment",
                            "eval_name": "my-eval",
                            "position": {"type": "scorer", "index": 0},
                        },
                        "bundle_id": f"bundle-{rng.getrandbits(64):016x}",
                        "preview": "function score({ output }) { return output.length > 0; }",
                    },
                },
            },
        )
        function(
            "bundle_fn",
            {
                "function_type": "tool",
                "function_data": {
                    "type": "code",
                    "data": {
                        "type": "bundle",
                        "runtime_context": {"runtime": "python", "version": "3.12"},
                        "location": {"type": "function", "index": 1},
                        "bundle_id": f"bundle-{rng.getrandbits(64):016x}",
                    },
                },
            },
        )
        function(
            "bundle_sandbox",
            {
                "function_type": "sandbox",
                "function_data": {
                    "type": "code",
                    "data": {
                        "type": "bundle",
                        "runtime_context": {"runtime": "python", "version": "3.12"},
                        "location": {
                            "type": "sandbox",
                            "sandbox_spec": {
                                "provider": "modal",
                                "snapshot_ref": f"im-{rng.getrandbits(32):08x}",
                            },
                            "entrypoints": ["main.py"],
                            "eval_name": "sandboxed eval",
                            "parameters": {"timeout": 60},
                        },
                        "bundle_id": f"bundle-{rng.getrandbits(64):016x}",
                    },
                },
            },
        )
        for j in range(p.extra_code_functions):
            runtime = rng.choice(("python", "node"))
            code = rng.choice(PY_SNIPPETS if runtime == "python" else JS_SNIPPETS)
            function(
                f"extra{j}",
                {
                    "function_type": rng.choice(("scorer", "task", "tool", "preprocessor")),
                    "function_data": inline_code(runtime, code),
                    "tags": rng.sample(list(TAG_WORDS), 1),
                },
            )

    def _agent(self, c: ProjectCtx) -> None:
        """The agent (graph): function nodes by function_id and by project_name + slug."""
        other = c.other
        i = c.i
        function = partial(self._function, c)
        fn_task = c.fn("task")
        fn_llm = c.fn("llm")
        graph_nodes: dict[str, Any] = {
            "input": {"type": "input", "position": {"x": 0, "y": 0}},
            "classify": {
                "type": "function",
                "function": {"function_id": Ref(fn_llm)},
                "position": {"x": 200, "y": 0},
            },
            "lookup": {
                "type": "function",
                "function": {"project_name": Ref(other, "name"), "slug": Ref(f"{other}.fn.tool", "slug")},
                "position": {"x": 400, "y": 0},
            },
            "normalize": {
                "type": "function",
                "function": {"function_id": Ref(fn_task), "version": Ref(fn_task, "_xact_id")},
            },
            "judge": {"type": "function", "function": {"global_function": "Factuality"}},
            "template": {
                "type": "prompt_template",
                "prompt": {"type": "chat", "messages": [{"role": "user", "content": "Combine {{classify}}"}]},
            },
            "gate": {"type": "gate", "condition": "classify.score > 0.5"},
            "constant": {"type": "literal", "value": {"k": 3}},
            "output": {"type": "output", "position": {"x": 800, "y": 0}},
        }
        edges = {}
        for a, b in (
            ("input", "classify"),
            ("classify", "lookup"),
            ("lookup", "normalize"),
            ("normalize", "template"),
        ):
            edges[f"{a}->{b}"] = {
                "source": {"node": a, "variable": "output"},
                "target": {"node": b, "variable": "input"},
                "purpose": "data",
            }
        edges["template->output"] = {
            "source": {"node": "template", "variable": "output"},
            "target": {"node": "output", "variable": "output"},
            "purpose": "messages",
        }
        function(
            "agent",
            {
                "function_type": "task",
                "function_data": {"type": "graph", "nodes": graph_nodes, "edges": edges},
                "description": "A multi-step agent (graph function)",
            },
            name=f"Support agent {i} 🤖",
        )

    def _origin_functions(self, c: ProjectCtx) -> None:
        """Functions whose origin points at a project / an experiment / a prompt."""
        other = c.other
        function = partial(self._function, c)
        exp_keys = c.exp_keys
        pr_main = f"{c.P}.prompt.main"
        function(
            "origin_project",
            {
                "function_type": "scorer",
                "function_data": inline_code("python", PY_SNIPPETS[1]),
                "origin": {"object_type": "project", "object_id": Ref(other)},
            },
        )
        function(
            "origin_experiment",
            {
                "function_type": "scorer",
                "function_data": inline_code("node", JS_SNIPPETS[2]),
                "origin": {"object_type": "experiment", "object_id": Ref(exp_keys[0]), "internal": True},
            },
        )
        function(
            "origin_prompt",
            {
                "function_type": "llm",
                "function_data": {"type": "prompt"},
                "prompt_data": self.prompt_data(chat=True),
                "origin": {"object_type": "prompt", "object_id": Ref(pr_main)},
            },
        )

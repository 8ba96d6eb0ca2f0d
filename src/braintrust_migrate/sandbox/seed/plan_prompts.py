"""Per-project seed prompts, and the two prompt/function reference cycles (created, then closed by PATCH)."""

from __future__ import annotations

from functools import partial
from typing import Any

from .plan_base import PY_SNIPPETS, V1, PlannerBase, ProjectCtx, fn_ref, global_ref, inline_code
from .plan_model import Ref


class PromptPlanner(PlannerBase):
    def _prompts(self, c: ProjectCtx) -> None:
        """Prompts."""
        p = self.p
        rng = self.rng
        other = c.other
        prompt = partial(self._prompt, c)
        fn_tool = c.fn("tool")
        mcp_keys = c.mcp_keys

        mcp_map: dict[str, Any] = {
            "inline-docs": {
                "type": "url",
                "url": "https://mcp.example.com/docs/sse",
                "enabled_tools": ["search"],
            },
        }
        for j, mk in enumerate(mcp_keys):
            mcp_map[f"project-server-{j}"] = {"type": "id", "id": Ref(mk), "is_disabled": j > 0}
        prompt(
            "main",
            {
                "description": "Answers with tools",
                "prompt_data": self.prompt_data(
                    chat=True,
                    tools=[
                        fn_ref(fn_tool, version=True),
                        fn_ref(f"{other}.fn.task"),
                        global_ref("calculator", "tool"),
                    ],
                    mcp=mcp_map,
                    transcript=True,
                ),
                "tags": ["production"],
            },
        )
        prompt("completion", {"prompt_data": self.prompt_data(chat=False), "function_type": "llm"})
        prompt(
            "classifier", {"prompt_data": self.prompt_data(chat=True, parser=True), "function_type": "scorer"}
        )
        other_main = f"{other}.prompt.main"
        prompt(
            "copy",
            {
                "description": "Copied from another prompt",
                "prompt_data": {
                    **self.prompt_data(chat=True),
                    "origin": {
                        "prompt_id": Ref(other_main),
                        "project_id": Ref(other),
                        "prompt_version": Ref(other_main, "_xact_id"),
                    },
                },
            },
        )
        for j in range(p.extra_prompts):
            prompt(f"extra{j}", {"prompt_data": self.prompt_data(chat=rng.random() < 0.7)})

    def _prompt_cycle(self, c: ProjectCtx) -> None:
        """Cycle 1: prompt P uses tool F as a tool; F.origin points at P."""
        i = c.i
        function = partial(self._function, c)
        prompt = partial(self._prompt, c)
        pr_cyc = prompt("cycle", {"prompt_data": self.prompt_data(chat=True)}, name=f"Cycle prompt {i}")
        fn_cyc = function(
            "cycle_tool",
            {
                "function_type": "tool",
                "function_data": inline_code("python", PY_SNIPPETS[0]),
                "origin": {"object_type": "prompt", "object_id": Ref(pr_cyc), "internal": False},
            },
            name=f"Cycle tool {i}",
        )
        cyc_data = self.prompt_data(chat=True, tools=[fn_ref(fn_cyc)])
        self.add(
            f"{pr_cyc}.close_cycle", None, "PATCH", (V1 + "prompt/", Ref(pr_cyc)), {"prompt_data": cyc_data}
        )
        self.plan.cycles.append(("prompt.tool_functions <-> function.origin(prompt)", pr_cyc, fn_cyc))

    def _agent_cycle(self, c: ProjectCtx) -> None:
        """Cycle 2: an agent calls a prompt-function that uses the agent as a tool."""
        i = c.i
        function = partial(self._function, c)
        fn_pf = function(
            "cycle_pf",
            {
                "function_type": "llm",
                "function_data": {"type": "prompt"},
                "prompt_data": self.prompt_data(chat=True),
            },
            name=f"Cycle prompt function {i}",
        )
        fn_cyc_agent = function(
            "cycle_agent",
            {
                "function_type": "task",
                "function_data": {
                    "type": "graph",
                    "nodes": {
                        "in": {"type": "input"},
                        "call": {"type": "function", "function": {"function_id": Ref(fn_pf)}},
                        "out": {"type": "output"},
                    },
                    "edges": {
                        "a": {
                            "source": {"node": "in", "variable": "output"},
                            "target": {"node": "call", "variable": "input"},
                            "purpose": "data",
                        },
                        "b": {
                            "source": {"node": "call", "variable": "output"},
                            "target": {"node": "out", "variable": "output"},
                            "purpose": "data",
                        },
                    },
                },
            },
            name=f"Cycle agent {i}",
        )
        self.add(
            f"{fn_pf}.close_cycle",
            None,
            "PATCH",
            (V1 + "function/", Ref(fn_pf)),
            {"prompt_data": self.prompt_data(chat=True, tools=[fn_ref(fn_cyc_agent)])},
        )
        self.plan.cycles.append(("function.tool_functions <-> graph node function_id", fn_pf, fn_cyc_agent))

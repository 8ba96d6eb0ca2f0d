"""Per-project seed objects other than functions, prompts, automations and ACLs.

Datasets, tags, span iframes, MCP servers, experiments, project settings,
scores, views, env vars and dataset snapshots.
"""

from __future__ import annotations

from typing import Any

from .names import COLORS, DATASET_WORDS, EXPERIMENT_WORDS, MODELS, TAG_WORDS, env_name
from .plan_base import (
    V1,
    PlannerBase,
    ProjectCtx,
    dataset_xact,
    fn_ref,
    global_ref,
    plan_dataset_events,
    plan_experiment_events,
)
from .plan_model import Ref


class ProjectPlanner(PlannerBase):
    def _leaves(self, c: ProjectCtx) -> None:
        """Leaves: datasets, tags, span iframes, MCP servers."""
        p = self.p
        rng = self.rng
        names = self.names
        P = c.P
        pid = c.pid
        i = c.i
        ds_keys = c.ds_keys
        mcp_keys = c.mcp_keys
        for j in range(p.datasets):
            body = {
                "project_id": pid,
                "name": names.name(DATASET_WORDS, j, awkward=j == 1),
                "description": rng.choice(("Curated by hand", "Sampled from production", None, "ラベル付き")),
                "tags": rng.sample(list(TAG_WORDS), 2),
                "metadata": {"source": rng.choice(("prod", "synthetic", "vendor")), "version": j},
            }
            if body["description"] is None:
                del body["description"]
            k = self.add(f"{P}.ds{j}", "dataset", "POST", (V1 + "dataset",), body)
            ds_keys.append(k)
            plan_dataset_events(self.plan, k, rng)

        for j in range(p.tags):
            body = {
                "project_id": pid,
                "name": TAG_WORDS[j % len(TAG_WORDS)] if j < len(TAG_WORDS) else f"tag {j}",
                "description": "seeded tag",
                "color": COLORS[(i + j) % len(COLORS)],
            }
            if j == 1:
                body["name"] = "⚠️ needs/legal review"
            self.add(f"{P}.tag{j}", "project_tag", "POST", (V1 + "project_tag",), body)

        for j in range(p.span_iframes):
            n = self.next_seq()
            body = {
                "project_id": pid,
                "name": f"Trace viewer {n}" if j else names.awkward(n),
                "url": f"https://viewer.example.com/embed/{n}?theme=dark&span={{{{span_id}}}}",
                "description": "Renders the span as a custom view",
                "post_message": bool(j % 2 == 0),
            }
            self.add(f"{P}.iframe{j}", "span_iframe", "POST", (V1 + "span_iframe",), body)

        for j in range(p.mcp_servers):
            n = self.next_seq()
            body = {
                "project_id": pid,
                "name": f"MCP tools {n}" if j else f"GitHub MCP {n} 🐙",
                "url": f"https://mcp.example.com/{n}/sse",
                "description": "Model Context Protocol server",
            }
            mcp_keys.append(self.add(f"{P}.mcp{j}", "mcp_server", "POST", (V1 + "mcp_server",), body))

    def _experiments(self, c: ProjectCtx) -> None:
        """Experiments: dataset links, parameters, base_exp_id chains."""
        p = self.p
        rng = self.rng
        names = self.names
        P = c.P
        pid = c.pid
        other = c.other
        fn_params = c.fn("params")
        ds_keys = c.ds_keys
        exp_keys = c.exp_keys
        for j in range(p.experiments):
            ds = ds_keys[j % len(ds_keys)] if j % 3 != 2 else f"{other}.ds0"
            body: dict[str, Any] = {
                "project_id": pid,
                "name": names.name(EXPERIMENT_WORDS, j, awkward=j == 1),
                "description": rng.choice(("Nightly run", "Ablation", "Baseline", "Комментарий")),
                "repo_info": {
                    "commit": f"{rng.getrandbits(160):040x}",
                    "branch": rng.choice(("main", "feature/rag-v2", "fix/ünïcode")),
                    "dirty": rng.random() < 0.3,
                    "author_name": "Seed Bot",
                    "author_email": "seed@example.com",
                    "commit_message": "Tune retrieval\n\nLonger body with 'quotes'",
                },
                "metadata": {"model": rng.choice(MODELS), "temperature": round(rng.random(), 2)},
                "tags": rng.sample(list(TAG_WORDS), 2),
                "public": j == 0,
            }
            if j % 4 != 3:
                body["dataset_id"] = Ref(ds)
                body["dataset_version"] = dataset_xact(self.plan, ds, rng)
                body["internal_metadata"] = {
                    "dataset_filter": {"btql": f"metadata.split = 'test-{j}'", "dataset_id": Ref(ds)}
                }
            if j % 2 == 0:
                body["parameters_id"] = Ref(fn_params)
                body["parameters_version"] = Ref(fn_params, "_xact_id")
            if j > 0 and j % 5 != 4:  # chains of base_exp_id, broken every fifth experiment
                body["base_exp_id"] = Ref(exp_keys[j - 1])
            k = self.add(f"{P}.exp{j}", "experiment", "POST", (V1 + "experiment",), body)
            exp_keys.append(k)
            plan_experiment_events(self.plan, k, rng)

    def _settings(self, c: ProjectCtx) -> None:
        """Project settings (PATCH only) and the creator."""
        P = c.P
        pid = c.pid
        i = c.i
        fn_pre = c.fn("pre")
        exp_keys = c.exp_keys
        settings: dict[str, Any] = {
            "comparison_key": "input",
            "baseline_experiment_id": Ref(exp_keys[0]),
            "spanFieldOrder": [
                {"object_type": "experiment", "column_id": "input", "position": "0|a", "layout": "full"},
                {
                    "object_type": "experiment",
                    "column_id": "output",
                    "position": "0|b",
                    "layout": "two_column",
                },
                {"object_type": "project_logs", "column_id": "metadata", "position": "0|c", "layout": None},
            ],
            "remote_eval_sources": [
                {"url": f"https://evals.example.com/{P}", "name": "Remote evals", "description": "dev box"},
                {"url": "http://localhost:8300"},
            ],
            "disable_realtime_queries": i % 2 == 1,
            "default_preprocessor": fn_ref(fn_pre, version=True),
        }
        self.add(
            f"{P}.settings",
            None,
            "PATCH",
            (V1 + "project/", pid),
            {"settings": settings, "user_id": self.user(), "description": f"Seeded project {i} (patched)"},
        )

    def _scores(self, c: ProjectCtx) -> None:
        """Project scores: every score type, online scorers referencing functions."""
        p = self.p
        rng = self.rng
        names = self.names
        P = c.P
        pid = c.pid
        fn_scorer = c.fn("scorer")
        score_bodies: list[dict[str, Any]] = [
            {"score_type": "slider", "description": "0..1 quality"},
            {
                "score_type": "categorical",
                "categories": [
                    {"name": "good 👍", "value": 1},
                    {"name": "ok", "value": 0.5},
                    {"name": "bad", "value": 0},
                ],
                "config": {"multi_select": True, "destination": "expected"},
            },
            {"score_type": "weighted", "categories": {"accuracy": 0.7, "style": 0.3}},
            {"score_type": "minimum", "categories": ["accuracy", "safety"]},
            {"score_type": "maximum", "categories": ["helpfulness", "brevity"]},
            {
                "score_type": "online",
                "config": {
                    "online": {
                        "sampling_rate": round(0.05 + rng.random() * 0.5, 2),
                        "scorers": [
                            fn_ref(fn_scorer, version=True),
                            fn_ref(f"{P}.fn.global"),
                            global_ref("Factuality", "scorer"),
                        ],
                        "btql_filter": "metadata.env = 'prod'",
                        "apply_to_root_span": True,
                        "apply_to_span_names": ["llm-call"],
                        "skip_logging": False,
                        "scope": {"type": "trace", "idle_seconds": 30},
                    }
                },
            },
            {"score_type": "free-form", "description": "Reviewer notes"},
        ]
        for j in range(p.extra_scores):
            score_bodies.append(rng.choice(score_bodies[:5]) | {"description": f"extra score {j}"})
        for j, sb in enumerate(score_bodies):
            body = {
                "project_id": pid,
                "name": names.name(("Accuracy", "Helpfulness", "Tone"), j, awkward=j == 3),
                **sb,
            }
            self.add(f"{P}.score{j}", "project_score", "POST", (V1 + "project_score",), body)

    def _views(self, c: ProjectCtx) -> None:
        """Views (with user_id) on the project, its experiments and datasets."""
        p = self.p
        rng = self.rng
        names = self.names
        P = c.P
        pid = c.pid
        ds_keys = c.ds_keys
        exp_keys = c.exp_keys
        view_specs: list[tuple[str, Any, str, dict[str, Any]]] = [
            (
                "project",
                pid,
                "experiments",
                {
                    "view_data": {"search": {"filter": ["tags includes 'good'"], "sort": ["created desc"]}},
                    "options": {"columnVisibility": {"metadata": False}, "columnOrder": ["name", "scores"]},
                },
            ),
            (
                "project",
                pid,
                "monitor",
                {
                    "options": {
                        "viewType": "monitor",
                        "options": {
                            "spanType": "range",
                            "rangeValue": "7d",
                            "projectId": pid,
                            "type": "project",
                            "groupBy": "metadata.model",
                        },
                    }
                },
            ),
            (
                "project",
                pid,
                "logs",
                {"view_data": {"search": {"filter": ["metadata.env = 'prod'"], "match": ["refund"]}}},
            ),
            (
                "experiment",
                Ref(exp_keys[0]),
                "experiment",
                {"options": {"rowHeight": "tall", "layout": "grid", "grouping": "metadata.model"}},
            ),
            ("dataset", Ref(ds_keys[0]), "dataset", {"view_data": {"search": {"tag": ["golden"]}}}),
        ]
        for j in range(p.extra_views):
            ek = exp_keys[(j + 1) % len(exp_keys)]
            dk = ds_keys[(j + 1) % len(ds_keys)]
            view_specs.append(
                rng.choice(
                    (
                        ("experiment", Ref(ek), "experiment", {"options": {"chartHeight": 240}}),
                        ("dataset", Ref(dk), "dataset", {"view_data": {"search": {"sort": ["id asc"]}}}),
                        ("project", pid, "datasets", {}),
                    )
                )
            )
        for j, (otype, oid, vtype, extra) in enumerate(view_specs):
            n = self.next_seq()
            body = {
                "object_type": otype,
                "object_id": oid,
                "view_type": vtype,
                "name": f"My {vtype} view {n}" if j != 2 else names.awkward(n),
                "user_id": self.user(),
                **extra,
            }
            self.add(f"{P}.view{j}", "view", "POST", (V1 + "view",), body)

    def _env_vars(self, c: ProjectCtx) -> None:
        """Env vars on the project and on functions."""
        p = self.p
        rng = self.rng
        P = c.P
        pid = c.pid
        fn_task = c.fn("task")
        fn_tool = c.fn("tool")
        for j in range(p.project_env_vars):
            body = {
                "object_type": "project",
                "object_id": pid,
                "name": env_name(
                    rng.choice(("database url", "retriever key", "vendor token")), self.next_seq()
                ),
                "value": f"proj-secret-{rng.getrandbits(64):016x}",
            }
            if j == 0:
                body["metadata"] = {"description": "used by tools", "rotated": "2026-01-01"}
            self.add(f"{P}.env{j}", "env_var", "POST", (V1 + "env_var",), body)
        for j, fk in enumerate((fn_tool, fn_task)):
            body = {
                "object_type": "function",
                "object_id": Ref(fk),
                "name": env_name("weather api key" if j == 0 else "normalizer mode", self.next_seq()),
                "value": f"fn-secret-{rng.getrandbits(64):016x}",
                "secret_type": "env_var",
            }
            self.add(f"{P}.fnenv{j}", "env_var", "POST", (V1 + "env_var",), body)

    def _snapshots(self, c: ProjectCtx) -> None:
        """Dataset snapshots."""
        p = self.p
        rng = self.rng
        names = self.names
        ds_keys = c.ds_keys
        for dk in ds_keys:
            for s in range(p.snapshots_per_dataset):
                n = self.next_seq()
                body = {
                    "dataset_id": Ref(dk),
                    "name": f"snapshot {n} (v{s + 1})" if s or n % 3 else names.awkward(n),
                    "description": rng.choice(("before relabel", "release candidate", "☃ frozen")),
                    "xact_id": dataset_xact(self.plan, dk, rng),
                }
                self.add(f"{dk}.snapshot{s}", "dataset_snapshot", "POST", (V1 + "dataset_snapshot",), body)

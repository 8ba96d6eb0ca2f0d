"""Per-project seed automations: one of every config kind."""

from __future__ import annotations

from typing import Any

from .plan_base import V1, PlannerBase, ProjectCtx, fn_ref, global_ref
from .plan_model import Ref


class AutomationPlanner(PlannerBase):
    def _automations(self, c: ProjectCtx) -> None:
        """Automations: every config kind (names are unique org-wide: the spec leaves scope open)."""
        rng = self.rng
        names = self.names
        P = c.P
        pid = c.pid
        i = c.i
        fn_facet = c.fn("facet")
        topic_maps = [c.fn("topic_map0"), c.fn("topic_map1")]
        exp_keys = c.exp_keys
        env_slugs = [Ref(k, "slug") for k in self.env_keys]
        automations: list[tuple[str, dict[str, Any]]] = [
            (
                "Alert on errors",
                {
                    "event_type": "logs",
                    "btql_filter": "error IS NOT NULL",
                    "interval_seconds": 300,
                    "action": {"type": "webhook", "url": "https://hooks.example.com/bt?x=1&y=2"},
                },
            ),
            (
                "Slack low scores",
                {
                    "event_type": "logs",
                    "btql_filter": "scores.Factuality < 0.5",
                    "interval_seconds": 3600,
                    "action": {
                        "type": "slack",
                        "workspace_id": "T0SEED",
                        "channel": "#evals-🔔",
                        "message_template": "{{count}} low scores",
                    },
                },
            ),
            (
                "Export traces to S3",
                {
                    "event_type": "btql_export",
                    "export_definition": {"type": "log_traces"},
                    "scope": {"type": "group", "group_by": "metadata.session_id", "idle_seconds": 600},
                    "export_path": f"s3://seed-exports/{P}/traces/",
                    "format": "parquet",
                    "interval_seconds": 86400,
                    "credentials": {
                        "type": "aws_iam",
                        "role_arn": "arn:aws:iam::123456789012:role/bt-export",
                        "external_id": f"ext-{rng.getrandbits(32):08x}",
                    },
                    "batch_size": 1000,
                },
            ),
            (
                "Export query to GCS",
                {
                    "event_type": "btql_export",
                    "export_definition": {
                        "type": "btql_query",
                        "btql_query": "select: * | filter: tags includes 'pii'",
                    },
                    "scope": {"type": "span"},
                    "export_path": f"gs://seed-exports/{P}/query/",
                    "format": "jsonl",
                    "interval_seconds": 3600,
                    "credentials": {
                        "type": "gcp_service_account",
                        "service_account_email": "exporter@seed.iam.gserviceaccount.com",
                    },
                },
            ),
            (
                "Export spans",
                {
                    "event_type": "btql_export",
                    "export_definition": {"type": "log_spans"},
                    "export_path": f"s3://seed-exports/{P}/spans/",
                    "format": "jsonl",
                    "interval_seconds": 600,
                    "credentials": {
                        "type": "aws_iam",
                        "role_arn": "arn:aws:iam::123456789012:role/bt-export",
                        "external_id": "ext-spans",
                    },
                },
            ),
            (
                "Log retention",
                {"event_type": "retention", "object_type": "project_logs", "retention_days": 30},
            ),
            (
                "Experiment retention",
                {"event_type": "retention", "object_type": "experiment", "retention_days": 365},
            ),
            ("Dataset retention", {"event_type": "retention", "object_type": "dataset", "retention_days": 0}),
            (
                "Prompt deployed",
                {
                    "event_type": "environment_update",
                    "environment_filter": env_slugs[:2],
                    "action": {"type": "webhook", "url": "https://hooks.example.com/deploy"},
                },
            ),
            (
                "Topics on experiment",
                {
                    "event_type": "topic",
                    "sampling_rate": 0.25,
                    "facet_functions": [fn_ref(fn_facet, version=True), global_ref("Sentiment", "facet")],
                    "topic_map_functions": [
                        {"function": fn_ref(topic_maps[0])},
                        {
                            "function": fn_ref(topic_maps[1], version=True),
                            "btql_filter": "metadata.lang = 'en'",
                        },
                    ],
                    "scope": {"type": "trace", "idle_seconds": 120},
                    "data_scope": {"type": "experiment", "experiment_id": Ref(exp_keys[0])},
                    "btql_filter": "is_root",
                    "rerun_seconds": 3600,
                    "relabel_overlap_seconds": 120,
                    "backfill_time_range": {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"},
                },
            ),
            (
                "Topics on logs",
                {
                    "event_type": "topic",
                    "sampling_rate": 1,
                    "facet_functions": [fn_ref(fn_facet)],
                    "topic_map_functions": [{"function": fn_ref(topic_maps[0])}],
                    "data_scope": {"type": "project_logs"},
                    "backfill_time_range": "7d",
                },
            ),
        ]
        if i % 2 == 1:  # vary the kind mix a little per project
            automations.append(
                (
                    "Environment change (all)",
                    {
                        "event_type": "environment_update",
                        "action": {"type": "slack", "workspace_id": "T0SEED", "channel": "#deploys"},
                    },
                )
            )
        for j, (title, config) in enumerate(automations):
            n = self.next_seq()
            body = {
                "project_id": pid,
                "name": f"{title} {n}" if j != 1 else names.awkward(n),
                "description": f"seeded automation ({config['event_type']})",
                "config": config,
            }
            self.add(f"{P}.automation{j}", "project_automation", "POST", (V1 + "project_automation",), body)

"""A secrets-file name that matches no AI secret or env var in the source is warned about
(a misspelt name would otherwise leave the secret without a value, silently)."""

from __future__ import annotations

import structlog

from braintrust_migrate.engine.secrets_file import Secrets
from tests.integration.engine.harness import migrate, seed


async def test_unknown_secret_names_are_warned(sandbox_server, sandbox_orgs, tmp_path):
    url, src, dst = sandbox_server.url, sandbox_orgs.source, sandbox_orgs.dest
    await seed(url, src, "small")
    secrets = Secrets(ai_secrets={"OPENAI_API_KEY": "sk-value-1", "OPENAI_API_KEI": "sk-value-2"})
    with structlog.testing.capture_logs() as logs:
        await migrate(url, src, dst, tmp_path, secrets=secrets, dry_run=True)
    warnings = [entry["event"] for entry in logs if entry["log_level"] == "warning"]
    assert any("ai_secrets.OPENAI_API_KEI" in w for w in warnings), warnings
    assert not any("ai_secrets.OPENAI_API_KEY" in w for w in warnings), warnings

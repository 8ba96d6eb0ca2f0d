"""Against the real Braintrust API: opt-in, skipped unless live keys are set."""

from __future__ import annotations

import os

import pytest

from braintrust_migrate.client import ApiClient
from braintrust_migrate.validate import run_validation

SOURCE_KEY = os.environ.get("BT_LIVE_SOURCE_API_KEY")
DEST_KEY = os.environ.get("BT_LIVE_DEST_API_KEY")
URL = os.environ.get("BT_LIVE_URL", "https://api.braintrust.dev")

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not (SOURCE_KEY and DEST_KEY), reason="set BT_LIVE_SOURCE_API_KEY and BT_LIVE_DEST_API_KEY"
    ),
]


async def test_validate_live_orgs() -> None:
    assert SOURCE_KEY and DEST_KEY
    async with (
        ApiClient(side="source", base_url=URL, api_key=SOURCE_KEY) as source,
        ApiClient(side="dest", base_url=URL, api_key=DEST_KEY) as dest,
    ):
        result = await run_validation(
            source,
            dest,
            source_org=os.environ.get("BT_LIVE_SOURCE_ORG_NAME"),
            dest_org=os.environ.get("BT_LIVE_DEST_ORG_NAME"),
        )
    failed = [check for check in result.checks if check.status == "fail"]
    assert not failed, failed
    assert result.orgs["source"].org_id and result.orgs["dest"].org_id

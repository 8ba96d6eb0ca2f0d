"""Shared test fixtures: the sandbox server plugin gives tests real HTTP orgs."""

pytest_plugins = ["braintrust_migrate.sandbox.testing"]


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    # `slow` tests (long chaos campaigns) run only when asked for: CI keeps its time budget.
    if config.getoption("--runslow"):
        return
    import pytest

    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)

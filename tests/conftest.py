"""Shared test fixtures: the sandbox server plugin gives tests real HTTP orgs."""

pytest_plugins = ["braintrust_migrate.sandbox.testing"]

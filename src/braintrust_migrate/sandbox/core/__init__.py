"""Foundations every room of the sandbox shares: the SQLite store, the OpenAPI spec, the reference
table, the request context and :class:`~braintrust_migrate.sandbox.core.state.SandboxState`.

Nothing here imports from the other sub-packages.
"""

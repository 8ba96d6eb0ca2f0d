"""The seed generator: a plan of objects and events for a profile, written over plain HTTP.

Entry points: :func:`braintrust_migrate.sandbox.seed.run.seed_org` and the ``sandbox seed`` command
(:mod:`braintrust_migrate.sandbox.seed.cli`); profiles live in :mod:`braintrust_migrate.sandbox.seed.plan`.
"""

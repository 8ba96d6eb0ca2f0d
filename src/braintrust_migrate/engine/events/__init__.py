"""Streaming event data: project logs, experiment rows and dataset rows."""

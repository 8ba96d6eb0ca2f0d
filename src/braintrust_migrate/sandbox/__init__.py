"""A Braintrust-compatible API server on loopback, for tests, demos and rehearsals."""

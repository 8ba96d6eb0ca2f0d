"""Fast, table-driven unit tests of the pure core: no server, no network, no sleeps."""

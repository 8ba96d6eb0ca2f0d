"""An independent oracle for migrations: reads both orgs over plain HTTP/BTQL, matches
objects by identity with its own id map, and compares objects, ACLs, rows, traces and
comments. It shares no code with the tool's engine, verifier or client."""

from tests.oracle.compare import EXPECTED_GAPS, OracleResult, compare_orgs, fingerprint

__all__ = ["EXPECTED_GAPS", "OracleResult", "compare_orgs", "fingerprint"]

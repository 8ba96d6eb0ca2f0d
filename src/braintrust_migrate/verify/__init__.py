"""Proving a migration: source and destination compared object by object and row by row."""

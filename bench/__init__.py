"""Benchmarks for devhost, with DBOS and Microsoft's durabletask as peers: ``python -m bench``."""

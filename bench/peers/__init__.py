"""Peers measured on the same machine in the same run: each runs in its own subprocess and prints JSON."""

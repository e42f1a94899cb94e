"""Benchmarks: run with ``python -m bench NAME``; they print a table and save JSON, never assert."""

"""Benchmarks of the suite: `make bench`, `make bench-study`."""

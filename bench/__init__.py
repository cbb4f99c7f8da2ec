"""Benchmarks for dagu-ci against the fake Dagu server (issue 5). Run: make bench."""

"""Benchmarks (see docs/BENCHMARKS.md). Not part of the site; nothing here is imported by the app."""

"""Benchmarks of the hotline service against its peers (see docs/benchmarks-*.md)."""

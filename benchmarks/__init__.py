"""Benchmarks: `make bench` (python -m benchmarks). Numbers are ratios against a baseline run in the same
process, so they compare across machines; raw seconds are printed beside them."""

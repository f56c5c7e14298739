"""dwml's benchmark harness: `python -m benchmarks --help` (see run.py and docs/benchmarks.md)."""

"""Benchmarks of watchkeeper: `python -m bench.cycle`, `bench.economy`, `bench.footprint`,
`bench.uptime`, `bench.scale`, `bench.sweep`, `bench.rca`.

They measure ratios within one run, on loopback only, and stop by themselves; they never change
what they measure (no edits to `daemon/` or `jobs/`). See bench/README.md.
"""

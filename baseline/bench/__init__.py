"""``baseline bench``: end-to-end throughput against the model's own ceiling, a naive loop, and memory.

- :mod:`baseline.bench.city` builds a rendered city of any area (periodic
  copies of a rendered scene, its map context copied alongside);
- :mod:`baseline.bench.measure` times the pipeline end to end (peak memory of
  its whole process tree sampled), the detectors' networks alone on random
  tensors, and a naive per-chip loop;
- :mod:`baseline.bench.report` prints the table and writes the JSON.
"""

from baseline.bench.city import BenchCity, build_bench_city
from baseline.bench.measure import BenchResult, run_bench

__all__ = ["BenchCity", "BenchResult", "build_bench_city", "run_bench"]

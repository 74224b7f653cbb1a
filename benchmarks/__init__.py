"""authguard benchmarks: ``python -m benchmarks`` (see docs/performance.md).

Not part of the test suite: nothing here asserts on time.
"""

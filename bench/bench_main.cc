// The one main() of ecfs_bench. Benchmark files (bench/*_bench.cc) only
// register benchmarks; they must not define BENCHMARK_MAIN themselves.
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();

// Loops shared by a team of OpenMP threads, or run on the calling thread when one thread is asked for.
#pragma once

#include <cstdint>

namespace rankseg::cpu {

// With threads == 1 no parallel region is entered: even a one-thread region allocates a team and ends with
// a futex wake-up (about 1 us), and a small call enters several. Callers whose threads keep state of their
// own (scratch buffers) test serial(threads) the same way.
inline bool serial(int threads) { return threads < 2; }

// body(i) for i in [0, n), split into equal contiguous ranges.
template <class F>
void parallel_for_static(int64_t n, int threads, F&& body) {
  if (serial(threads)) {
    for (int64_t i = 0; i < n; ++i) body(i);
    return;
  }
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < n; ++i) body(i);
}

// body(i) for i in [0, n), handed out one at a time (tasks of uneven cost).
template <class F>
void parallel_for_dynamic(int64_t n, int threads, F&& body) {
  if (serial(threads)) {
    for (int64_t i = 0; i < n; ++i) body(i);
    return;
  }
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t i = 0; i < n; ++i) body(i);
}

// Runs body(j) for every chunk j of a class (pixels.h), on the whole team when `parallel`. Callers merge
// per-chunk results in order.
template <class F>
void for_each_chunk(int64_t chunks, bool parallel, int threads, F&& body) {
  parallel_for_static(chunks, parallel ? threads : 1, body);
}

}  // namespace rankseg::cpu

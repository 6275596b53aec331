// Recording which branches the CPU's RMA solver took into the SolveTrace (core.h) a caller asked for.
#pragma once

#include <algorithm>
#include <cstdint>

#include "../core.h"

namespace rankseg::cpu {

// Adds one to a counter of the solve trace, if one was asked for; callers may run in parallel.
inline void count_branch(SolveTrace* trace, int64_t SolveTrace::* counter) {
  if (!trace) return;
  int64_t& c = trace->*counter;
#pragma omp atomic
  ++c;
}

// Keeps the most threshold-search steps one class took.
inline void record_steps(SolveTrace* trace, int64_t steps) {
  if (!trace) return;
#pragma omp critical(rankseg_trace)
  trace->max_steps = std::max(trace->max_steps, steps);
}

}  // namespace rankseg::cpu

// The error every CPU solver raises for a class holding NaN, an infinity or a value outside [0, 1]: one
// definition, so that the RMA and the sorting solvers word it alike.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace rankseg::cpu {

// Callers raise it after their parallel loops (nothing may throw inside one), for the first such class in
// batch order; `image` counts from the first image of the caller's batch.
[[noreturn]] inline void throw_invalid_values(int64_t image, int64_t cls) {
  throw std::invalid_argument("probs must contain only finite values in [0, 1]; image " + std::to_string(image) +
                              ", class " + std::to_string(cls) + " has NaN, infinity or a value outside [0, 1]");
}

}  // namespace rankseg::cpu

// The scratch memory of the CPU's per-class solver: one per thread, reused across the classes it solves.
#pragma once

#include <cstdint>
#include <memory>
#include <new>
#include <vector>

#include "histogram.h"

namespace rankseg::cpu {

// The histograms of the Dice s > 0 routes (the class's, and one chunk's) and the values they sort
// (histogram_search.h), and the storage of the threshold search's band (threshold_search.h).
template <class V>
struct Scratch {
  Histogram total, part;
  std::vector<uint8_t> candidate;
  std::vector<V> values;

  // Room for n band values, grown on demand and never zero-filled: pages nobody writes cost nothing. Null
  // when the memory is not there (the search then reads every pixel instead): nothing may throw in a
  // parallel region.
  V* band(int64_t n) {
    if (n > band_room) {
      band_values.reset(new (std::nothrow) V[size_t(n)]);
      band_room = band_values ? n : 0;
    }
    return band_values.get();
  }

 private:
  std::unique_ptr<V[]> band_values;
  int64_t band_room = 0;
};

}  // namespace rankseg::cpu

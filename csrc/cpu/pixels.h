// A strided run of one class's probabilities, split into fixed chunks.
#pragma once

#include <algorithm>
#include <cstdint>

#include "../exact_sum.h"
#include "../values.h"

namespace rankseg::cpu {

// Every sum is formed per chunk of kChunkPixels (exact_sum.h) and chunks are merged in order, so results never
// depend on the thread count.
template <class S>
struct Pixels {
  const S* data;
  int64_t stride;
  int64_t count;

  value_t<S> operator[](int64_t i) const { return to_value(data[i * stride]); }
  int64_t chunks() const { return (count + kChunkPixels - 1) / kChunkPixels; }
  Pixels chunk(int64_t j) const {
    const int64_t begin = j * kChunkPixels;
    return {data + begin * stride, stride, std::min(kChunkPixels, count - begin)};
  }
};

}  // namespace rankseg::cpu

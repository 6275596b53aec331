// Which classes win the argmax over classes (the lowest index on ties, as torch.argmax) at some pixel of each
// image: the classes pruning="argmax" keeps.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../core.h"
#include "../values.h"
#include "parallel.h"

namespace rankseg::cpu {

// Flags (batch x classes): 1 where the class is the argmax of at least one pixel of that image.
template <class S>
std::vector<uint8_t> argmax_winners(const ProbsView& v, int threads) {
  using V = value_t<S>;
  constexpr int64_t kArgmaxTilePixels = 1024;  // a tile's running maxima stay in L1 while the classes stream past
  const int64_t tiles = (v.pixels + kArgmaxTilePixels - 1) / kArgmaxTilePixels;
  std::vector<uint8_t> wins(size_t(v.batch * v.classes), 0);
  // Flags the winners of tile t of image b in `mine`; best and index hold kArgmaxTilePixels values.
  auto scan_tile = [&](int64_t b, int64_t t, std::vector<uint8_t>& mine, V* best, int32_t* index) {
    const S* image = static_cast<const S*>(v.data) + b * v.stride_b;
    const int64_t begin = t * kArgmaxTilePixels, n = std::min(kArgmaxTilePixels, v.pixels - begin);
    for (int64_t i = 0; i < n; ++i) {
      best[i] = to_value(image[(begin + i) * v.stride_n]);
      index[i] = 0;
    }
    for (int64_t c = 1; c < v.classes; ++c) {
      const S* p = image + c * v.stride_c + begin * v.stride_n;
      for (int64_t i = 0; i < n; ++i) {
        const V x = to_value(p[i * v.stride_n]);
        const bool above = x > best[i];
        best[i] = above ? x : best[i];
        index[i] = above ? int32_t(c) : index[i];
      }
    }
    for (int64_t i = 0; i < n; ++i) mine[size_t(b * v.classes + index[i])] = 1;
  };
  if (serial(threads)) {
    V best[kArgmaxTilePixels];
    int32_t index[kArgmaxTilePixels];
    for (int64_t b = 0; b < v.batch; ++b)
      for (int64_t t = 0; t < tiles; ++t) scan_tile(b, t, wins, best, index);
    return wins;
  }
#pragma omp parallel num_threads(threads)
  {
    std::vector<uint8_t> mine(wins.size(), 0);
    V best[kArgmaxTilePixels];
    int32_t index[kArgmaxTilePixels];
#pragma omp for schedule(static) collapse(2)
    for (int64_t b = 0; b < v.batch; ++b) {
      for (int64_t t = 0; t < tiles; ++t) scan_tile(b, t, mine, best, index);
    }
#pragma omp critical
    for (size_t k = 0; k < wins.size(); ++k) wins[k] |= mine[k];
  }
  return wins;
}

}  // namespace rankseg::cpu

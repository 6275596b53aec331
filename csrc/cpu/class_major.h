// Copying one image to class-major order, so that each class's pixels are contiguous.
#pragma once

#include <algorithm>
#include <cstdint>

#include "parallel.h"

namespace rankseg::cpu {

// dst[c * pixels + i] = src[c * stride_c + i * stride_n]. A tile of pixels holds every class at once, so
// each source cache line is read once; tiles are shared among the threads. (Register transposes of
// channels_last blocks were measured no faster: the copy is bound by memory traffic.)
template <class S>
void copy_class_major(const S* src, int64_t classes, int64_t pixels, int64_t stride_c, int64_t stride_n, S* dst,
                      int threads) {
  constexpr int64_t kCopyTilePixels = 64;
  const int64_t tiles = (pixels + kCopyTilePixels - 1) / kCopyTilePixels;
  parallel_for_static(tiles, threads, [&](int64_t t) {
    const int64_t begin = t * kCopyTilePixels, count = std::min(kCopyTilePixels, pixels - begin);
    for (int64_t c = 0; c < classes; ++c) {
      const S* from = src + c * stride_c + begin * stride_n;
      S* to = dst + c * pixels + begin;
      for (int64_t i = 0; i < count; ++i) to[i] = from[i * stride_n];
    }
  });
}

}  // namespace rankseg::cpu

// The multiclass merge (docs/algorithm.md, "Multiclass merge"), turning per-class masks into one label per
// pixel: a pixel selected by exactly one class takes it; the others go to the eligible class with the largest
// incremental score (PixelGain, scores.h).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "../core.h"
#include "../exact_sum.h"
#include "../scores.h"
#include "../search.h"
#include "../values.h"
#include "parallel.h"

namespace rankseg::cpu {

// Each image is split into tasks of this many pixels, shared among the threads. Fixed, so the per-class sums
// (formed per task, merged in order) do not depend on the thread count.
constexpr int64_t kTaskPixels = int64_t(1) << 16;
// A task's pixels are resolved a tile of this many at a time: the tile's counters stay in L1 while every
// class streams past them.
constexpr int64_t kMergeTilePixels = 256;

constexpr int64_t kUnselected = -1;  // placeholders between the two passes, always overwritten
constexpr int64_t kContested = -2;

// One image (classes x pixels) of a batch.
template <class S>
struct Image {
  const S* data;
  int64_t stride_c, stride_n;
  int64_t classes, pixels;
  value_t<S> at(int64_t c, int64_t i) const { return to_value(data[c * stride_c + i * stride_n]); }
};

// Pass 1 over one task's pixels: labels pixels selected by exactly one class, marks the rest, and sums what
// each selecting class holds alone (`mass`, `count` are indexed by position in `selecting`).
template <class S>
void label_safe_pixels(const Image<S>& img, const ClassCut* cuts, const std::vector<int64_t>& selecting,
                       const int64_t* slot, int64_t begin, int64_t end, ExactSum* mass, int64_t* count, int64_t* out) {
  using V = value_t<S>;
  uint8_t hits[kMergeTilePixels];
  int32_t owner[kMergeTilePixels];  // 32 bits, like the values: the loop below vectorises
  auto count_hits = [&](const S* p, int64_t stride, int64_t n, V threshold, int32_t c) {
    for (int64_t i = 0; i < n; ++i) {
      const bool hit = to_value(p[i * stride]) >= threshold;
      hits[i] = std::min<uint8_t>(uint8_t(hits[i] + hit), uint8_t(2));
      owner[i] = hit ? c : owner[i];
    }
  };
  for (int64_t t0 = begin; t0 < end; t0 += kMergeTilePixels) {
    const int64_t n = std::min(kMergeTilePixels, end - t0);
    std::fill(hits, hits + n, uint8_t(0));
    std::fill(owner, owner + n, int32_t(0));
    for (const int64_t c : selecting) {
      const V threshold = V(cuts[c].threshold);
      const S* p = img.data + c * img.stride_c + t0 * img.stride_n;
      if (img.stride_n == 1) {  // the usual layout gets its own copy of the loop, with plain vector loads
        count_hits(p, 1, n, threshold, int32_t(c));
      } else {
        count_hits(p, img.stride_n, n, threshold, int32_t(c));
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      if (hits[i] == 1) {
        const int64_t c = owner[i];
        mass[slot[c]].add(fixed_point(double(img.at(c, t0 + i))));
        count[slot[c]] += 1;
        out[t0 + i] = c;
      } else {
        out[t0 + i] = hits[i] == 0 ? kUnselected : kContested;
      }
    }
  }
}

// Pass 2 over one task's pixels: every marked pixel goes to the eligible class of largest gain, the lowest
// index on ties. Contested pixels choose among the classes selecting them; unselected ones among
// `candidates`, unless the policy leaves them void.
template <class S>
void resolve_marked_pixels(const Image<S>& img, const ClassCut* cuts, const std::vector<int64_t>& candidates,
                           const std::vector<PixelGain>& gains, Unassigned policy, int64_t void_index, int64_t begin,
                           int64_t end, int64_t* out) {
  using V = value_t<S>;
  int64_t index[kMergeTilePixels];
  bool contested[kMergeTilePixels];
  double best[kMergeTilePixels];
  for (int64_t t0 = begin; t0 < end; t0 += kMergeTilePixels) {
    const int64_t n = std::min(kMergeTilePixels, end - t0);
    int64_t marked = 0;
    for (int64_t i = t0; i < t0 + n; ++i) {
      if (out[i] >= 0) continue;
      if (out[i] == kUnselected && policy == Unassigned::void_label) {
        out[i] = void_index;
        continue;
      }
      index[marked] = i;
      contested[marked] = out[i] == kContested;
      best[marked] = -std::numeric_limits<double>::infinity();
      ++marked;
    }
    for (size_t k = 0; k < candidates.size() && marked > 0; ++k) {
      const int64_t c = candidates[k];
      const V threshold = V(cuts[c].threshold);
      for (int64_t j = 0; j < marked; ++j) {
        const V v = img.at(c, index[j]);
        if (contested[j] && !(v >= threshold)) continue;
        const double gain = gains[k](double(v));
        if (gain > best[j]) {
          best[j] = gain;
          out[index[j]] = c;
        }
      }
    }
  }
}

// Labels a whole batch. `cuts` holds (batch x classes) solved classes; `out` is (batch, pixels).
template <class S>
void merge_batch(const S* data, int64_t batch, int64_t stride_b, const Image<S>& shape, const ClassCut* cuts,
                 const RmaOptions& options, Unassigned policy, int64_t void_index, int64_t* out) {
  const int64_t classes = shape.classes, pixels = shape.pixels;
  const int64_t tasks_per_image = (pixels + kTaskPixels - 1) / kTaskPixels;
  const int64_t tasks = batch * tasks_per_image;

  // Per image: the classes that select pixels, and the classes an unselected pixel may go to (the active
  // ones, or every class when all were pruned; every class when the merge labels by probability).
  const bool by_probability = options.merge == Merge::probability;
  std::vector<std::vector<int64_t>> selecting(static_cast<size_t>(batch)), candidates(static_cast<size_t>(batch));
  std::vector<int64_t> slot(size_t(batch * classes), -1);
  size_t width = 0;
  for (int64_t b = 0; b < batch; ++b) {
    const ClassCut* cut = cuts + b * classes;
    for (int64_t c = 0; c < classes; ++c) {
      if (cut[c].volume > 0) {
        slot[size_t(b * classes + c)] = int64_t(selecting[size_t(b)].size());
        selecting[size_t(b)].push_back(c);
      }
      if (cut[c].active || by_probability) candidates[size_t(b)].push_back(c);
    }
    if (candidates[size_t(b)].empty())
      for (int64_t c = 0; c < classes; ++c) candidates[size_t(b)].push_back(c);
    width = std::max(width, selecting[size_t(b)].size());
  }

  auto image = [&](int64_t b) {
    return Image<S>{data + b * stride_b, shape.stride_c, shape.stride_n, classes, pixels};
  };

  std::vector<ExactSum> mass(size_t(tasks) * width);
  std::vector<int64_t> count(size_t(tasks) * width, 0);
  parallel_for_dynamic(tasks, options.num_threads, [&](int64_t task) {
    const int64_t b = task / tasks_per_image, j = task % tasks_per_image;
    label_safe_pixels(image(b), cuts + b * classes, selecting[size_t(b)], slot.data() + b * classes, j * kTaskPixels,
                      std::min(pixels, (j + 1) * kTaskPixels), mass.data() + size_t(task) * width,
                      count.data() + size_t(task) * width, out + b * pixels);
  });

  // Gains from the per-class totals, tasks summed in order.
  std::vector<std::vector<PixelGain>> gains(static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b) {
    const ClassCut* cut = cuts + b * classes;
    for (const int64_t c : candidates[size_t(b)]) {
      if (by_probability) {
        gains[size_t(b)].push_back(PixelGain::probability());
        continue;
      }
      ExactSum m;
      int64_t n = 0;
      const int64_t s = slot[size_t(b * classes + c)];
      if (s >= 0) {
        for (int64_t j = 0; j < tasks_per_image; ++j) {
          m.add(mass[size_t(b * tasks_per_image + j) * width + size_t(s)]);
          n += count[size_t(b * tasks_per_image + j) * width + size_t(s)];
        }
      }
      gains[size_t(b)].emplace_back(options.metric, options.smooth, cut[c].mu, double(n), m.value());
    }
  }

  parallel_for_dynamic(tasks, options.num_threads, [&](int64_t task) {
    const int64_t b = task / tasks_per_image, j = task % tasks_per_image;
    resolve_marked_pixels(image(b), cuts + b * classes, candidates[size_t(b)], gains[size_t(b)], policy, void_index,
                          j * kTaskPixels, std::min(pixels, (j + 1) * kTaskPixels), out + b * pixels);
  });
}

}  // namespace rankseg::cpu

// CPU entry points of the RMA solver (checked by dispatch.cpp): dispatches on dtype, schedules threads.
#include <algorithm>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../backends.h"
#include "argmax_winners.h"
#include "class_cut.h"
#include "class_major.h"
#include "invalid_values.h"
#include "merge.h"
#include "parallel.h"
#include "pixels.h"
#include "scratch.h"

namespace rankseg::cpu {

namespace {

// The RMA cut of every (image, class). Classes are spread over threads; when there are fewer classes than
// threads and they are large, each class's chunks are spread instead. Both orders give identical results, and
// so does one thread, which enters no parallel region (parallel.h).
// When `mask` is given, each class's multilabel mask is written while its data is still in cache. Errors
// count images from `first_image`.
template <class S>
std::vector<ClassCut> rma_cuts(const ProbsView& v, const RmaOptions& o, bool* mask, int64_t first_image) {
  using V = value_t<S>;
  const std::vector<uint8_t> winners =
      o.pruning == Pruning::argmax ? argmax_winners<S>(v, o.num_threads) : std::vector<uint8_t>{};
  auto kept = [&](int64_t s) { return winners.empty() ? -1 : int(winners[size_t(s)]); };
  const S* data = static_cast<const S*>(v.data);
  const int64_t pairs = v.batch * v.classes;  // (image, class) pair s = b * classes + c
  std::vector<ClassCut> cuts(static_cast<size_t>(pairs));
  auto pixels = [&](int64_t s) {
    return Pixels<S>{data + (s / v.classes) * v.stride_b + (s % v.classes) * v.stride_c, v.stride_n, v.pixels};
  };
  auto mask_of = [&](int64_t s) { return mask ? mask + s * v.pixels : nullptr; };

  const bool per_class = pairs >= o.num_threads || v.pixels <= kChunkPixels;
  if (per_class && !serial(o.num_threads)) {
#pragma omp parallel num_threads(o.num_threads)
    {
      Scratch<V> ws;
#pragma omp for schedule(dynamic, 1)
      for (int64_t s = 0; s < pairs; ++s) cuts[size_t(s)] = solve_class(pixels(s), o, ws, false, mask_of(s), kept(s));
    }
  } else {
    Scratch<V> ws;
    for (int64_t s = 0; s < pairs; ++s)
      cuts[size_t(s)] = solve_class(pixels(s), o, ws, !per_class, mask_of(s), kept(s));
  }

  for (int64_t s = 0; s < pairs; ++s) {
    if (cuts[size_t(s)].invalid) throw_invalid_values(first_image + s / v.classes, s % v.classes);
  }
  return cuts;
}

// Runs solve(view, first_image) on the whole batch or, when a class's pixels are not contiguous
// (channels_last, slices), on each image in turn after copying it to class-major order: read at a stride,
// every pass over a class would pull in the cache lines of all the other classes too.
template <class S, class F>
void solve_contiguous(const ProbsView& v, int threads, F&& solve) {
  if (v.stride_n <= 1 || v.batch == 0) return solve(v, 0);  // contiguous, or one value broadcast
  std::unique_ptr<S[]> image(new S[size_t(v.classes * v.pixels)]);
  const ProbsView one{image.get(), v.dtype, 1, v.classes, v.pixels, v.classes * v.pixels, v.pixels, 1};
  for (int64_t b = 0; b < v.batch; ++b) {
    copy_class_major(static_cast<const S*>(v.data) + b * v.stride_b, v.classes, v.pixels, v.stride_c, v.stride_n,
                     image.get(), threads);
    solve(one, b);
  }
}

}  // namespace

void rma_multilabel(const ProbsView& probs, const RmaOptions& options, bool* out) {
  with_storage_type(probs.dtype, [&](auto tag) {
    using S = decltype(tag);
    solve_contiguous<S>(probs, options.num_threads, [&](const ProbsView& v, int64_t first_image) {
      rma_cuts<S>(v, options, out + first_image * v.classes * v.pixels, first_image);
    });
  });
}

void rma_multiclass(const ProbsView& probs, const RmaOptions& options, Unassigned policy, int64_t void_index,
                    int64_t* out) {
  with_storage_type(probs.dtype, [&](auto tag) {
    using S = decltype(tag);
    solve_contiguous<S>(probs, options.num_threads, [&](const ProbsView& v, int64_t first_image) {
      const std::vector<ClassCut> cuts = rma_cuts<S>(v, options, nullptr, first_image);
      const Image<S> shape{nullptr, v.stride_c, v.stride_n, v.classes, v.pixels};
      merge_batch(static_cast<const S*>(v.data), v.batch, v.stride_b, shape, cuts.data(), options, policy, void_index,
                  out + first_image * v.pixels);
    });
  });
}

}  // namespace rankseg::cpu

// CPU entry points of the RMA solver: checks what they are handed, dispatches on dtype, schedules threads.
#include "../rma.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "class_cut.h"
#include "class_major.h"
#include "multiclass_merge.h"

namespace rankseg {

void check_probs_view(const ProbsView& v) {
  if (v.batch < 0 || v.classes < 1 || v.pixels < 1)
    throw std::invalid_argument("probs must have shape (B >= 0, C >= 1, N >= 1), got (" + std::to_string(v.batch) +
                                ", " + std::to_string(v.classes) + ", " + std::to_string(v.pixels) + ")");
  if (v.stride_b < 0 || v.stride_c < 0 || v.stride_n < 0)
    throw std::invalid_argument("probs strides must be non-negative");
  if (v.batch > 0 && v.data == nullptr) throw std::invalid_argument("probs data pointer is null");
}

namespace {

using cpu::ClassCut;
using cpu::Pixels;

void check_options(const RmaOptions& o) {
  if (!(o.smooth >= 0.0 && o.smooth < std::numeric_limits<double>::infinity()))
    throw std::invalid_argument("smooth must be finite and >= 0, got " + std::to_string(o.smooth));
  if (!(o.pruning_prob >= 0.0 && o.pruning_prob <= 1.0))
    throw std::invalid_argument("pruning_prob must lie in [0, 1], got " + std::to_string(o.pruning_prob));
  if (o.metric != Metric::dice && o.metric != Metric::iou) throw std::invalid_argument("unknown metric code");
  if (o.num_threads < 1) throw std::invalid_argument("num_threads must be >= 1");
}

// Solves every (image, class). Classes are spread over threads; when there are fewer classes than threads
// and they are large, each class's chunks are spread instead. Both orders give identical results.
// When `mask` is given, each class's multilabel mask is written while its data is still in cache. Errors
// count images from `first_image`.
template <class S>
std::vector<ClassCut> solve_all(const ProbsView& v, const RmaOptions& o, bool* mask, int64_t first_image) {
  using V = cpu::value_t<S>;
  const S* data = static_cast<const S*>(v.data);
  const int64_t slabs = v.batch * v.classes;
  std::vector<ClassCut> cuts(static_cast<size_t>(slabs));
  auto pixels = [&](int64_t s) {
    return Pixels<S>{data + (s / v.classes) * v.stride_b + (s % v.classes) * v.stride_c, v.stride_n, v.pixels};
  };
  auto mask_of = [&](int64_t s) { return mask ? mask + s * v.pixels : nullptr; };

  const bool per_class = slabs >= o.num_threads || v.pixels <= cpu::kChunk;
  if (per_class) {
#pragma omp parallel num_threads(o.num_threads)
    {
      cpu::Workspace<V> ws;
#pragma omp for schedule(dynamic, 1)
      for (int64_t s = 0; s < slabs; ++s) cuts[size_t(s)] = cpu::solve_class(pixels(s), o, ws, false, mask_of(s));
    }
  } else {
    cpu::Workspace<V> ws;
    for (int64_t s = 0; s < slabs; ++s) cuts[size_t(s)] = cpu::solve_class(pixels(s), o, ws, true, mask_of(s));
  }

  for (int64_t s = 0; s < slabs; ++s) {
    if (cuts[size_t(s)].invalid)
      throw std::invalid_argument("probs must contain only finite values in [0, 1]; image " +
                                  std::to_string(first_image + s / v.classes) + ", class " +
                                  std::to_string(s % v.classes) +
                                  " has NaN, infinity or a value outside [0, 1]");
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
    cpu::copy_class_major(static_cast<const S*>(v.data) + b * v.stride_b, v.classes, v.pixels, v.stride_c,
                          v.stride_n, image.get(), threads);
    solve(one, b);
  }
}

template <class F>
void dispatch(DType dtype, F&& f) {
  switch (dtype) {
    case DType::float32: return f(float{});
    case DType::float64: return f(double{});
    case DType::float16: return f(cpu::Half{});
    case DType::bfloat16: return f(cpu::BFloat16{});
    default: throw std::invalid_argument("probs must be float16, bfloat16, float32 or float64");
  }
}

}  // namespace

void rma_multilabel(const ProbsView& probs, const RmaOptions& options, bool* out) {
  check_probs_view(probs);
  check_options(options);
  if (probs.batch == 0) return;
  if (out == nullptr) throw std::invalid_argument("out data pointer is null");
  dispatch(probs.dtype, [&](auto tag) {
    using S = decltype(tag);
    solve_contiguous<S>(probs, options.num_threads, [&](const ProbsView& v, int64_t first_image) {
      solve_all<S>(v, options, out + first_image * v.classes * v.pixels, first_image);
    });
  });
}

void rma_multiclass(const ProbsView& probs, const RmaOptions& options, Unassigned policy, int64_t void_index,
                    int64_t* out) {
  check_probs_view(probs);
  check_options(options);
  if (probs.classes < 2)
    throw std::invalid_argument("multiclass output needs C >= 2 classes, got C = " + std::to_string(probs.classes));
  if (probs.classes > std::numeric_limits<int32_t>::max())  // the merge keeps class indices in 32 bits
    throw std::invalid_argument("multiclass output supports C < 2^31 classes, got C = " +
                                std::to_string(probs.classes));
  if (policy != Unassigned::max_score && policy != Unassigned::void_label)
    throw std::invalid_argument("unknown unassigned policy code");
  if (policy == Unassigned::void_label && void_index >= 0 && void_index < probs.classes)
    throw std::invalid_argument("void_index must lie outside [0, C) = [0, " + std::to_string(probs.classes) +
                                "), got " + std::to_string(void_index));
  if (probs.batch == 0) return;
  if (out == nullptr) throw std::invalid_argument("out data pointer is null");
  dispatch(probs.dtype, [&](auto tag) {
    using S = decltype(tag);
    solve_contiguous<S>(probs, options.num_threads, [&](const ProbsView& v, int64_t first_image) {
      const std::vector<ClassCut> cuts = solve_all<S>(v, options, nullptr, first_image);
      const cpu::Image<S> shape{nullptr, v.stride_c, v.stride_n, v.classes, v.pixels};
      cpu::merge_batch(static_cast<const S*>(v.data), v.batch, v.stride_b, shape, cuts.data(), options, policy,
                       void_index, out + first_image * v.pixels);
    });
  });
}

}  // namespace rankseg

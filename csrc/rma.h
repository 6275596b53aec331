// The RMA solver's interface: what the bindings hand to the kernels.
#pragma once

#include <cstdint>

namespace rankseg {

enum class DType : int { float32 = 0, float64 = 1, float16 = 2, bfloat16 = 3, boolean = 4, int64 = 5 };
enum class Metric : int { dice = 0, iou = 1 };
enum class Unassigned : int { max_score = 0, void_label = 1 };

// Probabilities laid out as (batch, classes, pixels) with element strides; nothing is assumed contiguous.
struct ProbsView {
  const void* data;
  DType dtype;
  int64_t batch, classes, pixels;
  int64_t stride_b, stride_c, stride_n;
};

struct RmaOptions {
  Metric metric;
  double smooth;
  double pruning_prob;
  int num_threads;
};

// Throws std::invalid_argument unless the view has B >= 0, C >= 1, N >= 1, non-negative strides and data.
void check_probs_view(const ProbsView& probs);

// Writes the RMA mask of every (image, class) into out, a contiguous bool array (batch, classes, pixels).
void rma_multilabel(const ProbsView& probs, const RmaOptions& options, bool* out);

// Writes one label per pixel into out, a contiguous int64 array (batch, pixels).
void rma_multiclass(const ProbsView& probs, const RmaOptions& options, Unassigned policy, int64_t void_index,
                    int64_t* out);

}  // namespace rankseg

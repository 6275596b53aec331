// The two implementations behind core.h. Only dispatch.cpp calls them, after checking every argument.
#pragma once

#include <cstdint>

#include "core.h"

namespace rankseg::cpu {

void rma_multilabel(const ProbsView& probs, const RmaOptions& options, bool* out);
void rma_multiclass(const ProbsView& probs, const RmaOptions& options, Unassigned policy, int64_t void_index,
                    int64_t* out);
void sorted_multilabel(const ProbsView& probs, const SortedOptions& options, bool* out);
void sorted_multiclass(const ProbsView& probs, const SortedOptions& options, Unassigned policy, int64_t void_index,
                       int64_t* out);
void expected_scores(const ProbsView& probs, const bool* masks, Metric metric, double smooth, double empty,
                     int num_threads, double* out);

}  // namespace rankseg::cpu

namespace rankseg::cuda {

// Requires probs.stride_n == 1 (the caller copies other layouts to class-major order first).
int64_t workspace_bytes(const ProbsView& probs, Output output);
void rma_multilabel(const ProbsView& probs, const RmaOptions& options, const Device& device, Workspace workspace,
                    bool* out, int64_t* first_invalid);
void rma_multiclass(const ProbsView& probs, const RmaOptions& options, Unassigned policy, int64_t void_index,
                    const Device& device, Workspace workspace, int64_t* out, int64_t* first_invalid);
const char* architectures();
int runtime_version();
int device_count();

}  // namespace rankseg::cuda

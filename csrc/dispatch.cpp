// The entry points of core.h: check every argument, then hand the call to the CPU or the CUDA kernels. This is
// the only file that knows whether CUDA kernels were compiled in.
#include <limits>
#include <stdexcept>
#include <string>

#include "backends.h"
#include "core.h"

namespace rankseg {

namespace {

void check_merge(Merge merge) {
  if (merge != Merge::gain && merge != Merge::probability) throw std::invalid_argument("unknown merge code");
}

void check_options(const RmaOptions& o) {
  if (!(o.smooth >= 0.0 && o.smooth < std::numeric_limits<double>::infinity()))
    throw std::invalid_argument("smooth must be finite and >= 0, got " + std::to_string(o.smooth));
  if (!(o.pruning_prob >= 0.0 && o.pruning_prob <= 1.0))
    throw std::invalid_argument("pruning_prob must lie in [0, 1], got " + std::to_string(o.pruning_prob));
  if (o.metric != Metric::dice && o.metric != Metric::iou) throw std::invalid_argument("unknown metric code");
  if (o.num_threads < 1) throw std::invalid_argument("num_threads must be >= 1");
  if (o.pruning != Pruning::max_prob && o.pruning != Pruning::argmax)
    throw std::invalid_argument("unknown pruning code");
  check_merge(o.merge);
}

void check_max_prob_pruning(Pruning pruning) {
  if (pruning != Pruning::max_prob) throw std::invalid_argument("pruning by argmax applies to multiclass output only");
}

void check_multiclass(const ProbsView& probs, Unassigned policy, int64_t void_index) {
  if (probs.classes < 2)
    throw std::invalid_argument("output_mode='multiclass' needs at least 2 classes (C >= 2), got probs with C = " +
                                std::to_string(probs.classes) +
                                "; use output_mode='multilabel' or give two channels (background, foreground)");
  if (probs.classes > std::numeric_limits<int32_t>::max())  // the merges keep class indices in 32 bits
    throw std::invalid_argument("multiclass output supports C < 2^31 classes, got C = " +
                                std::to_string(probs.classes));
  if (policy != Unassigned::max_score && policy != Unassigned::void_label)
    throw std::invalid_argument("unknown unassigned policy code");
  if (policy == Unassigned::void_label && void_index >= 0 && void_index < probs.classes)
    throw std::invalid_argument("void_index must lie outside [0, C) = [0, " + std::to_string(probs.classes) +
                                "), got " + std::to_string(void_index));
}

void check_device(const Device& device) {
  if (device.type == DeviceType::cpu) return;
  if (device.type != DeviceType::cuda)
    throw std::invalid_argument("probs must be on a CPU or CUDA device, got device type code " +
                                std::to_string(int(device.type)));
  if (!cuda_compiled())
    throw std::invalid_argument("this build of rankseg has no CUDA kernels; CUDA tensors are computed on the CPU");
  if (device.index < 0) throw std::invalid_argument("CUDA device index must be >= 0");
}

// The CUDA kernels read each class's pixels as one contiguous run.
void check_cuda_layout(const ProbsView& probs) {
  if (probs.stride_n != 1 && probs.pixels > 1)
    throw std::invalid_argument("the CUDA kernels need probs with adjacent pixels (stride 1), got stride " +
                                std::to_string(probs.stride_n));
}

void check_workspace(const ProbsView& probs, Output output, const Device& device, const Workspace& workspace) {
  const int64_t needed = workspace_bytes(probs, output, device);
  if (workspace.bytes < needed || (needed > 0 && workspace.data == nullptr))
    throw std::invalid_argument("workspace needs " + std::to_string(needed) + " bytes, got " +
                                std::to_string(workspace.bytes));
}

template <class T>
void check_output(const ProbsView& probs, const T* out) {
  if (probs.batch > 0 && out == nullptr) throw std::invalid_argument("out data pointer is null");
}

[[noreturn]] void no_cuda() { throw std::invalid_argument("this build of rankseg has no CUDA kernels"); }

}  // namespace

void check_probs_view(const ProbsView& v) {
  if (v.batch < 0 || v.classes < 1 || v.pixels < 1)
    throw std::invalid_argument("probs must have shape (B >= 0, C >= 1, N >= 1), got (" + std::to_string(v.batch) +
                                ", " + std::to_string(v.classes) + ", " + std::to_string(v.pixels) + ")");
  if (v.stride_b < 0 || v.stride_c < 0 || v.stride_n < 0)
    throw std::invalid_argument("probs strides must be non-negative");
  if (v.batch > 0 && v.data == nullptr) throw std::invalid_argument("probs data pointer is null");
  switch (v.dtype) {
    case ProbsDType::float32:
    case ProbsDType::float64:
    case ProbsDType::float16:
    case ProbsDType::bfloat16: break;
    default: throw std::invalid_argument("probs must be float16, bfloat16, float32 or float64");
  }
}

int64_t workspace_bytes(const ProbsView& probs, Output output, const Device& device) {
  check_probs_view(probs);
  check_device(device);
  if (device.type == DeviceType::cpu || probs.batch == 0) return 0;
  check_cuda_layout(probs);
#ifdef RANKSEG_WITH_CUDA
  return cuda::workspace_bytes(probs, output);
#else
  (void)output;
  no_cuda();
#endif
}

void rma_multilabel(const ProbsView& probs, const RmaOptions& options, const Device& device, Workspace workspace,
                    bool* out, int64_t* first_invalid) {
  check_probs_view(probs);
  check_options(options);
  check_device(device);
  check_max_prob_pruning(options.pruning);
  check_output(probs, out);
  if (probs.batch == 0) return;
  if (device.type == DeviceType::cpu) return cpu::rma_multilabel(probs, options, out);
  check_cuda_layout(probs);
  check_workspace(probs, Output::multilabel, device, workspace);
#ifdef RANKSEG_WITH_CUDA
  cuda::rma_multilabel(probs, options, device, workspace, out, first_invalid);
#else
  (void)first_invalid;
  no_cuda();
#endif
}

void rma_multiclass(const ProbsView& probs, const RmaOptions& options, Unassigned policy, int64_t void_index,
                    const Device& device, Workspace workspace, int64_t* out, int64_t* first_invalid) {
  check_probs_view(probs);
  check_options(options);
  check_multiclass(probs, policy, void_index);
  check_device(device);
  check_output(probs, out);
  if (probs.batch == 0) return;
  if (device.type == DeviceType::cpu) return cpu::rma_multiclass(probs, options, policy, void_index, out);
  if (options.pruning != Pruning::max_prob)
    throw std::invalid_argument("pruning by argmax is not in the CUDA kernels; the CPU computes it");
  if (options.merge != Merge::gain)
    throw std::invalid_argument("the merge by probability is not in the CUDA kernels; the CPU computes it");
  check_cuda_layout(probs);
  check_workspace(probs, Output::multiclass, device, workspace);
#ifdef RANKSEG_WITH_CUDA
  cuda::rma_multiclass(probs, options, policy, void_index, device, workspace, out, first_invalid);
#else
  (void)first_invalid;
  no_cuda();
#endif
}

namespace {

void check_sorted_options(const SortedOptions& o) {
  check_options({Metric::dice, o.smooth, o.pruning_prob, o.num_threads, o.pruning});
  check_merge(o.merge);
  if (int(o.solver) < 0 || int(o.solver) > int(Solver::ba_trna)) throw std::invalid_argument("unknown solver code");
  if (o.solver != Solver::exact && !(o.eps > 0.0 && o.eps < 1.0))
    throw std::invalid_argument("eps must lie in (0, 1), got " + std::to_string(o.eps));
}

}  // namespace

void sorted_multilabel(const ProbsView& probs, const SortedOptions& options, bool* out) {
  check_probs_view(probs);
  check_sorted_options(options);
  check_max_prob_pruning(options.pruning);
  check_output(probs, out);
  if (probs.batch > 0) cpu::sorted_multilabel(probs, options, out);
}

void sorted_multiclass(const ProbsView& probs, const SortedOptions& options, Unassigned policy, int64_t void_index,
                       int64_t* out) {
  check_probs_view(probs);
  check_sorted_options(options);
  check_multiclass(probs, policy, void_index);
  check_output(probs, out);
  if (probs.batch > 0) cpu::sorted_multiclass(probs, options, policy, void_index, out);
}

void expected_scores(const ProbsView& probs, const bool* masks, Metric metric, double smooth, double empty,
                     int num_threads, double* out) {
  check_probs_view(probs);
  check_options({metric, smooth, 0.0, num_threads});
  check_output(probs, masks);
  check_output(probs, out);
  if (probs.batch > 0) cpu::expected_scores(probs, masks, metric, smooth, empty, num_threads, out);
}

#ifdef RANKSEG_WITH_CUDA
bool cuda_compiled() { return true; }
const char* cuda_architectures() { return cuda::architectures(); }
int cuda_runtime_version() { return cuda::runtime_version(); }
int cuda_device_count() { return cuda::device_count(); }
#else
bool cuda_compiled() { return false; }
const char* cuda_architectures() { return ""; }
int cuda_runtime_version() { return 0; }
int cuda_device_count() { return 0; }
#endif

}  // namespace rankseg

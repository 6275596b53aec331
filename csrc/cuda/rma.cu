// CUDA entry points of the RMA solver (checked by dispatch.cpp): lay out the caller's workspace, dispatch on
// dtype and enqueue the passes on the caller's stream. Nothing here allocates or synchronises.
#include <cuda_runtime.h>

#include "../backends.h"
#include "common.cuh"
#include "kernels.h"

#ifndef RANKSEG_CUDA_ARCHS
#define RANKSEG_CUDA_ARCHS ""
#endif

namespace rankseg::cuda {

namespace {

int64_t storage_bytes(ProbsDType dtype) {
  switch (dtype) {
    case ProbsDType::float64: return 8;
    case ProbsDType::float32: return 4;
    default: return 2;
  }
}

// Makes `index` the current device for the scope of a call, as torch's device guards do.
class DeviceGuard {
 public:
  explicit DeviceGuard(int index) {
    check_call(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != index) check_call(cudaSetDevice(index), "cudaSetDevice");
  }
  ~DeviceGuard() { cudaSetDevice(previous_); }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

// Enqueues the passes both outputs share (statistics, band, cuts) on the device and stream of the call,
// then finish(slabs, problem, parts, stream) for the output.
template <class F>
void run(const ProbsView& v, const RmaOptions& o, Output output, const Device& device, Workspace workspace,
         int64_t* first_invalid, F&& finish) {
  const DeviceGuard guard(device.index);
  const auto stream = reinterpret_cast<cudaStream_t>(device.stream);
  const Layout layout(v, output, storage_bytes(v.dtype));
  const Parts parts(layout, workspace.data);
  check_call(cudaMemsetAsync(workspace.data, 0, size_t(layout.zeroed_end), stream), "cudaMemsetAsync");
  if (first_invalid) check_call(cudaMemsetAsync(first_invalid, 0xff, sizeof(int64_t), stream), "cudaMemsetAsync");
  const Problem problem{o.metric, o.smooth, o.pruning_prob, v.pixels};
  with_storage_type(v.dtype, [&](auto tag) {
    using S = decltype(tag);
    const Slabs<S> slabs{static_cast<const S*>(v.data), v.classes, v.pixels, v.stride_b, v.stride_c};
    launch_first_pass(slabs, layout.slabs, parts.stats, first_invalid, stream);
    launch_gather_band(slabs, layout.slabs, problem, parts, layout, stream);
    launch_solve(slabs, layout.slabs, problem, parts, layout, stream);
    finish(slabs, problem, parts, stream);
  });
}

}  // namespace

int64_t workspace_bytes(const ProbsView& probs, Output output) {
  return Layout(probs, output, storage_bytes(probs.dtype)).total;
}

void rma_multilabel(const ProbsView& probs, const RmaOptions& options, const Device& device, Workspace workspace,
                    bool* out, int64_t* first_invalid) {
  run(probs, options, Output::multilabel, device, workspace, first_invalid,
      [&](const auto& slabs, const Problem&, const Parts& parts, cudaStream_t stream) {
        launch_write_masks(slabs, probs.batch * probs.classes, parts.cuts, out, stream);
      });
}

void rma_multiclass(const ProbsView& probs, const RmaOptions& options, Unassigned policy, int64_t void_index,
                    const Device& device, Workspace workspace, int64_t* out, int64_t* first_invalid) {
  run(probs, options, Output::multiclass, device, workspace, first_invalid,
      [&](const auto& slabs, const Problem& problem, const Parts& parts, cudaStream_t stream) {
        launch_merge(slabs, probs.batch, problem, policy, void_index, parts, out, stream);
      });
}

const char* architectures() { return RANKSEG_CUDA_ARCHS; }

int runtime_version() { return CUDART_VERSION; }

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the error: no driver or no device is not a failure here
    return 0;
  }
  return count;
}

}  // namespace rankseg::cuda

// Host-side launchers of the CUDA kernels, one per pass, each enqueued on the caller's stream.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "common.cuh"

namespace rankseg::cuda {

#define RANKSEG_FOR_EACH_STORAGE(X) X(float) X(double) X(Half) X(BFloat16)

// Sums, maximum, validity and the pixels above 1/2 of every class (streaming.cu).
template <class S>
void launch_first_pass(const Slabs<S>& slabs, int64_t count, SlabStats* stats, int64_t* first_invalid,
                       cudaStream_t stream);

// Copies each class's band (streaming.cu).
template <class S>
void launch_gather_band(const Slabs<S>& slabs, int64_t count, const Problem& problem, const Parts& parts,
                        const Layout& layout, cudaStream_t stream);

// One block per class: the optimal cut (class_cut.cu).
template <class S>
void launch_solve(const Slabs<S>& slabs, int64_t count, const Problem& problem, const Parts& parts,
                  const Layout& layout, cudaStream_t stream);

// Multilabel masks from the cuts (streaming.cu).
template <class S>
void launch_write_masks(const Slabs<S>& slabs, int64_t count, const ClassCut* cuts, bool* out, cudaStream_t stream);

// Multiclass labels from the cuts (merge.cu).
template <class S>
void launch_merge(const Slabs<S>& slabs, int64_t batch, const Problem& problem, Unassigned policy, int64_t void_index,
                  const Parts& parts, int64_t* out, cudaStream_t stream);

}  // namespace rankseg::cuda

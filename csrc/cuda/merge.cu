// The multiclass merge (docs/algorithm.md, "Multiclass merge"; as cpu/merge.h), from the per-class cuts to one
// label per pixel: a pixel selected by exactly one class takes it; the others go to the eligible class with
// the largest incremental score, the lowest index on ties.
#include "common.cuh"
#include "kernels.h"

namespace rankseg::cuda {

namespace {

constexpr int64_t kUnselected = -1;  // placeholders between the merge's two passes, always overwritten
constexpr int64_t kContested = -2;
constexpr int kClassesPerRound = 1024;  // selecting classes staged in shared memory at a time
// The merge reads every class of a pixel, so its blocks take few pixels: enough blocks even for one image.
constexpr int kMergeItems = 4;
constexpr int64_t kMergePixelsPerBlock = kThreads * kMergeItems;

// Pass 1 of the merge over one block's pixels of one image: labels the pixels selected by exactly one class,
// marks the others, and adds each class's solely held pixels to its count and exact sum.
template <class S>
__global__ void __launch_bounds__(kThreads)
    label_safe_kernel(Slabs<S> slabs, const ClassCut* cuts, SlabStats* stats, int64_t* out) {
  using V = value_t<S>;
  const auto [image, begin, end] = this_block_range(slabs.pixels, kMergePixelsPerBlock);
  const ClassCut* image_cuts = cuts + image * slabs.classes;

  __shared__ int32_t staged_class[kClassesPerRound];
  __shared__ V staged_threshold[kClassesPerRound];
  __shared__ int staged;
  __shared__ u64 lane_q[kThreads];

  uint8_t hits[kMergeItems] = {};
  int32_t owner[kMergeItems] = {};
  V owner_value[kMergeItems] = {};
  for (int64_t first = 0; first < slabs.classes; first += kClassesPerRound) {
    if (threadIdx.x == 0) staged = 0;
    __syncthreads();
    for (int64_t c = first + threadIdx.x; c < slabs.classes && c < first + kClassesPerRound; c += kThreads) {
      const ClassCut cut = image_cuts[c];
      if (cut.volume > 0) {
        const int at = atomicAdd(&staged, 1);
        staged_class[at] = int32_t(c);
        staged_threshold[at] = V(cut.threshold);
      }
    }
    __syncthreads();
    for (int k = 0; k < staged; ++k) {
      const int32_t c = staged_class[k];
      const S* p = slabs.at(image, c);
      V v[kMergeItems];
#pragma unroll
      for (int j = 0; j < kMergeItems; ++j) {
        const int64_t i = begin + threadIdx.x + int64_t(j) * kThreads;
        v[j] = i < end ? load(p + i) : V(-1);  // -1 is below every threshold
      }
#pragma unroll
      for (int j = 0; j < kMergeItems; ++j) {
        if (v[j] >= staged_threshold[k]) {
          hits[j] = hits[j] < 2 ? hits[j] + 1 : 2;
          owner[j] = c;
          owner_value[j] = v[j];
        }
      }
    }
    __syncthreads();
  }

  const unsigned lane = threadIdx.x % 32;
#pragma unroll
  for (int j = 0; j < kMergeItems; ++j) {
    const int64_t i = begin + threadIdx.x + int64_t(j) * kThreads;
    const bool inside = i < end;
    const bool safe = inside && hits[j] == 1;
    if (inside) out[image * slabs.pixels + i] = safe ? int64_t(owner[j]) : hits[j] == 0 ? kUnselected : kContested;
    // Lanes of a warp holding pixels of the same class add them together; the lowest one does the atomics.
    lane_q[threadIdx.x] = safe ? fixed_point(double(owner_value[j])) : 0;
    __syncwarp();
    const unsigned group = __match_any_sync(0xffffffffu, safe ? owner[j] : -1);
    if (safe && lane == unsigned(__ffs(group) - 1)) {
      ExactSum sum;
      for (unsigned rest = group; rest; rest &= rest - 1)
        sum.add(lane_q[threadIdx.x - lane + unsigned(__ffs(rest) - 1)]);
      SlabStats& st = stats[image * slabs.classes + owner[j]];
      atomicAdd(&st.safe_count, u64(__popc(group)));
      atomic_add_exact(&st.safe_lo, &st.safe_hi, sum);
    }
    __syncwarp();
  }
}

// The incremental score of each class from what it holds alone (scores.h).
__global__ void gains_kernel(int64_t count, Problem problem, const ClassCut* cuts, const SlabStats* stats,
                             PixelGain* gains) {
  const int64_t slab = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (slab >= count) return;
  const SlabStats& st = stats[slab];
  gains[slab] = PixelGain(problem.metric, problem.smooth, cuts[slab].mu, double(st.safe_count), st.safe_sum().value());
}

// Pass 2: every marked pixel goes to the eligible class of largest gain, the lowest index on ties. Contested
// pixels choose among the classes selecting them; unselected ones among the active classes (every class when
// all were pruned), unless the policy leaves them void.
template <class S>
__global__ void __launch_bounds__(kThreads) resolve_kernel(Slabs<S> slabs, const ClassCut* cuts, const PixelGain* gains,
                                                           Unassigned policy, int64_t void_index, int64_t* out) {
  using V = value_t<S>;
  const auto [image, begin, end] = this_block_range(slabs.pixels, kMergePixelsPerBlock);
  const ClassCut* image_cuts = cuts + image * slabs.classes;
  const PixelGain* image_gains = gains + image * slabs.classes;
  int64_t* labels = out + image * slabs.pixels;

  bool any = false;
  for (int64_t c = threadIdx.x; c < slabs.classes; c += kThreads) any = any || image_cuts[c].active;
  const bool any_active = __syncthreads_or(any);

  bool open[kMergeItems], contested[kMergeItems];
  double best[kMergeItems];
  int64_t choice[kMergeItems];
  bool any_open = false;
#pragma unroll
  for (int j = 0; j < kMergeItems; ++j) {
    const int64_t i = begin + threadIdx.x + int64_t(j) * kThreads;
    const int64_t label = i < end ? labels[i] : 0;
    contested[j] = label == kContested;
    open[j] = label < 0;
    if (open[j] && !contested[j] && policy == Unassigned::void_label) {
      labels[i] = void_index;
      open[j] = false;
    }
    best[j] = -HUGE_VAL;
    choice[j] = 0;
    any_open = any_open || open[j];
  }
  if (!any_open) return;

  // Classes outer, this thread's pixels inner: the loads of one class are independent and issued together.
  for (int64_t c = 0; c < slabs.classes; ++c) {
    const ClassCut& cut = image_cuts[c];
    const bool selecting = cut.volume > 0;
    const bool eligible_unselected = !any_active || cut.active;
    if (!selecting && !eligible_unselected) continue;
    const S* p = slabs.at(image, c);
    const V threshold = V(cut.threshold);
    V v[kMergeItems];
#pragma unroll
    for (int j = 0; j < kMergeItems; ++j) v[j] = open[j] ? load(p + begin + threadIdx.x + int64_t(j) * kThreads) : V(0);
#pragma unroll
    for (int j = 0; j < kMergeItems; ++j) {
      if (!open[j] || !(contested[j] ? selecting && v[j] >= threshold : eligible_unselected)) continue;
      const double gain = image_gains[c](double(v[j]));
      if (gain > best[j]) {  // strictly larger: the lowest index wins ties
        best[j] = gain;
        choice[j] = c;
      }
    }
  }
#pragma unroll
  for (int j = 0; j < kMergeItems; ++j)
    if (open[j]) labels[begin + threadIdx.x + int64_t(j) * kThreads] = choice[j];
}

}  // namespace

template <class S>
void launch_merge(const Slabs<S>& slabs, int64_t batch, const Problem& problem, Unassigned policy, int64_t void_index,
                  const Parts& parts, int64_t* out, cudaStream_t stream) {
  const unsigned blocks = streaming_blocks(batch, slabs.pixels, kMergePixelsPerBlock);
  label_safe_kernel<S><<<blocks, kThreads, 0, stream>>>(slabs, parts.cuts, parts.stats, out);
  check_launch("label_safe");
  const int64_t count = batch * slabs.classes;
  gains_kernel<<<unsigned((count + kThreads - 1) / kThreads), kThreads, 0, stream>>>(count, problem, parts.cuts,
                                                                                     parts.stats, parts.gains);
  check_launch("gains");
  resolve_kernel<S><<<blocks, kThreads, 0, stream>>>(slabs, parts.cuts, parts.gains, policy, void_index, out);
  check_launch("resolve");
}

#define RANKSEG_INSTANTIATE(S)                                                                                         \
  template void launch_merge<S>(const Slabs<S>&, int64_t, const Problem&, Unassigned, int64_t, const Parts&, int64_t*, \
                                cudaStream_t);
RANKSEG_FOR_EACH_STORAGE(RANKSEG_INSTANTIATE)
#undef RANKSEG_INSTANTIATE

}  // namespace rankseg::cuda

// The passes that read every pixel: the first pass (sums, maximum, validity, the pixels above 1/2), the
// band gather and the multilabel masks (on the CPU: cpu/streaming.cpp, cpu/band.cpp). One block per
// kPixelsPerBlock pixels of one class; per-class results meet in exact atomics.
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include "common.cuh"
#include "kernels.h"

namespace rankseg::cuda {

namespace {

struct BlockTotals {
  u64 sum, above_sum, above_count, max_bits, invalid;
};

struct CombineTotals {
  __device__ BlockTotals operator()(const BlockTotals& a, const BlockTotals& b) const {
    return {a.sum + b.sum, a.above_sum + b.above_sum, a.above_count + b.above_count,
            a.max_bits > b.max_bits ? a.max_bits : b.max_bits, a.invalid | b.invalid};
  }
};

// Each block sums at most kPixelsPerBlock values of at most 2^43 each: 2^55, so 64-bit block totals are exact.
template <class S>
__global__ void __launch_bounds__(kThreads) first_pass_kernel(Slabs<S> slabs, SlabStats* stats, u64* first_invalid) {
  using V = value_t<S>;
  const auto [slab, begin, end] = this_block_range(slabs.pixels);
  const S* p = slabs.base(slab);

  // All of a thread's loads are issued before any is used: enough bytes in flight to stream at full bandwidth.
  V v[kItems];
#pragma unroll
  for (int k = 0; k < kItems; ++k) {
    const int64_t i = begin + threadIdx.x + int64_t(k) * kThreads;
    v[k] = i < end ? load(p + i) : V(0);
  }
  BlockTotals t{0, 0, 0, 0, 0};
#pragma unroll
  for (int k = 0; k < kItems; ++k) {
    const bool valid = v[k] >= V(0) && v[k] <= V(1);
    t.invalid |= !valid;
    if (!valid) continue;
    const u64 q = fixed_point(double(v[k]));
    t.sum += q;
    const u64 bits = value_bits(v[k]);
    t.max_bits = bits > t.max_bits ? bits : t.max_bits;
    if (v[k] > V(0.5)) {
      t.above_count += 1;
      t.above_sum += q;
    }
  }
  using Reduce = cub::BlockReduce<BlockTotals, kThreads>;
  __shared__ typename Reduce::TempStorage scratch;
  t = Reduce(scratch).Reduce(t, CombineTotals{});
  if (threadIdx.x != 0) return;
  SlabStats& st = stats[slab];
  atomic_add_exact(&st.sum_lo, &st.sum_hi, t.sum);
  atomic_add_exact(&st.above_lo, &st.above_hi, t.above_sum);
  if (t.above_count) atomicAdd(&st.above_count, t.above_count);
  if (t.max_bits) atomicMax(&st.max_bits, t.max_bits);
  if (t.invalid) {
    atomicOr(&st.invalid, 1ull);
    if (first_invalid) atomicMin(first_invalid, u64(slab));  // starts at all ones, i.e. -1 when none
  }
}

// Copies the band, the values in [lo, 1/2] with lo the first threshold of the class's search, into the
// class's band storage (in any order: the search only needs its exact sums, counts and extremes), and
// counts them per CPU chunk (the CPU's band-capacity rule decides the smoothed Dice route).
template <class S>
__global__ void __launch_bounds__(kThreads)
    gather_band_kernel(Slabs<S> slabs, Problem problem, SlabStats* stats, u64* chunk_counts, int64_t chunks_per_slab,
                       S* band, int64_t band_room) {
  using V = value_t<S>;
  const auto [slab, begin, end] = this_block_range(slabs.pixels);
  SlabStats& st = stats[slab];
  const Route route = route_of(problem, st, double(value_of_bits<V>(st.max_bits)));
  if (route != Route::threshold && route != Route::smoothed_band) return;
  const V lo = band_search<V>(problem, st, route).threshold();
  const S* p = slabs.base(slab);

  // Raw values and flags in registers (static indices), all loads issued first.
  S raw[kItems];
#pragma unroll
  for (int k = 0; k < kItems; ++k) {
    const int64_t i = begin + threadIdx.x + int64_t(k) * kThreads;
    raw[k] = i < end ? p[i] : S{};
  }
  bool keep[kItems];
  int count = 0;
#pragma unroll
  for (int k = 0; k < kItems; ++k) {
    const V v = to_value(raw[k]);
    keep[k] = begin + threadIdx.x + int64_t(k) * kThreads < end && v >= lo && v <= V(0.5);
    count += keep[k];
  }
  using Scan = cub::BlockScan<int, kThreads>;
  __shared__ typename Scan::TempStorage scratch;
  __shared__ u64 start;
  int offset, total;
  Scan(scratch).ExclusiveSum(count, offset, total);
  if (threadIdx.x == 0 && total > 0) {
    start = atomicAdd(&st.band_count, u64(total));
    atomicAdd(&chunk_counts[slab * chunks_per_slab + begin / kChunkPixels], u64(total));
  }
  __syncthreads();
  if (total == 0) return;
  S* out = band + slab * band_room;
  u64 at = start + u64(offset);
#pragma unroll
  for (int k = 0; k < kItems; ++k) {
    if (!keep[k]) continue;
    if (at < u64(band_room)) out[at] = raw[k];
    ++at;
  }
}

// Writes p >= cut for each of the block's pixels: the multilabel output.
template <class S>
__global__ void __launch_bounds__(kThreads) write_masks_kernel(Slabs<S> slabs, const ClassCut* cuts, bool* out) {
  using V = value_t<S>;
  const auto [slab, begin, end] = this_block_range(slabs.pixels);
  const ClassCut cut = cuts[slab];
  const V threshold = V(cut.threshold);  // exact: every cut lies on a value of the input's type
  const S* p = slabs.base(slab);
  bool* mask = out + slab * slabs.pixels;
  for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) mask[i] = cut.volume > 0 && load(p + i) >= threshold;
}

}  // namespace

template <class S>
void launch_first_pass(const Slabs<S>& slabs, int64_t count, SlabStats* stats, int64_t* first_invalid,
                       cudaStream_t stream) {
  first_pass_kernel<S><<<streaming_blocks(count, slabs.pixels), kThreads, 0, stream>>>(
      slabs, stats, reinterpret_cast<u64*>(first_invalid));
  check_launch("first_pass");
}

template <class S>
void launch_gather_band(const Slabs<S>& slabs, int64_t count, const Problem& problem, const Parts& parts,
                        const Layout& layout, cudaStream_t stream) {
  gather_band_kernel<S><<<streaming_blocks(count, slabs.pixels), kThreads, 0, stream>>>(
      slabs, problem, parts.stats, parts.chunk_counts, layout.chunks_per_slab, static_cast<S*>(parts.band),
      layout.band_room);
  check_launch("gather_band");
}

template <class S>
void launch_write_masks(const Slabs<S>& slabs, int64_t count, const ClassCut* cuts, bool* out, cudaStream_t stream) {
  write_masks_kernel<S><<<streaming_blocks(count, slabs.pixels), kThreads, 0, stream>>>(slabs, cuts, out);
  check_launch("write_masks");
}

#define RANKSEG_INSTANTIATE(S)                                                                               \
  template void launch_first_pass<S>(const Slabs<S>&, int64_t, SlabStats*, int64_t*, cudaStream_t);          \
  template void launch_gather_band<S>(const Slabs<S>&, int64_t, const Problem&, const Parts&, const Layout&, \
                                      cudaStream_t);                                                         \
  template void launch_write_masks<S>(const Slabs<S>&, int64_t, const ClassCut*, bool*, cudaStream_t);
RANKSEG_FOR_EACH_STORAGE(RANKSEG_INSTANTIATE)
#undef RANKSEG_INSTANTIATE

}  // namespace rankseg::cuda

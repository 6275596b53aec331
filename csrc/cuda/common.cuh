// What every CUDA kernel of the RMA solver shares: the workspace layout, per-class records, loading values,
// exact atomic sums and launch checks.
//
// A slab is the pixels of one (image, class) pair of a call, numbered s = b * classes + c: the per-class
// records (SlabStats, the cuts, the band storage) and the grids of most kernels are indexed by slab.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "../core.h"
#include "../exact_sum.h"
#include "../search.h"
#include "../values.h"

namespace rankseg::cuda {

constexpr int kThreads = 256;                           // threads per block of the streaming kernels
constexpr int kItems = 16;                              // values per thread of a streaming block
constexpr int64_t kPixelsPerBlock = kThreads * kItems;  // pixels of one class a streaming block reads
// The band is counted per CPU chunk (exact_sum.h), whose band-capacity rule decides a route: each streaming
// block's pixels must lie in one chunk.
static_assert(kChunkPixels % kPixelsPerBlock == 0, "a streaming block's pixels lie in one chunk");
constexpr int kCutSolverThreads = 512;  // threads of the block that solves one class's cut
constexpr int kBitsPerLevel = 9;
constexpr int kBinsPerLevel = 1 << kBitsPerLevel;  // bins of one level of the cut solver's histograms

using u64 = unsigned long long;

// What the first pass learns about one (image, class), accumulated by atomics. Zeroed before the call.
struct SlabStats {
  u64 sum_lo, sum_hi;                // exact sum of q over the class
  u64 above_lo, above_hi;            // exact sum of q over p > 1/2
  u64 above_count;                   // pixels with p > 1/2
  u64 max_bits;                      // bit pattern of the largest |p| (valid values order like their bits)
  u64 invalid;                       // nonzero if a value was NaN or outside [0, 1]
  u64 band_count;                    // band values found by the gather (may exceed the stored capacity)
  u64 safe_count, safe_lo, safe_hi;  // multiclass: pixels the class holds alone, and their exact sum

  __device__ ExactSum sum() const { return {sum_lo, sum_hi}; }
  __device__ ExactSum above_sum() const { return {above_lo, above_hi}; }
  __device__ ExactSum safe_sum() const { return {safe_lo, safe_hi}; }
};

// Offsets of the workspace's parts, in bytes, each 256-aligned. The front part (stats and chunk counters)
// is zeroed at the start of every call.
struct Layout {
  int64_t slabs = 0, chunks_per_slab = 0, band_room = 0;  // band_room: values of band storage per slab
  int64_t stats = 0, chunk_counts = 0, zeroed_end = 0, cuts = 0, gains = 0, band = 0, total = 0;

  Layout(const ProbsView& v, Output output, int64_t storage_bytes) {
    auto take = [this](int64_t bytes) {
      const int64_t at = total;
      total += (bytes + 255) / 256 * 256;
      return at;
    };
    slabs = v.batch * v.classes;
    chunks_per_slab = (v.pixels + kChunkPixels - 1) / kChunkPixels;
    band_room = (v.pixels + 3) / 4;  // a quarter of the pixels, in the input's dtype
    stats = take(slabs * int64_t(sizeof(SlabStats)));
    chunk_counts = take(slabs * chunks_per_slab * int64_t(sizeof(u64)));
    zeroed_end = total;
    cuts = take(slabs * int64_t(sizeof(ClassCut)));
    gains = output == Output::multiclass ? take(slabs * int64_t(sizeof(PixelGain))) : total;
    band = take(slabs * band_room * storage_bytes);
  }
};

// The parts of a workspace, as typed pointers.
struct Parts {
  SlabStats* stats;
  u64* chunk_counts;
  ClassCut* cuts;
  PixelGain* gains;
  void* band;

  Parts(const Layout& l, void* base) {
    auto at = [base](int64_t offset) { return static_cast<char*>(base) + offset; };
    stats = reinterpret_cast<SlabStats*>(at(l.stats));
    chunk_counts = reinterpret_cast<u64*>(at(l.chunk_counts));
    cuts = reinterpret_cast<ClassCut*>(at(l.cuts));
    gains = reinterpret_cast<PixelGain*>(at(l.gains));
    band = at(l.band);
  }
};

// The shape of a call, as the kernels see it: slab s = b * classes + c starts at base(s).
template <class S>
struct Slabs {
  const S* data;
  int64_t classes, pixels, stride_b, stride_c;

  __device__ const S* base(int64_t s) const { return at(s / classes, s % classes); }
  __device__ const S* at(int64_t image, int64_t c) const { return data + image * stride_b + c * stride_c; }
};

template <class S>
__device__ __forceinline__ value_t<S> load(const S* p) {
  if constexpr (sizeof(S) == 2) {
    return to_value(S{__ldg(reinterpret_cast<const unsigned short*>(p))});
  } else {
    return __ldg(p);
  }
}

// Bit pattern of a valid value, |v| so that -0.0 reads as 0: valid values order like these patterns.
__device__ __forceinline__ u64 value_bits(float v) { return u64(__float_as_uint(fabsf(v))); }
__device__ __forceinline__ u64 value_bits(double v) { return u64(__double_as_longlong(fabs(v))); }
template <class V>
__device__ __forceinline__ V value_of_bits(u64 bits) {
  if constexpr (sizeof(V) == 4) {
    return __uint_as_float(unsigned(bits));
  } else {
    return __longlong_as_double((long long)bits);
  }
}

// Adds x to the exact sum (lo, hi) in global or shared memory: a carry out of lo moves to hi, so any order
// of atomic additions gives the same bits.
__device__ __forceinline__ void atomic_add_exact(u64* lo, u64* hi, u64 x) {
  if (x == 0) return;
  const u64 old = atomicAdd(lo, x);
  if (old + x < old) atomicAdd(hi, 1ull);
}
__device__ __forceinline__ void atomic_add_exact(u64* lo, u64* hi, const ExactSum& x) {
  atomic_add_exact(lo, hi, u64(x.lo));
  if (x.hi) atomicAdd(hi, u64(x.hi));
}

inline void check_launch(const char* what) {
  const cudaError_t error = cudaGetLastError();
  if (error != cudaSuccess)
    throw std::runtime_error(std::string("rankseg CUDA kernel '") + what +
                             "' failed to launch: " + cudaGetErrorString(error));
}

inline void check_call(cudaError_t error, const char* what) {
  if (error != cudaSuccess)
    throw std::runtime_error(std::string("rankseg: ") + what + ": " + cudaGetErrorString(error));
}

__host__ __device__ inline int64_t blocks_per_slab(int64_t pixels, int64_t per_block = kPixelsPerBlock) {
  return (pixels + per_block - 1) / per_block;
}

// The pixels a streaming block reads: [begin, end) of slab `slab` (for the merge kernels, of image `slab`:
// their grid runs over images instead of classes), `per_block` of them but at the slab's end.
struct BlockRange {
  int64_t slab, begin, end;
};
__device__ inline BlockRange this_block_range(int64_t pixels, int64_t per_block = kPixelsPerBlock) {
  const int64_t blocks = blocks_per_slab(pixels, per_block);
  const int64_t begin = (blockIdx.x % blocks) * per_block;
  return {int64_t(blockIdx.x) / blocks, begin, begin + per_block < pixels ? begin + per_block : pixels};
}

// Blocks of a streaming kernel: one per `per_block` pixels of every slab, at most 2^31 - 1 of them.
inline unsigned streaming_blocks(int64_t slabs, int64_t pixels, int64_t per_block = kPixelsPerBlock) {
  const int64_t blocks = slabs * blocks_per_slab(pixels, per_block);
  if (blocks > int64_t(0x7fffffff)) throw std::invalid_argument("probs is too large for one CUDA call");
  return unsigned(blocks);
}

// What the solver needs to know about the metric, for every kernel.
struct Problem {
  Metric metric;
  double smooth;
  double pruning_prob;
  int64_t pixels;
};

// Which search a class needs, decided from its first-pass statistics identically on every thread and in every
// kernel (and as on the CPU: cpu/class_cut.h, cpu/histogram_search.h).
enum class Route : int { skip = 0, threshold = 1, smoothed_band = 2, full_histogram = 3 };

__device__ inline Route route_of(const Problem& pb, const SlabStats& st, double max_value) {
  if (st.invalid || !(max_value > pb.pruning_prob)) return Route::skip;
  const VolumeScore score{pb.metric, st.sum().value(), pb.smooth};
  if (score.threshold_form()) return Route::threshold;
  const double mu = score.mu;
  // As on the CPU: s is kept far above the rounding of R*.
  if (mu > pb.smooth && pb.smooth > 1e-9 * (mu + double(pb.pixels))) return Route::smoothed_band;
  return Route::full_histogram;
}

// The search whose first threshold bounds the band from below: the metric's own (threshold forms), or the
// ratio 2S / (mu + s + V + 1) whose optimum bounds the smoothed Dice's band (cpu/histogram_search.h).
template <class V>
__device__ inline ThresholdSearch<V> band_search(const Problem& pb, const SlabStats& st, Route route) {
  const double mu = st.sum().value();
  const VolumeScore score =
      route == Route::threshold ? VolumeScore{pb.metric, mu, pb.smooth} : VolumeScore{pb.metric, mu + pb.smooth, 0.0};
  return ThresholdSearch<V>(score, int64_t(st.above_count), st.above_sum());
}

}  // namespace rankseg::cuda

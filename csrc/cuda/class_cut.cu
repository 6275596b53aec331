// One block per (image, class): the optimal cut, reached by the same decisions as the CPU (search.h; the
// CPU's per-class driver is cpu/class_cut.h).
//
// Threshold forms run Dinkelbach's steps over the class's band. Dice with s > 0 takes the exact maximum over
// every cut between distinct values of its domain (the band above R*, or the whole class, chosen by the
// CPU's rule): histograms of bit-pattern ranges, 512 bins a level, score every bin boundary exactly and
// descend only into bins whose upper bound reaches the best score so far. The CPU sorts those bins instead;
// both find the largest score over all cuts (the smallest volume on ties), so their masks agree.
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include "common.cuh"
#include "kernels.h"

namespace rankseg::cuda {

namespace {

// The values a search reads: the stored band, or every pixel of the class kept when in [lo, hi].
template <class S>
struct Domain {
  using V = value_t<S>;
  const S* data;
  int64_t count;
  bool filtered;
  V lo, hi;

  template <class F>
  __device__ void for_each(F&& f) const {
    // kUnroll loads in flight per thread: one block per class reads its whole domain on every search step.
    constexpr int kUnroll = 8;
    int64_t i = threadIdx.x;
    for (; i + (kUnroll - 1) * kCutSolverThreads < count; i += kUnroll * kCutSolverThreads) {
      V v[kUnroll];
#pragma unroll
      for (int k = 0; k < kUnroll; ++k) v[k] = load(data + i + k * kCutSolverThreads);
#pragma unroll
      for (int k = 0; k < kUnroll; ++k) visit(v[k], f);
    }
    for (; i < count; i += kCutSolverThreads) visit(load(data + i), f);
  }

 private:
  template <class F>
  __device__ void visit(V v, F& f) const {
    if (!filtered || (v >= lo && v <= hi)) f(v);
  }
};

struct UpperSetOp {
  __device__ UpperSet operator()(UpperSet a, const UpperSet& b) const {
    a.merge(b);
    return a;
  }
};

struct BestOp {
  __device__ Best operator()(const Best& a, const Best& b) const {
    return (b.score > a.score || (b.score == a.score && b.volume < a.volume)) ? b : a;
  }
};

// Count and exact sum of a run of bins, for the suffix scan.
struct Mass {
  u64 count;
  ExactSum sum;
};
struct MaxOp {
  __device__ int operator()(int a, int b) const { return a > b ? a : b; }
};
struct MassOp {
  __device__ Mass operator()(const Mass& a, const Mass& b) const { return {a.count + b.count, a.sum.plus(b.sum)}; }
};

constexpr int kBinsPerThread = kBinsPerLevel / kCutSolverThreads;
constexpr int kMaxDepth = 8;  // float64 patterns below 2^62 need 7 levels of 9 bits

// A pattern range being refined, and the pixels of the domain above it. Plain fields: it lives in shared
// memory.
struct Frame {
  u64 lo, hi;  // bit patterns [lo, hi)
  int shift;   // sub-bin j holds patterns lo + [j, j + 1) << shift
  int next;    // the highest sub-bin not yet descended into
  u64 above, above_lo, above_hi;

  __device__ ExactSum above_sum() const { return {above_lo, above_hi}; }
};

__device__ inline int shift_for(u64 range) {
  const int bits = range > 1 ? 64 - __clzll((long long)(range - 1)) : 0;
  return bits > kBitsPerLevel ? bits - kBitsPerLevel : 0;
}

struct CutSolverShared {
  union {
    typename cub::BlockReduce<UpperSet, kCutSolverThreads>::TempStorage upper;
    typename cub::BlockReduce<Best, kCutSolverThreads>::TempStorage best;
    typename cub::BlockReduce<int, kCutSolverThreads>::TempStorage index;
    typename cub::BlockScan<Mass, kCutSolverThreads>::TempStorage scan;
  } cub;
  // Results broadcast to every thread, as plain fields.
  u64 count_result, sum_lo_result, sum_hi_result;
  double min_result, score_result, threshold_result;
  int64_t volume_result;
  int index_result;
  u64 count[kBinsPerLevel], lo[kBinsPerLevel], hi[kBinsPerLevel], min_bits[kBinsPerLevel], max_bits[kBinsPerLevel];
  Frame frames[kMaxDepth];
  u64 child_above, child_lo, child_hi;  // the pixels above the bin chosen to descend into
};

template <class S>
class CutSolver {
 public:
  using V = value_t<S>;

  __device__ CutSolver(CutSolverShared& shared) : sh_(shared) {}

  // The upper set {p >= t} of the domain, on every thread.
  __device__ UpperSet upper_set(const Domain<S>& d, V t) {
    UpperSet u;
    d.for_each([&](V v) {
      if (v >= t) {
        u.count += 1;
        u.sum.add(fixed_point(double(v)));
        u.min = double(v) < u.min ? double(v) : u.min;
      }
    });
    u = cub::BlockReduce<UpperSet, kCutSolverThreads>(sh_.cub.upper).Reduce(u, UpperSetOp{});
    if (threadIdx.x == 0) {
      sh_.count_result = u64(u.count);
      sh_.sum_lo_result = u.sum.lo;
      sh_.sum_hi_result = u.sum.hi;
      sh_.min_result = u.min;
    }
    __syncthreads();
    UpperSet all;
    all.count = int64_t(sh_.count_result);
    all.sum = ExactSum{sh_.sum_lo_result, sh_.sum_hi_result};
    all.min = sh_.min_result;
    __syncthreads();
    return all;
  }

  // Dinkelbach's steps over the band; the pixels above 1/2 (not in the domain) join every mask.
  __device__ void threshold_search(const Domain<S>& d, const SlabStats& st, ThresholdSearch<V>& search) {
    for (;;) {
      UpperSet u = upper_set(d, search.threshold());
      u.count += int64_t(st.above_count);
      u.sum.add(st.above_sum());
      if (!search.take(u)) break;
    }
  }

  // The best cut between distinct values of the domain, above `held` pixels (summing to held_sum) that every
  // candidate mask contains; boundaries never go below `lowest`. `best` must hold the same on every thread.
  __device__ void exact_argmax(const Domain<S>& d, const VolumeScore& score, int64_t held, const ExactSum& held_sum,
                               double lowest, Best& best) {
    const u64 one = value_bits(V(1));
    int depth = 0;
    if (threadIdx.x == 0)
      sh_.frames[0] = Frame{0, one + 1, shift_for(one + 1), kBinsPerLevel - 1, u64(held), held_sum.lo, held_sum.hi};
    __syncthreads();
    while (depth >= 0) {
      const Frame f = sh_.frames[depth];
      build_histogram(d, f);
      const int child = score_bins(f, score, lowest, best);
      if (child < 0) {
        --depth;
        continue;
      }
      // Descend into the child; when the search comes back here, it continues below it.
      if (threadIdx.x == 0) {
        sh_.frames[depth].next = child - 1;
        Frame c;
        c.lo = f.lo + (u64(child) << f.shift);
        const u64 end = c.lo + (u64(1) << f.shift);
        c.hi = end < f.hi ? end : f.hi;
        c.shift = shift_for(c.hi - c.lo);
        c.next = kBinsPerLevel - 1;
        c.above = sh_.child_above;
        c.above_lo = sh_.child_lo;
        c.above_hi = sh_.child_hi;
        sh_.frames[depth + 1] = c;
      }
      __syncthreads();
      ++depth;
    }
  }

 private:
  CutSolverShared& sh_;

  __device__ void build_histogram(const Domain<S>& d, const Frame& f) {
    for (int k = threadIdx.x; k < kBinsPerLevel; k += kCutSolverThreads) {
      sh_.count[k] = sh_.lo[k] = sh_.hi[k] = sh_.max_bits[k] = 0;
      sh_.min_bits[k] = ~0ull;
    }
    __syncthreads();
    d.for_each([&](V v) {
      const u64 bits = value_bits(v);
      if (bits < f.lo || bits >= f.hi) return;
      const int j = int((bits - f.lo) >> f.shift);
      atomicAdd(&sh_.count[j], 1ull);
      atomic_add_exact(&sh_.lo[j], &sh_.hi[j], fixed_point(double(v)));
      atomicMin(&sh_.min_bits[j], bits);
      atomicMax(&sh_.max_bits[j], bits);
    });
    __syncthreads();
  }

  // Offers every bin boundary of the frame's histogram; returns the highest sub-bin at or below f.next that
  // could still hold a better cut (and leaves the pixels above it in sh_.child_*), or -1.
  __device__ int score_bins(const Frame& f, const VolumeScore& score, double lowest, Best& best) {
    // Thread t holds bins kBinsPerLevel - 1 - (t * kBinsPerThread + i): bins in descending order across threads.
    Mass items[kBinsPerThread], before[kBinsPerThread];
    int bin[kBinsPerThread];
    for (int i = 0; i < kBinsPerThread; ++i) {
      bin[i] = kBinsPerLevel - 1 - (int(threadIdx.x) * kBinsPerThread + i);
      items[i] = Mass{sh_.count[bin[i]], ExactSum{sh_.lo[bin[i]], sh_.hi[bin[i]]}};
    }
    cub::BlockScan<Mass, kCutSolverThreads>(sh_.cub.scan).ExclusiveScan(items, before, Mass{0, ExactSum{}}, MassOp{});
    __syncthreads();

    Best mine = best;
    for (int i = 0; i < kBinsPerThread; ++i) {
      if (items[i].count == 0) continue;
      const int64_t above = int64_t(f.above + before[i].count);
      const ExactSum above_sum = f.above_sum().plus(before[i].sum);
      const int64_t volume = above + int64_t(items[i].count);
      const double edge = double(value_of_bits<V>(f.lo + (u64(bin[i]) << f.shift)));
      mine.offer(score(above_sum.plus(items[i].sum).value(), double(volume)), volume, edge > lowest ? edge : lowest);
    }
    best = reduce_best(mine);

    // Inside a bin of n pixels the j-th adds at most hi (plus the rounding of q), so S <= above + j * hi;
    // along that ray the score falls then rises, so its maximum is at j = 1 or j = n (cpu/histogram_search.h).
    const double floor = best.score - 1e-12 * fabs(best.score);
    int marked = -1;
    for (int i = 0; i < kBinsPerThread; ++i) {
      const int k = bin[i];
      const u64 n = items[i].count;
      if (k > f.next || n < 2 || sh_.min_bits[k] == sh_.max_bits[k]) continue;
      const u64 top = f.lo + (u64(k + 1) << f.shift);
      const double hi = double(value_of_bits<V>(top < f.hi ? top : f.hi)) + 0x1p-43;
      const double s = f.above_sum().plus(before[i].sum).value();
      const double above = double(f.above + before[i].count);
      const double bound = fmax(score(s + hi, above + 1.0), score(s + double(n) * hi, above + double(n)));
      if (bound >= floor && k > marked) marked = k;
    }
    marked = cub::BlockReduce<int, kCutSolverThreads>(sh_.cub.index).Reduce(marked, MaxOp{});
    if (threadIdx.x == 0) sh_.index_result = marked;
    __syncthreads();
    marked = sh_.index_result;
    for (int i = 0; i < kBinsPerThread; ++i) {
      if (bin[i] == marked) {  // exactly one thread holds it
        const ExactSum above_sum = f.above_sum().plus(before[i].sum);
        sh_.child_above = f.above + before[i].count;
        sh_.child_lo = above_sum.lo;
        sh_.child_hi = above_sum.hi;
      }
    }
    __syncthreads();
    return marked;
  }

  __device__ Best reduce_best(const Best& mine) {
    const Best b = cub::BlockReduce<Best, kCutSolverThreads>(sh_.cub.best).Reduce(mine, BestOp{});
    if (threadIdx.x == 0) {
      sh_.score_result = b.score;
      sh_.volume_result = b.volume;
      sh_.threshold_result = b.threshold;
    }
    __syncthreads();
    Best all{sh_.score_result};
    all.volume = sh_.volume_result;
    all.threshold = sh_.threshold_result;
    __syncthreads();
    return all;
  }
};

// The CPU's band-capacity rule (cpu/threshold_search.h): a chunk's band may hold at most half the chunk's bytes.
template <class S>
__device__ bool cpu_would_band(const u64* chunk_counts, int64_t chunks, int64_t pixels) {
  for (int64_t j = 0; j < chunks; ++j) {
    const int64_t n = j + 1 < chunks ? kChunkPixels : pixels - j * kChunkPixels;
    const int64_t capacity = n * int64_t(sizeof(S)) / (2 * int64_t(sizeof(value_t<S>)));
    if (int64_t(chunk_counts[j]) > capacity) return false;
  }
  return true;
}

template <class S>
__global__ void __launch_bounds__(kCutSolverThreads)
    solve_kernel(Slabs<S> slabs, Problem problem, Parts parts, int64_t chunks_per_slab, int64_t band_room) {
  using V = value_t<S>;
  __shared__ CutSolverShared shared;
  const int64_t slab = blockIdx.x;
  const SlabStats st = parts.stats[slab];
  const V max_value = value_of_bits<V>(st.max_bits);
  const Route first_route = route_of(problem, st, double(max_value));

  ClassCut cut;
  cut.mu = st.sum().value();
  cut.max = double(max_value);
  cut.invalid = st.invalid != 0;
  cut.active = !cut.invalid && double(max_value) > problem.pruning_prob;
  Route route = first_route;
  if (route == Route::smoothed_band &&
      !cpu_would_band<S>(parts.chunk_counts + slab * chunks_per_slab, chunks_per_slab, slabs.pixels))
    route = Route::full_histogram;

  if (route != Route::skip) {
    CutSolver<S> solver(shared);
    const S* pixels = slabs.base(slab);
    const VolumeScore score{problem.metric, cut.mu, problem.smooth};
    Best best{score.empty()};
    if (route == Route::full_histogram) {
      const Domain<S> all{pixels, slabs.pixels, false, V(0), V(1)};
      solver.exact_argmax(all, score, 0, ExactSum{}, 0.0, best);
    } else {
      ThresholdSearch<V> search = band_search<V>(problem, st, route);
      const bool stored = st.band_count <= u64(band_room);
      const S* band = static_cast<const S*>(parts.band) + slab * band_room;
      const Domain<S> d = stored ? Domain<S>{band, int64_t(st.band_count), false, V(0), V(0.5)}
                                 : Domain<S>{pixels, slabs.pixels, true, search.threshold(), V(0.5)};
      solver.threshold_search(d, st, search);
      if (route == Route::threshold) {
        best = search.best;
      } else {  // the band values that may join: v >= cut, above every pixel > 1/2
        const V lowest = V(search.best.threshold);
        const Domain<S> joinable{d.data, d.count, true, lowest, V(0.5)};
        if (st.above_count > 0)
          best.offer(score(st.above_sum().value(), double(st.above_count)), int64_t(st.above_count),
                     double(smallest_above<V>(0.5)));
        solver.exact_argmax(joinable, score, int64_t(st.above_count), st.above_sum(), double(lowest), best);
      }
    }
    cut.volume = best.volume;
    cut.threshold = best.volume > 0 ? best.threshold : HUGE_VAL;
  }
  if (threadIdx.x == 0) parts.cuts[slab] = cut;
}

}  // namespace

template <class S>
void launch_solve(const Slabs<S>& slabs, int64_t count, const Problem& problem, const Parts& parts,
                  const Layout& layout, cudaStream_t stream) {
  if (count > int64_t(0x7fffffff)) throw std::invalid_argument("too many (image, class) pairs for one CUDA call");
  solve_kernel<S><<<unsigned(count), kCutSolverThreads, 0, stream>>>(slabs, problem, parts, layout.chunks_per_slab,
                                                                     layout.band_room);
  check_launch("solve");
}

#define RANKSEG_INSTANTIATE(S) \
  template void launch_solve<S>(const Slabs<S>&, int64_t, const Problem&, const Parts&, const Layout&, cudaStream_t);
RANKSEG_FOR_EACH_STORAGE(RANKSEG_INSTANTIATE)
#undef RANKSEG_INSTANTIATE

}  // namespace rankseg::cuda

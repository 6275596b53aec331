// The compiled core's interface: every entry point (RMA, the sorting solvers, expected scores, what the build
// holds) and the types they take, whichever device runs them. dispatch.cpp defines them.
#pragma once

#include <cstdint>

namespace rankseg {

// The element types probabilities may have. Outputs have one type each, given by their pointer's type.
enum class ProbsDType : int { float32 = 0, float64 = 1, float16 = 2, bfloat16 = 3 };
enum class Metric : int { dice = 0, iou = 1 };
enum class Unassigned : int { max_score = 0, void_label = 1 };
enum class DeviceType : int { cpu = 0, cuda = 1 };

// Where the data lives and, for CUDA, the stream the work is enqueued on (a cudaStream_t as an integer,
// 0 for the legacy default stream). The caller owns the stream; a call never synchronises the device.
struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;
  uintptr_t stream = 0;
};

// Probabilities laid out as (batch, classes, pixels) with element strides; nothing is assumed contiguous.
struct ProbsView {
  const void* data;
  ProbsDType dtype;
  int64_t batch, classes, pixels;
  int64_t stride_b, stride_c, stride_n;
};

// Which classes get a mask at all: those whose largest probability exceeds pruning_prob, or (multiclass
// output only) those that win the argmax over classes at some pixel of the image.
enum class Pruning : int { max_prob = 0, argmax = 1 };

// How the multiclass merge labels a pixel that several classes select, or none: by the largest incremental
// score among them (every active class for an unselected pixel), or by the largest probability (every class
// for an unselected pixel: its argmax). CPU only; the Python layer composes the second on CUDA.
enum class Merge : int { gain = 0, probability = 1 };

// Which branches of the CPU solver a call took, counted per (image, class), so tests can prove each one runs.
struct SolveTrace {
  int64_t per_class = 0;       // solved by one thread, one class per thread
  int64_t chunk_parallel = 0;  // solved by the whole team, each thread taking chunks of the class
  int64_t threshold_band = 0;  // threshold search over the gathered band
  int64_t threshold_full = 0;  // threshold search by passes over every pixel (band too large to gather)
  int64_t smoothed_band = 0;   // Dice s > 0 refined from the band of the ratio search
  int64_t histogram = 0;       // Dice s > 0 by a histogram of the whole class
  int64_t max_steps = 0;       // most threshold-search steps one class took
};

struct RmaOptions {
  Metric metric;
  double smooth;
  double pruning_prob;
  int num_threads;  // CPU threads
  Pruning pruning = Pruning::max_prob;
  SolveTrace* trace = nullptr;  // CPU only: when given, filled in
  Merge merge = Merge::gain;    // multiclass output only
};

// Scratch memory handed in by the caller (a torch allocation on the probabilities' device), of at least
// workspace_bytes() bytes, 256-byte aligned. The CPU needs none.
struct Workspace {
  void* data = nullptr;
  int64_t bytes = 0;
};

enum class Output : int { multilabel = 0, multiclass = 1 };

// Throws std::invalid_argument unless the view has B >= 0, C >= 1, N >= 1, non-negative strides and data.
void check_probs_view(const ProbsView& probs);

// How many bytes of workspace a call with these arguments needs on `device`.
int64_t workspace_bytes(const ProbsView& probs, Output output, const Device& device);

// Writes the RMA mask of every (image, class) into out, a contiguous bool array (batch, classes, pixels).
// `first_invalid` (CUDA only; may be null) receives, as an int64 on the device, the index b * C + c of the
// first (image, class) holding a NaN or a value outside [0, 1], or -1; the CPU throws instead.
void rma_multilabel(const ProbsView& probs, const RmaOptions& options, const Device& device, Workspace workspace,
                    bool* out, int64_t* first_invalid);

// Writes one label per pixel into out, a contiguous int64 array (batch, pixels).
void rma_multiclass(const ProbsView& probs, const RmaOptions& options, Unassigned policy, int64_t void_index,
                    const Device& device, Workspace workspace, int64_t* out, int64_t* first_invalid);

// The solvers that sort each class, on the CPU: the exact expected Dice (Dice, any s >= 0) and
// RankDice's approximations (Dai & Li 2023; eps is the tail mass they leave out).
enum class Solver : int { exact = 0, ba = 1, trna = 2, ba_trna = 3 };
struct SortedOptions {
  Solver solver;
  double smooth;
  double pruning_prob;
  int num_threads;
  Pruning pruning = Pruning::max_prob;
  Merge merge = Merge::gain;  // multiclass output only
  double eps = 0.0;           // BA, TRNA and BA+TRNA only: the tail mass their approximations leave out
};
void sorted_multilabel(const ProbsView& probs, const SortedOptions& options, bool* out);
void sorted_multiclass(const ProbsView& probs, const SortedOptions& options, Unassigned policy, int64_t void_index,
                       int64_t* out);

// The exact expected Dice or IoU, under independent Bernoulli(probs) labels, of each mask in `masks` (a
// contiguous bool array (batch, classes, pixels)), written to out, a contiguous double array (batch,
// classes). `empty` is the score of 0/0 (s = 0, empty mask and no positive label). CPU only.
void expected_scores(const ProbsView& probs, const bool* masks, Metric metric, double smooth, double empty,
                     int num_threads, double* out);

// Whether CUDA kernels were compiled in, and for which architectures ("90;100", empty without CUDA).
bool cuda_compiled();
const char* cuda_architectures();
// The CUDA runtime the kernels were built against (e.g. 13000), and how many devices it sees now
// (0 without a driver or GPU; never throws). Both 0 without CUDA kernels.
int cuda_runtime_version();
int cuda_device_count();

}  // namespace rankseg

// rankseg._C: the compiled core. Python owns every tensor and passes plain descriptors; nothing here links
// libtorch, so one build works with every torch version. Each descriptor is checked before use.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "core.h"

namespace py = pybind11;

namespace {

// The dtype codes of rankseg._ops._DTYPE_CODES.
enum class DType : int { float32 = 0, float64 = 1, float16 = 2, bfloat16 = 3, boolean = 4, int64 = 5, uint8 = 6 };

// (data_ptr, dtype code, device type, device index, sizes, strides), as built by rankseg._ops.describe().
using Descriptor = std::tuple<uintptr_t, int, std::string, int, std::vector<int64_t>, std::vector<int64_t>>;

const std::vector<int64_t>& sizes_of(const Descriptor& d) { return std::get<4>(d); }
const std::vector<int64_t>& strides_of(const Descriptor& d) { return std::get<5>(d); }

std::string shape_str(const std::vector<int64_t>& sizes) {
  std::string s = "(";
  for (size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
  return s + (sizes.size() == 1 ? ",)" : ")");
}

rankseg::Device device_of(const Descriptor& d, const char* name, uintptr_t stream) {
  const std::string& type = std::get<2>(d);
  if (sizes_of(d).size() != strides_of(d).size())
    throw std::invalid_argument(std::string(name) + ": sizes and strides differ in length");
  if (type == "cpu") return {rankseg::DeviceType::cpu, 0, 0};
  if (type == "cuda") return {rankseg::DeviceType::cuda, std::get<3>(d), stream};
  throw std::invalid_argument(std::string(name) + " must be on a CPU or CUDA device, got '" + type + "'");
}

void check_same_device(const rankseg::Device& expected, const Descriptor& d, const char* name) {
  const rankseg::Device got = device_of(d, name, expected.stream);
  if (got.type != expected.type || got.index != expected.index)
    throw std::invalid_argument(std::string(name) + " must be on the same device as probs");
}

rankseg::ProbsView probs_view(const Descriptor& d) {
  const auto& sizes = sizes_of(d);
  const auto& strides = strides_of(d);
  if (sizes.size() != 3)
    throw std::invalid_argument("probs must be 3-D (B, C, N), got " + std::to_string(sizes.size()) + "-D");
  const int code = std::get<1>(d);
  if (code < 0 || code > int(DType::bfloat16))
    throw std::invalid_argument("probs must be float16, bfloat16, float32 or float64 (dtype code " +
                                std::to_string(code) + ")");
  const rankseg::ProbsView view{reinterpret_cast<const void*>(std::get<0>(d)), rankseg::ProbsDType(code), sizes[0],
                                sizes[1], sizes[2], strides[0], strides[1], strides[2]};
  rankseg::check_probs_view(view);
  return view;
}

// A contiguous tensor of exactly the expected shape and dtype, on the device of probs.
void* contiguous_ptr(const Descriptor& d, const char* name, DType dtype, const std::vector<int64_t>& expected,
                     const rankseg::Device& device) {
  check_same_device(device, d, name);
  if (std::get<1>(d) != int(dtype)) throw std::invalid_argument(std::string(name) + " has the wrong dtype");
  if (sizes_of(d) != expected)
    throw std::invalid_argument(std::string(name) + " must have shape " + shape_str(expected) + ", got " +
                                shape_str(sizes_of(d)));
  int64_t step = 1;
  for (size_t i = expected.size(); i-- > 0;) {
    if (expected[i] != 1 && strides_of(d)[i] != step)
      throw std::invalid_argument(std::string(name) + " must be contiguous");
    step *= expected[i];
  }
  return reinterpret_cast<void*>(std::get<0>(d));
}

rankseg::Workspace workspace_of(const std::optional<Descriptor>& d, const rankseg::Device& device) {
  if (!d) return {};
  const auto& sizes = sizes_of(*d);
  if (sizes.size() != 1) throw std::invalid_argument("workspace must be 1-D");
  void* data = contiguous_ptr(*d, "workspace", DType::uint8, sizes, device);
  if (sizes[0] > 0 && reinterpret_cast<uintptr_t>(data) % 256 != 0)
    throw std::invalid_argument("workspace must be 256-byte aligned");
  return {data, sizes[0]};
}

int64_t* first_invalid_of(const std::optional<Descriptor>& d, const rankseg::Device& device) {
  if (!d) return nullptr;
  return static_cast<int64_t*>(contiguous_ptr(*d, "first_invalid", DType::int64, {1}, device));
}

rankseg::RmaOptions options(int metric, double smooth, double pruning_prob, int num_threads, int pruning = 0) {
  return {rankseg::Metric(metric), smooth, pruning_prob, num_threads, rankseg::Pruning(pruning)};
}

// A solve trace for a call whose `trace` argument is a dict (CPU only), written into that dict afterwards.
class TraceRequest {
 public:
  TraceRequest(const py::object& trace, const rankseg::Device& device) {
    if (trace.is_none()) return;
    if (!py::isinstance<py::dict>(trace)) throw py::type_error("trace must be a dict or None");
    if (device.type != rankseg::DeviceType::cpu) throw std::invalid_argument("trace is recorded on the CPU only");
    dict_ = trace;
  }
  rankseg::SolveTrace* target() { return dict_.is_none() ? nullptr : &trace_; }
  void write_back() const {
    if (dict_.is_none()) return;
    py::dict d = dict_;
    d["per_class"] = trace_.per_class;
    d["chunk_parallel"] = trace_.chunk_parallel;
    d["threshold_band"] = trace_.threshold_band;
    d["threshold_full"] = trace_.threshold_full;
    d["smoothed_band"] = trace_.smoothed_band;
    d["histogram"] = trace_.histogram;
    d["max_steps"] = trace_.max_steps;
  }

 private:
  py::object dict_ = py::none();
  rankseg::SolveTrace trace_;
};

// The sorting solvers and expected scores run on the CPU only.
rankseg::ProbsView cpu_probs_view(const Descriptor& d) {
  if (device_of(d, "probs", 0).type != rankseg::DeviceType::cpu)
    throw std::invalid_argument("probs must be a CPU tensor for this solver");
  return probs_view(d);
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "Compiled RankSEG kernels.";

  m.def(
      "workspace_bytes",
      [](const Descriptor& probs, int output) {
        if (output != 0 && output != 1) throw std::invalid_argument("unknown output code");
        return rankseg::workspace_bytes(probs_view(probs), rankseg::Output(output), device_of(probs, "probs", 0));
      },
      py::arg("probs"), py::arg("output"), "Bytes of workspace a call needs (0 on the CPU).");

  m.def(
      "rma_multilabel",
      [](const Descriptor& probs, const Descriptor& out, int metric, double smooth, double pruning_prob,
         int num_threads, uintptr_t stream, const std::optional<Descriptor>& workspace,
         const std::optional<Descriptor>& first_invalid, const py::object& trace) {
        const rankseg::ProbsView view = probs_view(probs);
        const rankseg::Device device = device_of(probs, "probs", stream);
        auto* mask =
            static_cast<bool*>(contiguous_ptr(out, "out", DType::boolean, sizes_of(probs), device));
        const rankseg::Workspace ws = workspace_of(workspace, device);
        int64_t* invalid = first_invalid_of(first_invalid, device);
        TraceRequest traced(trace, device);
        rankseg::RmaOptions o = options(metric, smooth, pruning_prob, num_threads);
        o.trace = traced.target();
        {
          py::gil_scoped_release release;
          rankseg::rma_multilabel(view, o, device, ws, mask, invalid);
        }
        traced.write_back();
      },
      py::arg("probs"), py::arg("out"), py::arg("metric"), py::arg("smooth"), py::arg("pruning_prob"),
      py::arg("num_threads"), py::arg("stream") = 0, py::arg("workspace") = py::none(),
      py::arg("first_invalid") = py::none(), py::arg("trace") = py::none(),
      "RMA masks (B, C, N) bool for probabilities (B, C, N); a dict `trace` receives the branches taken.");

  m.def(
      "rma_multiclass",
      [](const Descriptor& probs, const Descriptor& out, int metric, double smooth, double pruning_prob,
         int unassigned, int64_t void_index, int num_threads, uintptr_t stream,
         const std::optional<Descriptor>& workspace, const std::optional<Descriptor>& first_invalid, int pruning,
         const py::object& trace, int merge) {
        const rankseg::ProbsView view = probs_view(probs);
        const rankseg::Device device = device_of(probs, "probs", stream);
        const std::vector<int64_t> shape{view.batch, view.pixels};
        auto* labels = static_cast<int64_t*>(contiguous_ptr(out, "out", DType::int64, shape, device));
        const rankseg::Workspace ws = workspace_of(workspace, device);
        int64_t* invalid = first_invalid_of(first_invalid, device);
        TraceRequest traced(trace, device);
        rankseg::RmaOptions o = options(metric, smooth, pruning_prob, num_threads, pruning);
        o.trace = traced.target();
        o.merge = rankseg::Merge(merge);
        {
          py::gil_scoped_release release;
          rankseg::rma_multiclass(view, o, rankseg::Unassigned(unassigned), void_index, device, ws, labels, invalid);
        }
        traced.write_back();
      },
      py::arg("probs"), py::arg("out"), py::arg("metric"), py::arg("smooth"), py::arg("pruning_prob"),
      py::arg("unassigned"), py::arg("void_index"), py::arg("num_threads"), py::arg("stream") = 0,
      py::arg("workspace") = py::none(), py::arg("first_invalid") = py::none(), py::arg("pruning") = 0,
      py::arg("trace") = py::none(), py::arg("merge") = 0,
      "RMA label map (B, N) int64 for probabilities (B, C, N); a dict `trace` receives the branches taken.");

  m.def(
      "sorted_multilabel",
      [](const Descriptor& probs, const Descriptor& out, int solver, double smooth, double pruning_prob, double eps,
         int num_threads) {
        const rankseg::ProbsView view = cpu_probs_view(probs);
        auto* mask = static_cast<bool*>(
            contiguous_ptr(out, "out", DType::boolean, sizes_of(probs), rankseg::Device{}));
        py::gil_scoped_release release;
        rankseg::sorted_multilabel(view, {rankseg::Solver(solver), smooth, pruning_prob, eps, num_threads}, mask);
      },
      py::arg("probs"), py::arg("out"), py::arg("solver"), py::arg("smooth"), py::arg("pruning_prob"),
      py::arg("eps"), py::arg("num_threads"), "Masks (B, C, N) bool of the exact, BA or TRNA solver.");

  m.def(
      "sorted_multiclass",
      [](const Descriptor& probs, const Descriptor& out, int solver, double smooth, double pruning_prob, double eps,
         int unassigned, int64_t void_index, int num_threads, int pruning, int merge) {
        const rankseg::ProbsView view = cpu_probs_view(probs);
        const std::vector<int64_t> shape{view.batch, view.pixels};
        auto* labels =
            static_cast<int64_t*>(contiguous_ptr(out, "out", DType::int64, shape, rankseg::Device{}));
        py::gil_scoped_release release;
        const rankseg::SortedOptions o{rankseg::Solver(solver), smooth, pruning_prob, eps, num_threads,
                                       rankseg::Pruning(pruning), rankseg::Merge(merge)};
        rankseg::sorted_multiclass(view, o, rankseg::Unassigned(unassigned), void_index, labels);
      },
      py::arg("probs"), py::arg("out"), py::arg("solver"), py::arg("smooth"), py::arg("pruning_prob"),
      py::arg("eps"), py::arg("unassigned"), py::arg("void_index"), py::arg("num_threads"), py::arg("pruning") = 0,
      py::arg("merge") = 0, "Label map (B, N) int64 from the exact solver's masks and the RMA merge.");

  m.def(
      "expected_scores",
      [](const Descriptor& probs, const Descriptor& masks, const Descriptor& out, int metric, double smooth,
         double empty, int num_threads) {
        const rankseg::ProbsView view = cpu_probs_view(probs);
        const rankseg::Device cpu{};
        auto* selected = static_cast<bool*>(contiguous_ptr(masks, "masks", DType::boolean, sizes_of(probs), cpu));
        const std::vector<int64_t> shape{view.batch, view.classes};
        auto* scores = static_cast<double*>(contiguous_ptr(out, "out", DType::float64, shape, cpu));
        py::gil_scoped_release release;
        rankseg::expected_scores(view, selected, rankseg::Metric(metric), smooth, empty, num_threads, scores);
      },
      py::arg("probs"), py::arg("masks"), py::arg("out"), py::arg("metric"), py::arg("smooth"), py::arg("empty"),
      py::arg("num_threads"), "Exact expected Dice or IoU (B, C) float64 of masks (B, C, N) under probs (B, C, N).");

  m.def("cuda_compiled", &rankseg::cuda_compiled, "Whether CUDA kernels were compiled in.");
  m.def("cuda_architectures", &rankseg::cuda_architectures, "CUDA architectures compiled for, ';'-separated.");
  m.def("cuda_runtime_version", &rankseg::cuda_runtime_version, "CUDA runtime version built against (0: none).");
  m.def("cuda_device_count", &rankseg::cuda_device_count, "CUDA devices usable now (0 without driver or GPU).");
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  m.attr("cpu_instruction_sets") = "x86-64-v3 (AVX2), x86-64";
  // The clone GCC's target_clones resolver picks on this CPU (streaming.cpp): the same test it makes.
  m.def("cpu_dispatched", [] {
    __builtin_cpu_init();
    return std::string(__builtin_cpu_supports("x86-64-v3") ? "x86-64-v3 (AVX2)" : "x86-64");
  });
#else
  m.attr("cpu_instruction_sets") = "baseline";
  m.def("cpu_dispatched", [] { return std::string("baseline"); });
#endif
}

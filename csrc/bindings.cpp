// rankseg._C: the compiled core. Python owns every tensor and hands over named references to them (a TensorRef:
// pointer, element type, device, sizes, strides); nothing here links libtorch, so one build works with every
// torch version. The codes are the enums of core.h, exported to Python, so no code is written twice.
// This file translates; the rules of a call are checked once, by the entry points of dispatch.cpp.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "config.h"
#include "core.h"

namespace py = pybind11;

namespace {

// The element types a tensor crossing the boundary may have: the probabilities' and each output's.
enum class ScalarType : int { float32, float64, float16, bfloat16, boolean, int64, uint8 };

// A tensor as Python describes it (rankseg._ops.TensorRef, a named tuple in this order); sizes and strides in
// elements.
struct TensorRef {
  uintptr_t data = 0;
  ScalarType dtype = ScalarType::float32;
  rankseg::DeviceType device = rankseg::DeviceType::cpu;
  int device_index = 0;
  std::vector<int64_t> sizes, strides;
};

// What a call on a CUDA device needs besides its tensors (rankseg._ops.CudaArgs): the stream it is enqueued on,
// the workspace, and, when values are checked, the int64 the kernels report the first invalid (image, class) in.
struct CudaArgs {
  uintptr_t stream = 0;
  TensorRef workspace;
  std::optional<TensorRef> first_invalid;
};

}  // namespace

namespace pybind11::detail {

template <class T>
bool load_item(handle item, T& value, bool convert) {
  make_caster<T> caster;
  if (!caster.load(item, convert)) return false;
  value = cast_op<T>(std::move(caster));
  return true;
}

template <>
struct type_caster<TensorRef> {
  PYBIND11_TYPE_CASTER(TensorRef, const_name("TensorRef"));
  bool load(handle src, bool convert) {
    if (!isinstance<tuple>(src)) return false;
    const auto t = reinterpret_borrow<tuple>(src);
    return t.size() == 6 && load_item(t[0], value.data, convert) && load_item(t[1], value.dtype, convert) &&
           load_item(t[2], value.device, convert) && load_item(t[3], value.device_index, convert) &&
           load_item(t[4], value.sizes, convert) && load_item(t[5], value.strides, convert);
  }
};

template <>
struct type_caster<CudaArgs> {
  PYBIND11_TYPE_CASTER(CudaArgs, const_name("CudaArgs"));
  bool load(handle src, bool convert) {
    if (!isinstance<tuple>(src)) return false;
    const auto t = reinterpret_borrow<tuple>(src);
    return t.size() == 3 && load_item(t[0], value.stream, convert) && load_item(t[1], value.workspace, convert) &&
           load_item(t[2], value.first_invalid, convert);
  }
};

}  // namespace pybind11::detail

namespace {

std::string shape_str(const std::vector<int64_t>& sizes) {
  std::string s = "(";
  for (size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
  return s + (sizes.size() == 1 ? ",)" : ")");
}

// The device of a tensor, with the stream of the call when it is a CUDA device.
rankseg::Device device_of(const TensorRef& t, const char* name, const std::optional<CudaArgs>& cuda) {
  if (t.sizes.size() != t.strides.size())
    throw std::invalid_argument(std::string(name) + ": sizes and strides differ in length");
  if (t.device == rankseg::DeviceType::cpu) return {};
  return {t.device, t.device_index, cuda ? cuda->stream : 0};
}

rankseg::ProbsDType probs_dtype(ScalarType dtype) {
  switch (dtype) {
    case ScalarType::float32: return rankseg::ProbsDType::float32;
    case ScalarType::float64: return rankseg::ProbsDType::float64;
    case ScalarType::float16: return rankseg::ProbsDType::float16;
    case ScalarType::bfloat16: return rankseg::ProbsDType::bfloat16;
    default: throw std::invalid_argument("probs must be float16, bfloat16, float32 or float64");
  }
}

rankseg::ProbsView probs_view(const TensorRef& t) {
  if (t.sizes.size() != 3)
    throw std::invalid_argument("probs must be 3-D (B, C, N), got " + std::to_string(t.sizes.size()) + "-D");
  if (t.strides.size() != 3) throw std::invalid_argument("probs: sizes and strides differ in length");
  const auto* data = reinterpret_cast<const void*>(t.data);
  const rankseg::ProbsView view{data,       probs_dtype(t.dtype), t.sizes[0],   t.sizes[1],
                                t.sizes[2], t.strides[0],         t.strides[1], t.strides[2]};
  rankseg::check_probs_view(view);  // before the outputs are checked against its shape
  return view;
}

// The data of a contiguous tensor of exactly the expected shape and element type, on the device of probs.
void* contiguous_ptr(const TensorRef& t, const char* name, ScalarType dtype, const std::vector<int64_t>& expected,
                     const rankseg::Device& device) {
  const rankseg::Device got = device_of(t, name, std::nullopt);
  if (got.type != device.type || got.index != device.index)
    throw std::invalid_argument(std::string(name) + " must be on the same device as probs");
  if (t.dtype != dtype) throw std::invalid_argument(std::string(name) + " has the wrong dtype");
  if (t.sizes != expected)
    throw std::invalid_argument(std::string(name) + " must have shape " + shape_str(expected) + ", got " +
                                shape_str(t.sizes));
  int64_t step = 1;
  for (size_t i = expected.size(); i-- > 0;) {
    if (expected[i] != 1 && t.strides[i] != step)
      throw std::invalid_argument(std::string(name) + " must be contiguous");
    step *= expected[i];
  }
  return reinterpret_cast<void*>(t.data);
}

rankseg::Workspace workspace_of(const std::optional<CudaArgs>& cuda, const rankseg::Device& device) {
  if (!cuda) return {};
  const TensorRef& t = cuda->workspace;
  if (t.sizes.size() != 1) throw std::invalid_argument("workspace must be 1-D");
  void* data = contiguous_ptr(t, "workspace", ScalarType::uint8, t.sizes, device);
  if (t.sizes[0] > 0 && reinterpret_cast<uintptr_t>(data) % 256 != 0)
    throw std::invalid_argument("workspace must be 256-byte aligned");
  return {data, t.sizes[0]};
}

int64_t* first_invalid_of(const std::optional<CudaArgs>& cuda, const rankseg::Device& device) {
  if (!cuda || !cuda->first_invalid) return nullptr;
  return static_cast<int64_t*>(contiguous_ptr(*cuda->first_invalid, "first_invalid", ScalarType::int64, {1}, device));
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
rankseg::ProbsView cpu_probs_view(const TensorRef& t) {
  if (device_of(t, "probs", std::nullopt).type != rankseg::DeviceType::cpu)
    throw std::invalid_argument("probs must be a CPU tensor for this solver");
  return probs_view(t);
}

void export_enums(py::module_& m) {
  py::enum_<ScalarType>(m, "ScalarType", "Element types of the tensors a call takes.")
      .value("float32", ScalarType::float32)
      .value("float64", ScalarType::float64)
      .value("float16", ScalarType::float16)
      .value("bfloat16", ScalarType::bfloat16)
      .value("boolean", ScalarType::boolean)
      .value("int64", ScalarType::int64)
      .value("uint8", ScalarType::uint8);
  py::enum_<rankseg::DeviceType>(m, "DeviceType", "Where a tensor's data lives.")
      .value("cpu", rankseg::DeviceType::cpu)
      .value("cuda", rankseg::DeviceType::cuda);
  py::enum_<rankseg::Metric>(m, "Metric", "The score RMA maximises.")
      .value("dice", rankseg::Metric::dice)
      .value("iou", rankseg::Metric::iou);
  py::enum_<rankseg::Unassigned>(m, "Unassigned", "The label of a pixel no class selects (multiclass output).")
      .value("max_score", rankseg::Unassigned::max_score)
      .value("void_label", rankseg::Unassigned::void_label);
  py::enum_<rankseg::Pruning>(m, "Pruning", "Which classes get a mask at all.")
      .value("max_prob", rankseg::Pruning::max_prob)
      .value("argmax", rankseg::Pruning::argmax);
  py::enum_<rankseg::Merge>(m, "Merge", "How the multiclass merge settles a pixel several classes select, or none.")
      .value("gain", rankseg::Merge::gain)
      .value("probability", rankseg::Merge::probability);
  py::enum_<rankseg::Solver>(m, "Solver", "The solvers that sort each class.")
      .value("exact", rankseg::Solver::exact)
      .value("ba", rankseg::Solver::ba)
      .value("trna", rankseg::Solver::trna)
      .value("ba_trna", rankseg::Solver::ba_trna);
  py::enum_<rankseg::Output>(m, "Output", "What a call writes: a mask per class or a label per pixel.")
      .value("multilabel", rankseg::Output::multilabel)
      .value("multiclass", rankseg::Output::multiclass);
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "Compiled RankSEG kernels.";
  export_enums(m);

  m.def(
      "workspace_bytes",
      [](const TensorRef& probs, rankseg::Output output) {
        return rankseg::workspace_bytes(probs_view(probs), output, device_of(probs, "probs", std::nullopt));
      },
      py::arg("probs"), py::arg("output"), "Bytes of workspace a call needs (0 on the CPU).");

  m.def(
      "rma_multilabel",
      [](const TensorRef& probs, const TensorRef& out, rankseg::Metric metric, double smooth, double pruning_prob,
         int num_threads, const std::optional<CudaArgs>& cuda, const py::object& trace) {
        const rankseg::ProbsView view = probs_view(probs);
        const rankseg::Device device = device_of(probs, "probs", cuda);
        auto* mask = static_cast<bool*>(contiguous_ptr(out, "out", ScalarType::boolean, probs.sizes, device));
        const rankseg::Workspace ws = workspace_of(cuda, device);
        int64_t* invalid = first_invalid_of(cuda, device);
        TraceRequest traced(trace, device);
        rankseg::RmaOptions o{metric, smooth, pruning_prob, num_threads};
        o.trace = traced.target();
        {
          py::gil_scoped_release release;
          rankseg::rma_multilabel(view, o, device, ws, mask, invalid);
        }
        traced.write_back();
      },
      py::arg("probs"), py::arg("out"), py::arg("metric"), py::arg("smooth"), py::arg("pruning_prob"),
      py::arg("num_threads"), py::arg("cuda") = py::none(), py::arg("trace") = py::none(),
      "RMA masks (B, C, N) bool for probabilities (B, C, N); a dict `trace` receives the branches taken.");

  m.def(
      "rma_multiclass",
      [](const TensorRef& probs, const TensorRef& out, rankseg::Metric metric, double smooth, double pruning_prob,
         rankseg::Pruning pruning, rankseg::Merge merge, rankseg::Unassigned unassigned, int64_t void_index,
         int num_threads, const std::optional<CudaArgs>& cuda, const py::object& trace) {
        const rankseg::ProbsView view = probs_view(probs);
        const rankseg::Device device = device_of(probs, "probs", cuda);
        const std::vector<int64_t> shape{view.batch, view.pixels};
        auto* labels = static_cast<int64_t*>(contiguous_ptr(out, "out", ScalarType::int64, shape, device));
        const rankseg::Workspace ws = workspace_of(cuda, device);
        int64_t* invalid = first_invalid_of(cuda, device);
        TraceRequest traced(trace, device);
        rankseg::RmaOptions o{metric, smooth, pruning_prob, num_threads, pruning};
        o.trace = traced.target();
        o.merge = merge;
        {
          py::gil_scoped_release release;
          rankseg::rma_multiclass(view, o, unassigned, void_index, device, ws, labels, invalid);
        }
        traced.write_back();
      },
      py::arg("probs"), py::arg("out"), py::arg("metric"), py::arg("smooth"), py::arg("pruning_prob"),
      py::arg("pruning"), py::arg("merge"), py::arg("unassigned"), py::arg("void_index"), py::arg("num_threads"),
      py::arg("cuda") = py::none(), py::arg("trace") = py::none(),
      "RMA label map (B, N) int64 for probabilities (B, C, N); a dict `trace` receives the branches taken.");

  m.def(
      "sorted_multilabel",
      [](const TensorRef& probs, const TensorRef& out, rankseg::Solver solver, double smooth, double pruning_prob,
         double eps, int num_threads) {
        const rankseg::ProbsView view = cpu_probs_view(probs);
        auto* mask =
            static_cast<bool*>(contiguous_ptr(out, "out", ScalarType::boolean, probs.sizes, rankseg::Device{}));
        rankseg::SortedOptions o{solver, smooth, pruning_prob, num_threads};
        o.eps = eps;
        py::gil_scoped_release release;
        rankseg::sorted_multilabel(view, o, mask);
      },
      py::arg("probs"), py::arg("out"), py::arg("solver"), py::arg("smooth"), py::arg("pruning_prob"), py::arg("eps"),
      py::arg("num_threads"), "Masks (B, C, N) bool of the exact, BA or TRNA solver.");

  m.def(
      "exact_multiclass",
      [](const TensorRef& probs, const TensorRef& out, double smooth, double pruning_prob, rankseg::Pruning pruning,
         rankseg::Merge merge, rankseg::Unassigned unassigned, int64_t void_index, int num_threads) {
        const rankseg::ProbsView view = cpu_probs_view(probs);
        const std::vector<int64_t> shape{view.batch, view.pixels};
        auto* labels = static_cast<int64_t*>(contiguous_ptr(out, "out", ScalarType::int64, shape, rankseg::Device{}));
        rankseg::SortedOptions o{rankseg::Solver::exact, smooth, pruning_prob, num_threads, pruning};
        o.merge = merge;
        py::gil_scoped_release release;
        rankseg::sorted_multiclass(view, o, unassigned, void_index, labels);
      },
      py::arg("probs"), py::arg("out"), py::arg("smooth"), py::arg("pruning_prob"), py::arg("pruning"),
      py::arg("merge"), py::arg("unassigned"), py::arg("void_index"), py::arg("num_threads"),
      "Label map (B, N) int64 from the exact solver's masks and the RMA merge.");

  m.def(
      "expected_scores",
      [](const TensorRef& probs, const TensorRef& masks, const TensorRef& out, rankseg::Metric metric, double smooth,
         double empty, int num_threads) {
        const rankseg::ProbsView view = cpu_probs_view(probs);
        const rankseg::Device cpu{};
        auto* selected = static_cast<bool*>(contiguous_ptr(masks, "masks", ScalarType::boolean, probs.sizes, cpu));
        const std::vector<int64_t> shape{view.batch, view.classes};
        auto* scores = static_cast<double*>(contiguous_ptr(out, "out", ScalarType::float64, shape, cpu));
        py::gil_scoped_release release;
        rankseg::expected_scores(view, selected, metric, smooth, empty, num_threads, scores);
      },
      py::arg("probs"), py::arg("masks"), py::arg("out"), py::arg("metric"), py::arg("smooth"), py::arg("empty"),
      py::arg("num_threads"), "Exact expected Dice or IoU (B, C) float64 of masks (B, C, N) under probs (B, C, N).");

  m.def("cuda_compiled", &rankseg::cuda_compiled, "Whether CUDA kernels were compiled in.");
  m.def("cuda_architectures", &rankseg::cuda_architectures, "CUDA architectures compiled for, ';'-separated.");
  m.def("cuda_runtime_version", &rankseg::cuda_runtime_version, "CUDA runtime version built against (0: none).");
  m.def("cuda_device_count", &rankseg::cuda_device_count, "CUDA devices usable now (0 without driver or GPU).");
#if RANKSEG_ISA_CLONES
  m.attr("cpu_instruction_sets") = "x86-64-v3 (AVX2), x86-64";
  // The clone GCC's target_clones resolver picks on this CPU (RANKSEG_CLONES, config.h): the same test it makes.
  m.def("cpu_dispatched", [] {
    __builtin_cpu_init();
    return std::string(__builtin_cpu_supports("x86-64-v3") ? "x86-64-v3 (AVX2)" : "x86-64");
  });
#else
  m.attr("cpu_instruction_sets") = "baseline";
  m.def("cpu_dispatched", [] { return std::string("baseline"); });
#endif
}

// rankseg._C: the compiled core. Python owns every tensor and passes plain descriptors; nothing here links
// libtorch, so one build works with every torch version. Each descriptor is checked before use.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "rma.h"

namespace py = pybind11;

namespace {

// (data_ptr, dtype code, device type, sizes, strides), as built by rankseg._ops.describe().
using Descriptor = std::tuple<uintptr_t, int, std::string, std::vector<int64_t>, std::vector<int64_t>>;

std::string shape_str(const std::vector<int64_t>& sizes) {
  std::string s = "(";
  for (size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
  return s + (sizes.size() == 1 ? ",)" : ")");
}

void check_cpu(const Descriptor& d, const char* name) {
  if (std::get<2>(d) != "cpu")
    throw std::invalid_argument(std::string(name) + " must be a CPU tensor for the CPU kernel, got device '" +
                                std::get<2>(d) + "'");
  if (std::get<3>(d).size() != std::get<4>(d).size())
    throw std::invalid_argument(std::string(name) + ": sizes and strides differ in length");
}

rankseg::ProbsView probs_view(const Descriptor& d) {
  check_cpu(d, "probs");
  const auto& sizes = std::get<3>(d);
  const auto& strides = std::get<4>(d);
  if (sizes.size() != 3)
    throw std::invalid_argument("probs must be 3-D (B, C, N), got " + std::to_string(sizes.size()) + "-D");
  const int code = std::get<1>(d);
  if (code < 0 || code > int(rankseg::DType::bfloat16))
    throw std::invalid_argument("probs must be float16, bfloat16, float32 or float64 (dtype code " +
                                std::to_string(code) + ")");
  const rankseg::ProbsView view{reinterpret_cast<const void*>(std::get<0>(d)), rankseg::DType(code), sizes[0],
                                sizes[1], sizes[2], strides[0], strides[1], strides[2]};
  rankseg::check_probs_view(view);
  return view;
}

// The output must be a contiguous tensor of exactly the expected shape and dtype.
void* output_ptr(const Descriptor& d, rankseg::DType dtype, const std::vector<int64_t>& expected) {
  check_cpu(d, "out");
  if (std::get<1>(d) != int(dtype)) throw std::invalid_argument("out has the wrong dtype");
  if (std::get<3>(d) != expected)
    throw std::invalid_argument("out must have shape " + shape_str(expected) + ", got " + shape_str(std::get<3>(d)));
  int64_t step = 1;
  const auto& strides = std::get<4>(d);
  for (size_t i = expected.size(); i-- > 0;) {
    if (expected[i] != 1 && strides[i] != step) throw std::invalid_argument("out must be contiguous");
    step *= expected[i];
  }
  return reinterpret_cast<void*>(std::get<0>(d));
}

rankseg::RmaOptions options(int metric, double smooth, double pruning_prob, int num_threads) {
  return {rankseg::Metric(metric), smooth, pruning_prob, num_threads};
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "Compiled RankSEG kernels.";

  m.def(
      "rma_multilabel",
      [](const Descriptor& probs, const Descriptor& out, int metric, double smooth, double pruning_prob,
         int num_threads) {
        const rankseg::ProbsView view = probs_view(probs);
        auto* mask = static_cast<bool*>(output_ptr(out, rankseg::DType::boolean, std::get<3>(probs)));
        py::gil_scoped_release release;
        rankseg::rma_multilabel(view, options(metric, smooth, pruning_prob, num_threads), mask);
      },
      py::arg("probs"), py::arg("out"), py::arg("metric"), py::arg("smooth"), py::arg("pruning_prob"),
      py::arg("num_threads"), "RMA masks (B, C, N) bool for probabilities (B, C, N).");

  m.def(
      "rma_multiclass",
      [](const Descriptor& probs, const Descriptor& out, int metric, double smooth, double pruning_prob,
         int unassigned, int64_t void_index, int num_threads) {
        const rankseg::ProbsView view = probs_view(probs);
        const std::vector<int64_t> shape{view.batch, view.pixels};
        auto* labels = static_cast<int64_t*>(output_ptr(out, rankseg::DType::int64, shape));
        py::gil_scoped_release release;
        rankseg::rma_multiclass(view, options(metric, smooth, pruning_prob, num_threads),
                                rankseg::Unassigned(unassigned), void_index, labels);
      },
      py::arg("probs"), py::arg("out"), py::arg("metric"), py::arg("smooth"), py::arg("pruning_prob"),
      py::arg("unassigned"), py::arg("void_index"), py::arg("num_threads"),
      "RMA label map (B, N) int64 for probabilities (B, C, N).");

#ifdef RANKSEG_WITH_CUDA
  m.attr("cuda_toolkit") = true;
#else
  m.attr("cuda_toolkit") = false;
#endif
}

#include "client/output/catalog.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/output/json.h"
#include "common/naming/names.h"
#include "nlohmann/json.hpp"

namespace garden::client {
namespace {

namespace pb = ::garden::v1;

std::string ModelName(const pb::ModelRef& m) {
  return ModelKey{m.suite(), m.size(), m.variant()}.Name();
}

nlohmann::json ModelsJson(const pb::ListModelsResponse& response) {
  nlohmann::json models = nlohmann::json::array();
  for (const auto& m : response.models()) {
    models.push_back({
        {"suite", m.model().suite()},
        {"size", m.model().size()},
        {"variant", m.model().variant()},
        {"name", ModelName(m.model())},
        {"repo_id", m.repo_id()},
        {"layout", m.layout()},
        {"steps", std::vector<int64_t>(m.steps().begin(), m.steps().end())},
        {"missing_from_schedule",
         std::vector<int64_t>(m.missing_from_schedule().begin(),
                              m.missing_from_schedule().end())},
    });
  }
  return {{"models", models}};
}

nlohmann::json TensorsJson(const pb::ListTensorsResponse& response) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& t : response.tensors()) {
    tensors.push_back({
        {"name", t.name()},
        {"dtype", t.dtype()},
        {"shape", std::vector<int64_t>(t.shape().begin(), t.shape().end())},
        {"num_bytes", t.num_bytes()},
        {"file", t.file()},
    });
  }
  const auto& ref = response.checkpoint();
  return {{"suite", ref.model().suite()},
          {"size", ref.model().size()},
          {"variant", ref.model().variant()},
          {"step", ref.step()},
          {"tensors", tensors}};
}

}  // namespace

void RenderModels(const pb::ListModelsResponse& response, Format format,
                  std::ostream& out) {
  if (format == Format::kJson) {
    WriteJson(ModelsJson(response), out, 2);
    return;
  }
  out << absl::StrFormat("%-28s %-8s %-10s %6s  %-18s %s\n", "MODEL", "SIZE",
                         "VARIANT", "STEPS", "RANGE", "LAYOUT");
  for (const auto& m : response.models()) {
    const std::string range =
        m.steps().empty()
            ? "-"
            : absl::StrCat(m.steps(0), "..", m.steps(m.steps_size() - 1));
    out << absl::StrFormat("%-28s %-8s %-10s %6d  %-18s %s\n",
                           ModelName(m.model()), m.model().size(),
                           m.model().variant(), m.steps_size(), range,
                           m.layout());
  }
}

void RenderTensors(const pb::ListTensorsResponse& response, Format format,
                   std::ostream& out) {
  if (format == Format::kJson) {
    WriteJson(TensorsJson(response), out, 2);
    return;
  }
  out << absl::StrFormat("%-52s %-5s %-16s %12s  %s\n", "TENSOR", "DTYPE",
                         "SHAPE", "BYTES", "FILE");
  for (const auto& t : response.tensors()) {
    out << absl::StrFormat("%-52s %-5s %-16s %12d  %s\n", t.name(), t.dtype(),
                           absl::StrCat("[", absl::StrJoin(t.shape(), ", "), "]"),
                           t.num_bytes(), t.file());
  }
}

void RenderDatasets(const pb::ListDatasetsResponse& response, Format format,
                    std::ostream& out) {
  if (format == Format::kJson) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& d : response.datasets()) {
      list.push_back({{"name", d.name()}, {"examples", d.examples()}});
    }
    WriteJson({{"datasets", list}}, out);
    return;
  }
  for (const auto& d : response.datasets()) {
    out << absl::StrFormat("%-24s %8d examples\n", d.name(), d.examples());
  }
}

}  // namespace garden::client

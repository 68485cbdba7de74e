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
  return ModelKey{m.suite(), m.size(), m.variant(), m.run()}.Name();
}

nlohmann::json ModelsJson(const pb::ListModelsResponse& response) {
  nlohmann::json models = nlohmann::json::array();
  for (const auto& m : response.models()) {
    models.push_back({
        {"suite", m.model().suite()},
        {"size", m.model().size()},
        {"variant", m.model().variant()},
        {"run", m.model().run()},
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
          {"run", ref.model().run()},
          {"step", ref.step()},
          {"tensors", tensors}};
}

nlohmann::json DatasetsJson(const pb::ListDatasetsResponse& response) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& d : response.datasets()) {
    list.push_back({{"name", d.name()}, {"examples", d.examples()}});
  }
  return {{"datasets", list}};
}

void ModelsTable(const pb::ListModelsResponse& response, std::ostream& out) {
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

void TensorsTable(const pb::ListTensorsResponse& response, std::ostream& out) {
  out << absl::StrFormat("%-52s %-5s %-16s %12s  %s\n", "TENSOR", "DTYPE",
                         "SHAPE", "BYTES", "FILE");
  for (const auto& t : response.tensors()) {
    out << absl::StrFormat(
        "%-52s %-5s %-16s %12d  %s\n", t.name(), t.dtype(),
        absl::StrCat("[", absl::StrJoin(t.shape(), ", "), "]"), t.num_bytes(),
        t.file());
  }
}

void DatasetsTable(const pb::ListDatasetsResponse& response,
                   std::ostream& out) {
  for (const auto& d : response.datasets()) {
    out << absl::StrFormat("%-24s %8d examples\n", d.name(), d.examples());
  }
}

// What every listing does with its format: json writes the document
// to_json builds (indented by `indent`, -1 for one line), table what
// to_table writes.
template <typename Response>
void Render(const Response& response, Format format, int indent,
            nlohmann::json (*to_json)(const Response&),
            void (*to_table)(const Response&, std::ostream&),
            std::ostream& out) {
  if (format == Format::kJson) {
    WriteJson(to_json(response), out, indent);
  } else {
    to_table(response, out);
  }
}

}  // namespace

void RenderModels(const pb::ListModelsResponse& response, Format format,
                  std::ostream& out) {
  Render(response, format, 2, ModelsJson, ModelsTable, out);
}

void RenderTensors(const pb::ListTensorsResponse& response, Format format,
                   std::ostream& out) {
  Render(response, format, 2, TensorsJson, TensorsTable, out);
}

void RenderDatasets(const pb::ListDatasetsResponse& response, Format format,
                    std::ostream& out) {
  Render(response, format, -1, DatasetsJson, DatasetsTable, out);
}

}  // namespace garden::client

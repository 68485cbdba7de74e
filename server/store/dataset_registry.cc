#include "server/store/dataset_registry.h"

#include <sys/stat.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/base/files.h"
#include "common/base/status.h"
#include "common/naming/names.h"
#include "nlohmann/json.hpp"

namespace garden {
namespace {

absl::StatusOr<std::vector<std::string>> ReadTexts(const std::string& path,
                                                   uint64_t max_bytes) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return ErrnoStatus(path, errno, "stat");
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a regular file"));
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": ", st.st_size, " bytes; the limit is ", max_bytes));
  }
  ASSIGN_OR_RETURN(const std::string contents, ReadFileToString(path));
  std::vector<std::string> texts;
  size_t line_number = 0;
  for (absl::string_view piece : absl::StrSplit(contents, '\n')) {
    std::string_view line(piece.data(), piece.size());
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    const auto json = nlohmann::json::parse(line, nullptr,
                                            /*allow_exceptions=*/false);
    if (!json.is_object() || !json.contains("text") ||
        !json["text"].is_string()) {
      return absl::DataLossError(
          absl::StrCat(path, ":", line_number,
                       ": not a JSON object with a string \"text\""));
    }
    texts.push_back(json["text"].get<std::string>());
  }
  if (texts.empty()) {
    return absl::DataLossError(absl::StrCat(path, ": no examples"));
  }
  return texts;
}

}  // namespace

absl::StatusOr<std::unique_ptr<DatasetRegistry>> DatasetRegistry::Open(
    const Options& options) {
  std::unique_ptr<DatasetRegistry> registry(new DatasetRegistry());
  for (const std::string& spec : options.specs) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "dataset \"", spec, "\" is not of the form name=path"));
    }
    auto dataset = std::make_shared<Dataset>();
    dataset->name = spec.substr(0, eq);
    dataset->path = spec.substr(eq + 1);
    RETURN_IF_ERROR(ValidateName("dataset name", dataset->name));
    if (registry->datasets_.count(dataset->name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "dataset \"", dataset->name, "\" is registered twice"));
    }
    ASSIGN_OR_RETURN(dataset->texts,
                     ReadTexts(dataset->path, options.max_file_bytes));
    registry->datasets_[dataset->name] = std::move(dataset);
  }
  return registry;
}

absl::StatusOr<std::shared_ptr<const Dataset>> DatasetRegistry::Find(
    const std::string& name) const {
  auto it = datasets_.find(name);
  if (it != datasets_.end()) return it->second;
  std::vector<std::string> names;
  for (const auto& [n, d] : datasets_) names.push_back(n);
  if (names.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "dataset \"", name,
        "\" is not registered; this server has no datasets (start gardend "
        "with --dataset NAME=FILE.jsonl)"));
  }
  return absl::NotFoundError(absl::StrCat("dataset \"", name,
                                          "\" is not registered; known: ",
                                          absl::StrJoin(names, ", ")));
}

std::vector<std::shared_ptr<const Dataset>> DatasetRegistry::List() const {
  std::vector<std::shared_ptr<const Dataset>> out;
  for (const auto& [name, dataset] : datasets_) out.push_back(dataset);
  return out;
}

}  // namespace garden

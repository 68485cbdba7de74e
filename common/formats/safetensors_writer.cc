#include "common/formats/safetensors_writer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"
#include "common/base/files.h"
#include "nlohmann/json.hpp"

namespace garden {
namespace {

std::string JsonString(const std::string& s) {
  return nlohmann::json(s).dump();
}

}  // namespace

std::string EncodeSafetensors(
    const std::vector<SafetensorsEntry>& tensors,
    const std::map<std::string, std::string>& metadata) {
  // Written by hand rather than through nlohmann::json objects, which would
  // sort the keys: the header keeps the tensors in data order.
  std::string header = "{";
  bool first = true;
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first_entry = true;
    for (const auto& [key, value] : metadata) {
      if (!first_entry) header += ",";
      first_entry = false;
      header += JsonString(key) + ":" + JsonString(value);
    }
    header += "}";
    first = false;
  }
  uint64_t offset = 0;
  size_t data_size = 0;
  for (const SafetensorsEntry& t : tensors) data_size += t.bytes.size();
  for (const SafetensorsEntry& t : tensors) {
    if (!first) header += ",";
    first = false;
    header += JsonString(t.name) + ":{\"dtype\":" + JsonString(t.dtype) +
              ",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) {
      if (i > 0) header += ",";
      header += std::to_string(t.shape[i]);
    }
    const uint64_t end = offset + t.bytes.size();
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(end) + "]}";
    offset = end;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');

  std::string out;
  out.reserve(8 + header.size() + data_size);
  const uint64_t len = header.size();
  for (int i = 0; i < 8; ++i) {
    out.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  }
  out += header;
  for (const SafetensorsEntry& t : tensors) out += t.bytes;
  return out;
}

SafetensorsWriter::SafetensorsWriter() { metadata_["format"] = "pt"; }

absl::Status SafetensorsWriter::Add(std::string name, DType dtype,
                                    std::vector<int64_t> shape,
                                    std::string bytes) {
  if (name.empty() || name == "__metadata__") {
    return absl::InvalidArgumentError(
        absl::StrCat("safetensors: bad tensor name \"", name, "\""));
  }
  if (std::any_of(tensors_.begin(), tensors_.end(),
                  [&](const SafetensorsEntry& t) { return t.name == name; })) {
    return absl::InvalidArgumentError(
        absl::StrCat("safetensors: tensor \"", name, "\" added twice"));
  }
  uint64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "safetensors: tensor \"", name, "\" has a negative dimension"));
    }
    numel *= static_cast<uint64_t>(d);
  }
  if (bytes.size() != numel * DTypeSize(dtype)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "safetensors: tensor \"", name, "\" has ", bytes.size(), " bytes for ",
        numel, " elements of ", ToAbsl(DTypeName(dtype))));
  }
  tensors_.push_back({std::move(name), std::string(DTypeName(dtype)),
                      std::move(shape), std::move(bytes)});
  return absl::OkStatus();
}

void SafetensorsWriter::SetMetadata(std::string key, std::string value) {
  metadata_[std::move(key)] = std::move(value);
}

std::string SafetensorsWriter::Encode() const {
  return EncodeSafetensors(tensors_, metadata_);
}

absl::Status SafetensorsWriter::WriteAtomic(const std::string& path) const {
  return WriteFileAtomic(path, Encode());
}

}  // namespace garden

#include "common/formats/safetensors.h"


#include <algorithm>
#include <set>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"
#include "common/base/file_content.h"
#include "common/base/status.h"
#include "common/base/utf8.h"
#include "nlohmann/json.hpp"

namespace garden {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxRank = 16;
// The reference library's limit on the header length (MAX_HEADER_SIZE).
constexpr uint64_t kReferenceMaxHeaderBytes = 100'000'000;
static_assert(kReferenceMaxHeaderBytes ==
              SafetensorsFile::Options().max_header_bytes);
// Well-formed headers nest at most 3 deep; this only bounds pathological input.
constexpr int kMaxJsonDepth = 64;

// A name or value, quoted and escaped for an error message (valid UTF-8).
std::string Quote(std::string_view s) {
  const std::string escaped = absl::Utf8SafeCEscape(ToAbsl(s));
  if (IsValidUtf8(escaped)) return absl::StrCat("\"", escaped, "\"");
  return absl::StrCat("\"", absl::CHexEscape(ToAbsl(s)), "\"");
}

std::string Range(uint64_t begin, uint64_t end) {
  return absl::StrCat("[", begin, ", ", end, ")");
}

// Thrown from the JSON parser callback to abort parsing.
struct HeaderJsonError {
  std::string message;
};

// Parses the header, rejecting duplicate keys in any object (nlohmann would
// otherwise silently keep the last one) and absurd nesting.
Json ParseHeaderJson(const std::string& text) {
  std::vector<std::set<std::string>> open_objects;
  Json::parser_callback_t callback = [&open_objects](int depth,
                                                     Json::parse_event_t event,
                                                     Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        if (depth >= kMaxJsonDepth) {
          throw HeaderJsonError{absl::StrCat(
              "header JSON nesting depth exceeds ", kMaxJsonDepth)};
        }
        if (event == Json::parse_event_t::object_start) {
          open_objects.emplace_back();
        }
        break;
      case Json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case Json::parse_event_t::key: {
        const std::string& key = parsed.get_ref<const std::string&>();
        if (!open_objects.empty() && !open_objects.back().insert(key).second) {
          throw HeaderJsonError{
              absl::StrCat("duplicate key ", Quote(key),
                           depth <= 1 ? " at the top level of the header"
                                      : absl::StrCat(" at nesting depth ",
                                                     depth, " of the header"))};
        }
        break;
      }
      default:
        break;
    }
    return true;
  };
  return Json::parse(text.begin(), text.end(), callback,
                     /*allow_exceptions=*/true);
}

// Reads a JSON value that must be a non-negative integer fitting uint64.
bool GetUnsigned(const Json& j, uint64_t* out) {
  if (!j.is_number_unsigned()) return false;
  *out = j.get<uint64_t>();
  return true;
}

absl::Status DataLoss(const std::string& path, std::string_view reason) {
  return absl::DataLossError(absl::StrCat(path, ": ", ToAbsl(reason)));
}

// The header's bytes, after its length prefix is checked against the file
// and the limit.
absl::StatusOr<std::string> ReadHeader(const ByteSource& source,
                                       uint64_t max_header_bytes) {
  const std::string& path = source.name();
  const uint64_t file_size = source.size();
  if (file_size < 8) {
    return DataLoss(path, absl::StrCat("file size ", file_size,
                                       " is shorter than the 8-byte header "
                                       "length"));
  }
  uint8_t len_bytes[8];
  RETURN_IF_ERROR(source.ReadAt(0, absl::MakeSpan(len_bytes)));
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  if (header_len == 0) return DataLoss(path, "header length is 0");
  if (header_len > max_header_bytes) {
    return DataLoss(path, absl::StrCat("header length ", header_len,
                                       " exceeds the limit of ",
                                       max_header_bytes, " bytes"));
  }
  if (header_len > file_size - 8) {
    return DataLoss(path, absl::StrCat("header length ", header_len,
                                       " exceeds the ", file_size - 8,
                                       " bytes after the 8-byte length "
                                       "prefix"));
  }
  return source.ReadString(8, header_len);
}

// The header as a JSON object.
absl::StatusOr<Json> ParseHeader(const std::string& path,
                                 const std::string& header) {
  // Writers may pad the header with whitespace (the reference library's JSON
  // parser skips it on both sides of the object); nlohmann skips it too.
  const size_t first = header.find_first_not_of(" \t\n\r");
  if (first == std::string::npos) {
    return DataLoss(path, "header must start with '{', got only whitespace");
  }
  if (header[first] != '{') {
    return DataLoss(
        path, absl::StrCat("header must start with '{'",
                           first > 0 ? " after leading whitespace" : "", ", got ",
                           ContentForMessage(header.substr(first, 1))));
  }
  // nlohmann's lexer takes a NUL byte for the end of input, so "{}\0junk"
  // would pass; no valid JSON text contains a raw NUL.
  if (size_t nul = header.find('\0'); nul != std::string::npos) {
    return DataLoss(path, absl::StrCat("header is not valid JSON: NUL byte at "
                                       "header offset ",
                                       nul));
  }
  Json json;
  try {
    json = ParseHeaderJson(header);
  } catch (const HeaderJsonError& e) {
    return DataLoss(path, EscapeForMessage(e.message));
  } catch (const Json::exception& e) {
    // nlohmann quotes the raw bytes it last read, which need not be UTF-8.
    return DataLoss(path, absl::StrCat("header is not valid JSON: ",
                                       JsonErrorForMessage(e.what())));
  }
  if (!json.is_object()) {
    return DataLoss(path, absl::StrCat("header must be a JSON object, got ",
                                       json.type_name()));
  }
  return json;
}

class HeaderValidator {
 public:
  HeaderValidator(const std::string& path, uint64_t data_size)
      : path_(path), data_size_(data_size) {}

  absl::Status Error(std::string_view reason) const {
    return DataLoss(path_, reason);
  }

  absl::Status ParseMetadata(const Json& j,
                             std::map<std::string, std::string>* metadata) {
    if (!j.is_object()) {
      return Error(absl::StrCat("\"__metadata__\" must be an object, got ",
                                j.type_name()));
    }
    for (const auto& [key, value] : j.items()) {
      if (!value.is_string()) {
        return Error(absl::StrCat("\"__metadata__\" value for key ", ContentForMessage(key),
                                  " must be a string, got ",
                                  value.type_name()));
      }
      (*metadata)[key] = value.get<std::string>();
    }
    return absl::OkStatus();
  }

  absl::Status ParseTensor(const std::string& name, const Json& j,
                           TensorInfo* info) {
    const std::string where = absl::StrCat("tensor ", Quote(name));
    RETURN_IF_ERROR(CheckFields(where, j));
    info->name = name;
    RETURN_IF_ERROR(ParseTensorDType(where, j["dtype"], info));
    ASSIGN_OR_RETURN(const uint64_t expected_bytes,
                     ParseShape(where, j["shape"], info));
    return ParseOffsets(where, j["data_offsets"], j["shape"], expected_bytes,
                        info);
  }

  // The tensors must tile [0, data_size) without overlap or gaps.
  absl::Status CheckCoverage(const std::vector<TensorInfo>& tensors) {
    std::vector<const TensorInfo*> by_offset;
    by_offset.reserve(tensors.size());
    for (const TensorInfo& t : tensors) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const TensorInfo* a, const TensorInfo* b) {
                return std::tie(a->begin, a->end, a->name) <
                       std::tie(b->begin, b->end, b->name);
              });
    uint64_t covered = 0;
    const TensorInfo* last = nullptr;  // the tensor that ends at `covered`
    for (const TensorInfo* t : by_offset) {
      if (t->begin < covered) {
        return Error(absl::StrCat("tensor ", Quote(t->name), " ",
                                  Range(t->begin, t->end), " overlaps tensor ",
                                  Quote(last->name), " ",
                                  Range(last->begin, last->end)));
      }
      if (t->begin > covered) {
        return Error(absl::StrCat("hole in the data section: bytes ",
                                  Range(covered, t->begin),
                                  " belong to no tensor"));
      }
      covered = t->end;
      last = t;
    }
    if (covered != data_size_) {
      return Error(absl::StrCat("trailing bytes in the data section: bytes ",
                                Range(covered, data_size_),
                                " after the last tensor belong to no tensor"));
    }
    return absl::OkStatus();
  }

 private:
  // An object with exactly the fields dtype, shape and data_offsets.
  absl::Status CheckFields(const std::string& where, const Json& j) const {
    if (!j.is_object()) {
      return Error(absl::StrCat(where, ": entry must be an object, got ",
                                j.type_name()));
    }
    for (const auto& [key, value] : j.items()) {
      if (key != "dtype" && key != "shape" && key != "data_offsets") {
        return Error(
            absl::StrCat(where, ": unexpected field ", ContentForMessage(key),
                         " (allowed: \"dtype\", \"shape\", \"data_offsets\")"));
      }
    }
    for (const char* field : {"dtype", "shape", "data_offsets"}) {
      if (!j.contains(field)) {
        return Error(absl::StrCat(where, ": missing field \"", field, "\""));
      }
    }
    return absl::OkStatus();
  }

  absl::Status ParseTensorDType(const std::string& where, const Json& dtype,
                                TensorInfo* info) const {
    if (!dtype.is_string()) {
      return Error(absl::StrCat(where, ": dtype must be a string, got ",
                                dtype.type_name()));
    }
    absl::StatusOr<DType> parsed = ParseDType(dtype.get<std::string>());
    if (!parsed.ok()) {
      return Error(absl::StrCat(where, ": ", parsed.status().message()));
    }
    info->dtype = *parsed;
    return absl::OkStatus();
  }

  // The shape into *info; the bytes it needs.
  absl::StatusOr<uint64_t> ParseShape(const std::string& where,
                                      const Json& shape,
                                      TensorInfo* info) const {
    if (!shape.is_array()) {
      return Error(absl::StrCat(where, ": shape must be an array, got ",
                                shape.type_name()));
    }
    if (shape.size() > kMaxRank) {
      return Error(absl::StrCat(where, ": shape rank ", shape.size(),
                                " exceeds the maximum rank ", kMaxRank));
    }
    uint64_t numel = 1;
    bool overflow = false;
    info->shape.clear();
    for (size_t i = 0; i < shape.size(); ++i) {
      uint64_t dim = 0;
      if (!GetUnsigned(shape[i], &dim) ||
          dim > static_cast<uint64_t>(INT64_MAX)) {
        return Error(absl::StrCat(where, ": shape[", i, "] = ", ContentForMessage(shape[i].dump()),
                                  " is not an integer in [0, 2^63)"));
      }
      info->shape.push_back(static_cast<int64_t>(dim));
      if (__builtin_mul_overflow(numel, dim, &numel)) overflow = true;
    }
    const uint64_t bits = DTypeBits(info->dtype);
    uint64_t expected_bytes = 0;
    if (bits % 8 == 0) {
      if (overflow ||
          __builtin_mul_overflow(numel, bits / 8, &expected_bytes)) {
        return Error(absl::StrCat(where, ": shape ", ContentForMessage(shape.dump()), " of ",
                                  ToAbsl(DTypeName(info->dtype)),
                                  " overflows 2^64 bytes"));
      }
      return expected_bytes;
    }
    // The 4- and 6-bit dtypes: whole bytes only, as the reference requires.
    uint64_t expected_bits = 0;
    if (overflow || __builtin_mul_overflow(numel, bits, &expected_bits)) {
      return Error(absl::StrCat(where, ": shape ", ContentForMessage(shape.dump()), " of ",
                                ToAbsl(DTypeName(info->dtype)),
                                " overflows 2^64 bits"));
    }
    if (expected_bits % 8 != 0) {
      return Error(absl::StrCat(where, ": shape ", ContentForMessage(shape.dump()), " of ",
                                ToAbsl(DTypeName(info->dtype)), " holds ",
                                expected_bits,
                                " bits, not a whole number of bytes"));
    }
    return expected_bits / 8;
  }

  // data_offsets, which must span the shape's bytes within the data section.
  absl::Status ParseOffsets(const std::string& where, const Json& offsets,
                            const Json& shape, uint64_t expected_bytes,
                            TensorInfo* info) const {
    if (!offsets.is_array() || offsets.size() != 2) {
      return Error(absl::StrCat(where, ": data_offsets must be an array of 2 ",
                                "integers, got ", ContentForMessage(offsets.dump())));
    }
    uint64_t begin = 0, end = 0;
    if (!GetUnsigned(offsets[0], &begin) || !GetUnsigned(offsets[1], &end)) {
      return Error(absl::StrCat(where, ": data_offsets ", ContentForMessage(offsets.dump()),
                                " must be non-negative integers below 2^64"));
    }
    if (begin > end) {
      return Error(
          absl::StrCat(where, ": data_offsets begin ", begin, " > end ", end));
    }
    if (end > data_size_) {
      return Error(absl::StrCat(where, ": truncated: data_offsets end ", end,
                                " exceeds the data section size ", data_size_));
    }
    if (end - begin != expected_bytes) {
      return Error(absl::StrCat(where, ": data_offsets ", Range(begin, end),
                                " span ", end - begin, " bytes but shape ",
                                ContentForMessage(shape.dump()), " of ",
                                ToAbsl(DTypeName(info->dtype)), " needs ",
                                expected_bytes, " bytes"));
    }
    info->begin = begin;
    info->end = end;
    return absl::OkStatus();
  }

  const std::string& path_;
  const uint64_t data_size_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(
    std::shared_ptr<const ByteSource> source, Options options) {
  const std::string& path = source->name();
  ASSIGN_OR_RETURN(const std::string header,
                   ReadHeader(*source, options.max_header_bytes));
  ASSIGN_OR_RETURN(const Json json, ParseHeader(path, header));

  const uint64_t data_size = source->size() - 8 - header.size();
  HeaderValidator validator(path, data_size);
  auto file = std::unique_ptr<SafetensorsFile>(
      new SafetensorsFile(std::move(source), 8 + header.size()));
  file->tensors_.reserve(json.size());
  for (const auto& [key, value] : json.items()) {
    if (key == "__metadata__") {
      RETURN_IF_ERROR(validator.ParseMetadata(value, &file->metadata_));
      continue;
    }
    TensorInfo info;
    RETURN_IF_ERROR(validator.ParseTensor(key, value, &info));
    file->tensors_.push_back(std::move(info));
  }
  file->SortTensors();
  RETURN_IF_ERROR(validator.CheckCoverage(file->tensors_));
  return file;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(
    const std::string& path, Options options) {
  ASSIGN_OR_RETURN(std::shared_ptr<LocalFileSource> source,
                   LocalFileSource::Open(path));
  return Open(std::move(source), options);
}

absl::StatusOr<uint64_t> SafetensorsFile::SegmentOffset(uint32_t) const {
  return data_offset_;
}

}  // namespace garden

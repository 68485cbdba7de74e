#include "common/formats/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"
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

size_t PageSize() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

// Reads exactly `size` bytes at `offset`; false with errno set otherwise
// (errno 0 on an unexpected end of file).
bool PreadFull(int fd, void* buf, size_t size, uint64_t offset) {
  auto* p = static_cast<char*>(buf);
  while (size > 0) {
    ssize_t n = pread(fd, p, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) {
      errno = 0;
      return false;
    }
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return true;
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
absl::StatusOr<std::string> ReadHeader(int fd, const std::string& path,
                                       uint64_t file_size,
                                       uint64_t max_header_bytes) {
  if (file_size < 8) {
    return DataLoss(path, absl::StrCat("file size ", file_size,
                                       " is shorter than the 8-byte header "
                                       "length"));
  }
  uint8_t len_bytes[8];
  if (!PreadFull(fd, len_bytes, 8, 0)) {
    if (errno == 0) return DataLoss(path, "file shrank while reading");
    return ErrnoStatus(path, errno, "cannot read header length");
  }
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
  std::string header(header_len, '\0');
  if (!PreadFull(fd, header.data(), header.size(), 8)) {
    if (errno == 0) return DataLoss(path, "file shrank while reading");
    return ErrnoStatus(path, errno, "cannot read header");
  }
  return header;
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
                           first > 0 ? " after leading whitespace" : "",
                           ", got \"",
                           absl::CHexEscape(ToAbsl(header.substr(first, 1))),
                           "\""));
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
                                       EscapeForMessage(e.what())));
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
        return Error(absl::StrCat("\"__metadata__\" value for key ", Quote(key),
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
            absl::StrCat(where, ": unexpected field ", Quote(key),
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
        return Error(absl::StrCat(where, ": shape[", i, "] = ", shape[i].dump(),
                                  " is not an integer in [0, 2^63)"));
      }
      info->shape.push_back(static_cast<int64_t>(dim));
      if (__builtin_mul_overflow(numel, dim, &numel)) overflow = true;
    }
    const uint64_t itemsize = DTypeSize(info->dtype);
    uint64_t expected_bytes = 0;
    if (overflow || __builtin_mul_overflow(numel, itemsize, &expected_bytes)) {
      return Error(absl::StrCat(where, ": shape ", shape.dump(), " of ",
                                ToAbsl(DTypeName(info->dtype)),
                                " overflows 2^64 bytes"));
    }
    return expected_bytes;
  }

  // data_offsets, which must span the shape's bytes within the data section.
  absl::Status ParseOffsets(const std::string& where, const Json& offsets,
                            const Json& shape, uint64_t expected_bytes,
                            TensorInfo* info) const {
    if (!offsets.is_array() || offsets.size() != 2) {
      return Error(absl::StrCat(where, ": data_offsets must be an array of 2 ",
                                "integers, got ", offsets.dump()));
    }
    uint64_t begin = 0, end = 0;
    if (!GetUnsigned(offsets[0], &begin) || !GetUnsigned(offsets[1], &end)) {
      return Error(absl::StrCat(where, ": data_offsets ", offsets.dump(),
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
                                shape.dump(), " of ",
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

uint64_t TensorInfo::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(
    const std::string& path, Options options) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(path, errno, "cannot open");
  // Closes the descriptor on every error return; kept once the file is open.
  struct FdCloser {
    int fd;
    ~FdCloser() {
      if (fd >= 0) close(fd);
    }
  } closer{fd};

  struct stat st;
  if (fstat(fd, &st) != 0) return ErrnoStatus(path, errno, "cannot stat");
  if (!S_ISREG(st.st_mode)) return DataLoss(path, "not a regular file");
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  ASSIGN_OR_RETURN(const std::string header,
                   ReadHeader(fd, path, file_size, options.max_header_bytes));
  ASSIGN_OR_RETURN(const Json json, ParseHeader(path, header));

  const uint64_t data_size = file_size - 8 - header.size();
  HeaderValidator validator(path, data_size);
  auto file = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  file->path_ = path;
  file->file_size_ = file_size;
  file->data_offset_ = 8 + header.size();
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
  std::sort(
      file->tensors_.begin(), file->tensors_.end(),
      [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
  RETURN_IF_ERROR(validator.CheckCoverage(file->tensors_));

  void* map = mmap(nullptr, file_size, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return ErrnoStatus(path, errno, "cannot mmap");
  file->map_ = static_cast<const uint8_t*>(map);
  file->map_size_ = file_size;
  file->fd_ = fd;  // kept for ReadChunks
  closer.fd = -1;
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) munmap(const_cast<uint8_t*>(map_), map_size_);
  if (fd_ >= 0) close(fd_);
}

absl::Status SafetensorsFile::PreadFully(const TensorInfo& info,
                                         uint64_t offset,
                                         absl::Span<uint8_t> out) const {
  const uint64_t start = data_offset_ + info.begin + offset;
  size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = pread(fd_, out.data() + got, out.size() - got,
                            static_cast<off_t>(start + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::DataLossError(absl::StrCat(path_, ": reading tensor ",
                                              Quote(info.name), ": ",
                                              std::strerror(errno)));
    }
    if (n == 0) {
      return absl::DataLossError(absl::StrCat(
          path_, ": truncated while reading tensor ", Quote(info.name),
          ": the file ended at byte ", start + got, " of ",
          data_offset_ + info.begin + info.num_bytes()));
    }
    got += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status SafetensorsFile::ReadChunks(
    const TensorInfo& info, absl::Span<uint8_t> buffer,
    const std::function<absl::Status(absl::Span<const uint8_t>)>& consume)
    const {
  const size_t item = DTypeSize(info.dtype);
  const size_t chunk = buffer.size() / item * item;
  if (chunk == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a ", buffer.size(), "-byte buffer cannot hold one element of ",
        ToAbsl(DTypeName(info.dtype))));
  }
  for (uint64_t done = 0; done < info.num_bytes();) {
    const size_t want =
        static_cast<size_t>(std::min<uint64_t>(chunk, info.num_bytes() - done));
    RETURN_IF_ERROR(PreadFully(info, done, buffer.subspan(0, want)));
    RETURN_IF_ERROR(consume(absl::MakeConstSpan(buffer.data(), want)));
    done += want;
  }
  return absl::OkStatus();
}

absl::Status SafetensorsFile::ReadElements(const TensorInfo& info,
                                           uint64_t first,
                                           absl::Span<uint8_t> out) const {
  const size_t item = DTypeSize(info.dtype);
  if (out.size() % item != 0 || first > info.numel() ||
      out.size() / item > info.numel() - first) {
    return absl::InvalidArgumentError(absl::StrCat(
        "elements [", first, ", ", first + out.size() / item, ") of tensor ",
        Quote(info.name), " (", out.size(), " bytes) are outside its ",
        info.numel(), " elements of ", item, " bytes"));
  }
  return PreadFully(info, first * item, out);
}

const TensorInfo* SafetensorsFile::Find(std::string_view name) const {
  auto it = std::lower_bound(
      tensors_.begin(), tensors_.end(), name,
      [](const TensorInfo& t, std::string_view n) { return t.name < n; });
  if (it == tensors_.end() || it->name != name) return nullptr;
  return &*it;
}

absl::StatusOr<absl::Span<const uint8_t>> SafetensorsFile::Data(
    std::string_view name) const {
  const TensorInfo* info = Find(name);
  if (info == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(path_, ": no tensor named ", Quote(name)));
  }
  return Data(*info);
}

absl::Span<const uint8_t> SafetensorsFile::Data(const TensorInfo& info) const {
  const uint64_t data_size = file_size_ - data_offset_;
  if (info.begin > info.end || info.end > data_size) return {};  // not ours
  const uint8_t* begin = map_ + data_offset_ + info.begin;
  const size_t size = static_cast<size_t>(info.end - info.begin);
  if (size > 0) {
    const uintptr_t page = PageSize();
    const uintptr_t start = reinterpret_cast<uintptr_t>(begin) & ~(page - 1);
    const size_t len = reinterpret_cast<uintptr_t>(begin) + size - start;
    void* addr = reinterpret_cast<void*>(start);
    madvise(addr, len, MADV_SEQUENTIAL);
    madvise(addr, len, MADV_WILLNEED);
  }
  return absl::Span<const uint8_t>(begin, size);
}

void SafetensorsFile::Release(const TensorInfo& info) const {
  const uint64_t data_size = file_size_ - data_offset_;
  if (info.begin >= info.end || info.end > data_size) return;
  const uintptr_t page = PageSize();
  const uintptr_t first =
      reinterpret_cast<uintptr_t>(map_ + data_offset_ + info.begin);
  const uintptr_t last =
      reinterpret_cast<uintptr_t>(map_ + data_offset_ + info.end);
  const uintptr_t start = first & ~(page - 1);
  const uintptr_t stop = (last + page - 1) & ~(page - 1);
  // The mapping is read-only and file-backed, so dropping pages (including
  // ones shared with neighbouring tensors) loses nothing: they fault back in.
  madvise(reinterpret_cast<void*>(start), stop - start, MADV_DONTNEED);
}

}  // namespace garden

// A strict, memory-mapped reader for safetensors files.
//
// File layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
// (an object mapping tensor names to {dtype, shape, data_offsets}, plus an
// optional "__metadata__" object of string to string), then the data section.
// Offsets in the header are relative to the start of the data section, which
// the tensors must cover contiguously from byte 0 to its end.
//
// Validation, held against the reference implementation (huggingface/
// safetensors). Accepted like the reference: ASCII whitespace (space, \t, \n,
// \r) before the opening '{' and after the closing '}' of the header (writers
// pad it with spaces so that the data starts on an aligned boundary); header
// lengths up to 100,000,000 bytes (the reference's MAX_HEADER_SIZE).
// Deliberately stricter than the reference, each a DATA_LOSS: duplicate keys
// in any object (the reference keeps one silently), "__metadata__": null,
// unknown fields in a tensor entry, shape rank above 16, a dimension of 2^63
// or more, a raw NUL byte in the header, JSON nested deeper than 64 levels.
// Error messages are valid UTF-8: header bytes they quote are escaped.
#ifndef GARDEN_COMMON_FORMATS_SAFETENSORS_H_
#define GARDEN_COMMON_FORMATS_SAFETENSORS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/formats/dtype.h"

namespace garden {

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets relative to the start of the data section
  uint64_t end = 0;
  uint64_t numel() const;  // product of shape (1 for a scalar, shape {})
  uint64_t num_bytes() const { return end - begin; }
};

// An open, validated safetensors file. All const methods are thread-safe.
// The file must not be truncated while open (reads of the mapping would fault).
class SafetensorsFile {
 public:
  struct Options {
    // The reference library's MAX_HEADER_SIZE; a longer header is DATA_LOSS
    // (checked before the header is read or compared with the file size).
    uint64_t max_header_bytes = 100'000'000;
  };

  // Opens, validates the whole header, and memory-maps the file read-only
  // (MAP_SHARED). Errors: NOT_FOUND if the file does not exist,
  // PERMISSION_DENIED if unreadable, DATA_LOSS for every malformation (and for
  // a path that is not a regular file); messages start with "<path>: ".
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(
      const std::string& path, Options options);
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(
      const std::string& path) {
    return Open(path, Options());
  }

  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();  // unmaps, closes the descriptor

  const std::string& path() const { return path_; }
  uint64_t file_size() const { return file_size_; }
  // 8 + header length: the file offset of the data section.
  uint64_t data_offset() const { return data_offset_; }
  // Sorted by name.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // nullptr if absent (binary search).
  const TensorInfo* Find(std::string_view name) const;
  // The "__metadata__" object (empty if absent).
  const std::map<std::string, std::string>& metadata() const {
    return metadata_;
  }

  // The tensor's bytes inside the mapping, valid while this object lives.
  // Only the pages holding the tensor are touched; advises the kernel
  // (MADV_SEQUENTIAL, then MADV_WILLNEED) on that range. NOT_FOUND (naming the
  // tensor) if absent.
  absl::StatusOr<absl::Span<const uint8_t>> Data(std::string_view name) const;
  absl::Span<const uint8_t> Data(const TensorInfo& info) const;

  // Streams the tensor's bytes through `buffer` with pread, each chunk a
  // whole number of elements, never through the mapping: on virtual machines
  // page-table work costs more than the copy (measured by bench/scan_bench),
  // and a file truncated while it is read gives DATA_LOSS instead of SIGBUS.
  // Stops at the first error of `consume`, which it returns.
  absl::Status ReadChunks(
      const TensorInfo& info, absl::Span<uint8_t> buffer,
      const std::function<absl::Status(absl::Span<const uint8_t>)>& consume)
      const;

  // Reads elements [first, first + out.size() / element size) of the tensor
  // into `out` with pread; INVALID_ARGUMENT for a range outside it.
  absl::Status ReadElements(const TensorInfo& info, uint64_t first,
                            absl::Span<uint8_t> out) const;

  // Drops the mapped pages of one tensor (the page-aligned range covering it)
  // from this process's resident set with MADV_DONTNEED, so that a long sweep
  // keeps RSS bounded. Later reads fault the pages back in from the page
  // cache. Harmless to call more than once.
  void Release(const TensorInfo& info) const;

 private:
  SafetensorsFile() = default;
  // Fills `out` from the tensor's bytes starting `offset` bytes in.
  absl::Status PreadFully(const TensorInfo& info, uint64_t offset,
                          absl::Span<uint8_t> out) const;

  std::string path_;
  int fd_ = -1;
  uint64_t file_size_ = 0;
  uint64_t data_offset_ = 0;
  const uint8_t* map_ = nullptr;  // the whole file
  size_t map_size_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace garden

#endif  // GARDEN_COMMON_FORMATS_SAFETENSORS_H_

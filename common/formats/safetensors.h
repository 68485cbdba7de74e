// A strict reader for safetensors files, through a ByteSource: it reads the
// length prefix and the header, and then only the tensors asked for.
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
// Every dtype of the format is accepted and listed (F4, F6_E2M3, C64, ...);
// only analyses refuse the ones they cannot compute on.
// Error messages are valid UTF-8: header bytes they quote are escaped.
#ifndef GARDEN_COMMON_FORMATS_SAFETENSORS_H_
#define GARDEN_COMMON_FORMATS_SAFETENSORS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/formats/byte_source.h"
#include "common/formats/tensor_file.h"

namespace garden {

// An open, validated safetensors file; format() is "safetensors", every
// tensor's segment is the data section. All const methods are thread-safe.
class SafetensorsFile : public TensorFile {
 public:
  struct Options {
    // The reference library's MAX_HEADER_SIZE; a longer header is DATA_LOSS
    // (checked before the header is read or compared with the file size).
    uint64_t max_header_bytes = 100'000'000;
  };

  // Reads and validates the whole header. DATA_LOSS for every malformation;
  // messages start with "<source name>: ".
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(
      std::shared_ptr<const ByteSource> source, Options options);
  // A local file (LocalFileSource::Open's errors, then the above).
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(
      const std::string& path, Options options);
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(
      const std::string& path) {
    return Open(path, Options());
  }

  // 8 + header length: the file offset of the data section.
  uint64_t data_offset() const { return data_offset_; }

 private:
  SafetensorsFile(std::shared_ptr<const ByteSource> source,
                  uint64_t data_offset)
      : TensorFile(std::move(source), "safetensors"),
        data_offset_(data_offset) {}
  absl::StatusOr<uint64_t> SegmentOffset(uint32_t segment) const override;

  uint64_t data_offset_;
};

}  // namespace garden

#endif  // GARDEN_COMMON_FORMATS_SAFETENSORS_H_

// An open checkpoint file of any format: its tensors listed, each read on
// request through the file's ByteSource. The format readers (safetensors.h,
// torch_file.h) parse and validate a file's index and hand back a TensorFile;
// everything else reads tensors through this one interface.
//
// A tensor's bytes lie in one segment of the file (the data section of a
// safetensors file, one storage entry of a torch zip); a segment's offset in
// the file may only be known once its first tensor is read (a zip entry's
// local header is read then), so damage found there comes back from the
// reads. Reads use pread-style ReadAt, never a mapping: a file truncated
// while it is read is DATA_LOSS, not SIGBUS.
#ifndef GARDEN_COMMON_FORMATS_TENSOR_FILE_H_
#define GARDEN_COMMON_FORMATS_TENSOR_FILE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/formats/byte_source.h"
#include "common/formats/dtype.h"

namespace garden {

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  // The byte span [begin, end) inside its segment.
  uint64_t begin = 0;
  uint64_t end = 0;
  uint32_t segment = 0;
  // Element strides (torch files); empty means row-major contiguous.
  std::vector<int64_t> strides;

  uint64_t numel() const;  // product of shape (1 for a scalar, shape {})
  uint64_t num_bytes() const { return end - begin; }
  // Row-major contiguous: strides empty or equal to the row-major ones
  // (dimensions of size 1 may carry any stride, as in PyTorch).
  bool contiguous() const;
};

class TensorFile {
 public:
  virtual ~TensorFile();
  TensorFile(const TensorFile&) = delete;
  TensorFile& operator=(const TensorFile&) = delete;

  const ByteSource& source() const { return *source_; }
  const std::string& path() const { return source_->name(); }
  uint64_t file_size() const { return source_->size(); }
  // "safetensors" or "pytorch".
  std::string_view format() const { return format_; }
  // Sorted by name.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // nullptr if absent (binary search).
  const TensorInfo* Find(std::string_view name) const;
  // String metadata (safetensors "__metadata__"; empty for torch files).
  const std::map<std::string, std::string>& metadata() const {
    return metadata_;
  }

  // The file offset of the tensor's first byte. FAILED_PRECONDITION for a
  // tensor that is not contiguous (torch views with permuted or expanded
  // strides: gathering them would read their storage once per chunk);
  // DATA_LOSS for damage around its segment.
  absl::StatusOr<uint64_t> FileOffset(const TensorInfo& info) const;

  // Streams the tensor's bytes through `buffer`, each chunk a whole number of
  // elements (of bytes, for sub-byte dtypes). Stops at the first error of
  // `consume`, which it returns.
  absl::Status ReadChunks(
      const TensorInfo& info, absl::Span<uint8_t> buffer,
      const std::function<absl::Status(absl::Span<const uint8_t>)>& consume)
      const;

  // Reads elements [first, first + out.size() / element size) of the tensor
  // into `out`; INVALID_ARGUMENT for a range outside it.
  absl::Status ReadElements(const TensorInfo& info, uint64_t first,
                            absl::Span<uint8_t> out) const;

  // The tensor's bytes in a read-only mapping of the file, for callers that
  // own the file (a trainer's state; benchmarks): a mapped file that shrinks
  // faults. Advises the kernel (MADV_SEQUENTIAL, MADV_WILLNEED) on the range.
  // UNIMPLEMENTED where the source cannot be mapped; NOT_FOUND by name.
  absl::StatusOr<absl::Span<const uint8_t>> Data(const TensorInfo& info) const;
  absl::StatusOr<absl::Span<const uint8_t>> Data(std::string_view name) const;
  // Drops the mapped pages of one tensor from the resident set
  // (MADV_DONTNEED); later reads fault them back in. Harmless to repeat.
  void Release(const TensorInfo& info) const;

 protected:
  TensorFile(std::shared_ptr<const ByteSource> source, std::string format)
      : source_(std::move(source)), format_(std::move(format)) {}
  // The file offset of a segment's first byte.
  virtual absl::StatusOr<uint64_t> SegmentOffset(uint32_t segment) const = 0;
  void SortTensors();

  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;

 private:
  std::shared_ptr<const ByteSource> source_;
  std::string format_;
};

}  // namespace garden

#endif  // GARDEN_COMMON_FORMATS_TENSOR_FILE_H_

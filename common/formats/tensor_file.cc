#include "common/formats/tensor_file.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_join.h"
#include "common/base/absl_compat.h"
#include "common/base/status.h"
#include "common/base/utf8.h"

namespace garden {
namespace {

uintptr_t PageSize() {
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  return page;
}

// The unit a tensor's bytes are cut into: whole elements, or bytes for the
// sub-byte dtypes (F4, F6).
size_t ReadUnit(DType dtype) {
  return DTypeBits(dtype) % 8 == 0 ? DTypeBits(dtype) / 8 : 1;
}

// The tensor's bytes inside the source's mapping, without advice.
absl::StatusOr<absl::Span<const uint8_t>> Mapped(const TensorFile& file,
                                                 const TensorInfo& info) {
  ASSIGN_OR_RETURN(const uint64_t start, file.FileOffset(info));
  ASSIGN_OR_RETURN(const absl::Span<const uint8_t> map, file.source().Map());
  return map.subspan(static_cast<size_t>(start),
                     static_cast<size_t>(info.num_bytes()));
}

// A read error as "<path>: tensor "<name>": <what>", whatever the source
// said (its messages start with its own name).
absl::Status InTensor(absl::Status status, const std::string& path,
                      const TensorInfo& info) {
  if (status.ok()) return status;
  absl::string_view what = status.message();
  absl::ConsumePrefix(&what, absl::StrCat(path, ": "));
  return absl::Status(status.code(), absl::StrCat(path, ": tensor ",
                                                  QuoteForMessage(info.name), ": ", what));
}

}  // namespace

uint64_t TensorInfo::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

bool TensorInfo::contiguous() const {
  if (strides.empty() || numel() == 0) return true;
  if (strides.size() != shape.size()) return false;
  int64_t expected = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    if (shape[i] != 1 && strides[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

TensorFile::~TensorFile() = default;

void TensorFile::SortTensors() {
  std::sort(
      tensors_.begin(), tensors_.end(),
      [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
}

const TensorInfo* TensorFile::Find(std::string_view name) const {
  auto it = std::lower_bound(
      tensors_.begin(), tensors_.end(), name,
      [](const TensorInfo& t, std::string_view n) { return t.name < n; });
  if (it == tensors_.end() || it->name != name) return nullptr;
  return &*it;
}

absl::StatusOr<uint64_t> TensorFile::FileOffset(const TensorInfo& info) const {
  if (!info.contiguous()) {
    return absl::FailedPreconditionError(absl::StrCat(
        path(), ": tensor ", QuoteForMessage(info.name), " of shape [",
        absl::StrJoin(info.shape, ", "), "] has strides [",
        absl::StrJoin(info.strides, ", "),
        "]: only contiguous tensors are read (save it after .contiguous())"));
  }
  ASSIGN_OR_RETURN(const uint64_t segment, SegmentOffset(info.segment));
  uint64_t offset = 0;
  if (__builtin_add_overflow(segment, info.begin, &offset) ||
      info.end < info.begin || offset > file_size() ||
      info.num_bytes() > file_size() - offset) {
    return absl::DataLossError(absl::StrCat(
        path(), ": tensor ", QuoteForMessage(info.name), " at bytes [", segment, " + ",
        info.begin, ", ", segment, " + ", info.end,
        ") lies outside the file's ", file_size(), " bytes"));
  }
  return offset;
}

absl::Status TensorFile::ReadChunks(
    const TensorInfo& info, absl::Span<uint8_t> buffer,
    const std::function<absl::Status(absl::Span<const uint8_t>)>& consume)
    const {
  const size_t unit = ReadUnit(info.dtype);
  const size_t chunk = buffer.size() / unit * unit;
  if (chunk == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a ", buffer.size(), "-byte buffer cannot hold one element of ",
        ToAbsl(DTypeName(info.dtype))));
  }
  ASSIGN_OR_RETURN(const uint64_t start, FileOffset(info));
  RETURN_IF_ERROR(InTensor(source_->Prefetch(start, info.num_bytes()), path(), info));
  for (uint64_t done = 0; done < info.num_bytes();) {
    const size_t want =
        static_cast<size_t>(std::min<uint64_t>(chunk, info.num_bytes() - done));
    RETURN_IF_ERROR(InTensor(
        source_->ReadAt(start + done, buffer.subspan(0, want)), path(), info));
    RETURN_IF_ERROR(consume(absl::MakeConstSpan(buffer.data(), want)));
    done += want;
  }
  return absl::OkStatus();
}

absl::Status TensorFile::ReadElements(const TensorInfo& info, uint64_t first,
                                      absl::Span<uint8_t> out) const {
  const size_t item = ReadUnit(info.dtype);
  const uint64_t count = info.num_bytes() / item;
  if (out.size() % item != 0 || first > count ||
      out.size() / item > count - first) {
    return absl::InvalidArgumentError(absl::StrCat(
        "elements [", first, ", ", first + out.size() / item, ") of tensor ",
        QuoteForMessage(info.name), " (", out.size(), " bytes) are outside its ", count,
        " elements of ", item, " bytes"));
  }
  ASSIGN_OR_RETURN(const uint64_t start, FileOffset(info));
  // The whole tensor: element ranges of one tensor come in a series (MSD's
  // blocks, a model load).
  RETURN_IF_ERROR(InTensor(source_->Prefetch(start, info.num_bytes()), path(), info));
  return InTensor(source_->ReadAt(start + first * item, out), path(), info);
}

absl::StatusOr<absl::Span<const uint8_t>> TensorFile::Data(
    const TensorInfo& info) const {
  ASSIGN_OR_RETURN(const absl::Span<const uint8_t> bytes, Mapped(*this, info));
  if (!bytes.empty()) {
    const uintptr_t page = PageSize();
    const uintptr_t first = reinterpret_cast<uintptr_t>(bytes.data());
    const uintptr_t aligned = first & ~(page - 1);
    void* addr = reinterpret_cast<void*>(aligned);
    const size_t len = first + bytes.size() - aligned;
    madvise(addr, len, MADV_SEQUENTIAL);
    madvise(addr, len, MADV_WILLNEED);
  }
  return bytes;
}

absl::StatusOr<absl::Span<const uint8_t>> TensorFile::Data(
    std::string_view name) const {
  const TensorInfo* info = Find(name);
  if (info == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(path(), ": no tensor named ", QuoteForMessage(name)));
  }
  return Data(*info);
}

void TensorFile::Release(const TensorInfo& info) const {
  absl::StatusOr<absl::Span<const uint8_t>> bytes = Mapped(*this, info);
  if (!bytes.ok() || bytes->empty()) return;
  const uintptr_t page = PageSize();
  const uintptr_t first = reinterpret_cast<uintptr_t>(bytes->data());
  const uintptr_t start = first & ~(page - 1);
  const uintptr_t stop = (first + bytes->size() + page - 1) & ~(page - 1);
  // The mapping is read-only and file-backed, so dropping pages (including
  // ones shared with neighbouring tensors) loses nothing: they fault back in.
  madvise(reinterpret_cast<void*>(start), stop - start, MADV_DONTNEED);
}

}  // namespace garden

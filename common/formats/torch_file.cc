#include "common/formats/torch_file.h"

#include <map>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/absl_compat.h"
#include "common/base/file_content.h"
#include "common/base/status.h"
#include "common/base/utf8.h"
#include "common/formats/pickle_machine.h"

namespace garden {
namespace {

// How torch.save's legacy format (PyTorch < 1.6) begins: PROTO 2, then the
// magic number 0x1950a86a20f9469cfc6c as a LONG1.
constexpr std::string_view kLegacyMagic =
    "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";

absl::Status DataLoss(const std::string& path, std::string_view what) {
  return absl::DataLossError(absl::StrCat(path, ": ", ToAbsl(what)));
}

absl::Status Refused(const std::string& path, std::string_view what) {
  return absl::FailedPreconditionError(absl::StrCat(path, ": ", ToAbsl(what)));
}

// The legacy format is a pickle stream, not a zip: say so rather than
// "no end of central directory".
absl::Status CheckNotLegacy(const ByteSource& source) {
  if (source.size() < kLegacyMagic.size()) return absl::OkStatus();
  ASSIGN_OR_RETURN(const std::string head,
                   source.ReadString(0, kLegacyMagic.size()));
  if (head != kLegacyMagic) return absl::OkStatus();
  return Refused(source.name(),
                 "this is torch.save's legacy format (PyTorch < 1.6: a stream "
                 "of pickles, not a zip archive), which Garden does not read; "
                 "load it with torch.load and save it again with a PyTorch "
                 "of 1.6 or later");
}

// The value at the rebuilt tensor's last element, in elements from the
// start of its storage; false on overflow.
bool LastElement(const pickle::Tensor& t, uint64_t* last) {
  uint64_t at = static_cast<uint64_t>(t.storage_offset);
  for (size_t i = 0; i < t.size.size(); ++i) {
    uint64_t step = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(t.size[i] - 1),
                               static_cast<uint64_t>(t.stride[i]), &step) ||
        __builtin_add_overflow(at, step, &at)) {
      return false;
    }
  }
  *last = at;
  return true;
}

}  // namespace

// Turns the unpickled state dict into the file's tensor list, checking every
// storage against its archive entry.
class TorchFile::Builder {
 public:
  Builder(TorchFile* file, const std::string& path)
      : file_(file), path_(path) {}

  absl::Status AddStateDict(const pickle::Value& root) {
    const auto* dict = std::get_if<pickle::Dict>(&root.v);
    if (dict == nullptr) {
      return Refused(path_, absl::StrCat("data.pkl holds a ",
                                         ToAbsl(pickle::TypeName(root)),
                                         ", not a state dict"));
    }
    for (const auto& [key, value] : dict->items) {
      const auto* name = std::get_if<std::string>(&key->v);
      if (name == nullptr) {
        return Refused(path_, absl::StrCat("data.pkl: a state dict key is a ",
                                           ToAbsl(pickle::TypeName(*key)),
                                           ", not a string"));
      }
      const auto* tensor = std::get_if<pickle::Tensor>(&value->v);
      if (tensor == nullptr) {
        return Refused(path_, absl::StrCat("data.pkl: the value of ",
                                           QuoteForMessage(*name), " is a ",
                                           ToAbsl(pickle::TypeName(*value)),
                                           ", not a tensor"));
      }
      RETURN_IF_ERROR(AddTensor(*name, *tensor));
    }
    return absl::OkStatus();
  }

 private:
  // The segment of a storage, registered on first use.
  absl::StatusOr<uint32_t> Segment(const pickle::Storage& storage) {
    auto it = segments_.find(storage.key);
    if (it != segments_.end()) {
      const StorageEntry& known = file_->storages_[it->second];
      if (known.dtype != storage.dtype ||
          known.numel != static_cast<uint64_t>(storage.numel)) {
        return DataLoss(path_, absl::StrCat(
                                   "storage ", QuoteForMessage(storage.key),
                                   " is named twice with different types or "
                                   "sizes"));
      }
      return it->second;
    }
    const std::string entry_name =
        absl::StrCat(file_->prefix_, "/data/", storage.key);
    const ZipEntry* entry = file_->zip_->Find(entry_name);
    if (entry == nullptr) {
      return DataLoss(path_, absl::StrCat("storage ", QuoteForMessage(storage.key),
                                          " has no archive entry ",
                                          QuoteForMessage(entry_name)));
    }
    uint64_t bytes = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(storage.numel),
                               DTypeSize(storage.dtype), &bytes) ||
        bytes > entry->size) {
      return DataLoss(path_, absl::StrCat(
                                 "storage ", QuoteForMessage(storage.key), " of ",
                                 storage.numel, " ",
                                 ToAbsl(DTypeName(storage.dtype)),
                                 " elements needs more than its entry's ",
                                 entry->size, " bytes"));
    }
    const uint32_t segment = static_cast<uint32_t>(file_->storages_.size());
    file_->storages_.push_back(StorageEntry{
        entry, storage.dtype, static_cast<uint64_t>(storage.numel)});
    segments_[storage.key] = segment;
    return segment;
  }

  absl::Status AddTensor(const std::string& name, const pickle::Tensor& t) {
    if (t.storage == nullptr || t.size.size() != t.stride.size()) {
      return DataLoss(path_, absl::StrCat("tensor ", QuoteForMessage(name),
                                          " is not a well-formed rebuild"));
    }
    ASSIGN_OR_RETURN(const uint32_t segment, Segment(*t.storage));
    const StorageEntry& storage = file_->storages_[segment];
    TensorInfo info;
    info.name = name;
    info.dtype = storage.dtype;
    info.shape = t.size;
    info.strides = t.stride;
    info.segment = segment;
    const uint64_t item = DTypeSize(storage.dtype);
    uint64_t numel = 1;
    for (int64_t d : t.size) {
      if (__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel)) {
        return DataLoss(path_, absl::StrCat("tensor ", QuoteForMessage(name), " shape [",
                                            absl::StrJoin(t.size, ", "),
                                            "] overflows 2^64 elements"));
      }
    }
    const uint64_t offset = static_cast<uint64_t>(t.storage_offset);
    uint64_t last = 0;
    const bool fits = numel == 0 ? offset <= storage.numel
                                 : LastElement(t, &last) && last < storage.numel;
    if (!fits) {
      return DataLoss(path_, absl::StrCat(
                                 "tensor ", QuoteForMessage(name), " (offset ", offset,
                                 ", shape [", absl::StrJoin(t.size, ", "),
                                 "], strides [", absl::StrJoin(t.stride, ", "),
                                 "]) reaches beyond its storage's ",
                                 storage.numel, " elements"));
    }
    // Within the storage (checked above), so neither product overflows.
    info.begin = offset * item;
    info.end = info.begin + numel * item;
    file_->tensors_.push_back(std::move(info));
    return absl::OkStatus();
  }

  TorchFile* file_;
  const std::string& path_;
  std::map<std::string, uint32_t> segments_;
};

namespace {

// The prefix folder every entry sits under, from the first entry.
absl::StatusOr<std::string> ArchivePrefix(const ZipArchive& archive,
                                          const std::string& path) {
  if (archive.entries().empty()) return DataLoss(path, "the archive is empty");
  const std::string& first = archive.entries().front().name;
  const size_t slash = first.find('/');
  if (slash == std::string::npos || slash == 0) {
    return DataLoss(path, absl::StrCat("the first entry ", QuoteForMessage(first),
                                       " is not inside a prefix folder"));
  }
  return first.substr(0, slash);
}

// Absent means little-endian (PyTorch < 2.1 writes none).
absl::Status CheckByteOrder(const ZipArchive& archive, const std::string& prefix,
                            const std::string& path) {
  const ZipEntry* order = archive.Find(prefix + "/byteorder");
  if (order == nullptr) return absl::OkStatus();
  // ReadEntry's INVALID_ARGUMENT past its bound would blame the caller.
  if (order->size > 16) {
    return DataLoss(path, absl::StrCat("byteorder entry of ", order->size,
                                       " bytes, not \"little\" or \"big\""));
  }
  ASSIGN_OR_RETURN(const std::string text, archive.ReadEntry(*order, 16));
  if (text == "big") {
    return Refused(path, "the file is big-endian (byteorder \"big\"); only "
                         "little-endian files are read");
  }
  if (text != "little") {
    return DataLoss(path, absl::StrCat("byteorder entry holds ", ContentForMessage(text),
                                       ", not \"little\" or \"big\""));
  }
  return absl::OkStatus();
}

// data.pkl, run on the restricted pickle machine.
absl::StatusOr<pickle::ValuePtr> ReadStateDict(const ZipArchive& archive,
                                               const std::string& prefix,
                                               const std::string& path,
                                               uint64_t max_bytes) {
  const std::string pkl_name = prefix + "/data.pkl";
  const ZipEntry* pkl = archive.Find(pkl_name);
  if (pkl == nullptr) {
    return DataLoss(path, absl::StrCat("the archive has no ", QuoteForMessage(pkl_name),
                                       ": not a torch.save checkpoint"));
  }
  if (pkl->size > max_bytes) {
    return DataLoss(path, absl::StrCat(QuoteForMessage(pkl_name), " is ", pkl->size,
                                       " bytes, more than the limit of ",
                                       max_bytes, " (max_pickle_bytes)"));
  }
  ASSIGN_OR_RETURN(const std::string pickled,
                   archive.ReadEntry(*pkl, max_bytes));
  return pickle::Unpickle(pickled, absl::StrCat(path, ": ", pkl_name));
}

}  // namespace

absl::StatusOr<std::unique_ptr<TorchFile>> TorchFile::Open(
    std::shared_ptr<const ByteSource> source, Options options) {
  const std::string path = source->name();
  RETURN_IF_ERROR(CheckNotLegacy(*source));
  ASSIGN_OR_RETURN(std::unique_ptr<ZipArchive> zip, ZipArchive::Open(source));
  ASSIGN_OR_RETURN(std::string prefix, ArchivePrefix(*zip, path));
  RETURN_IF_ERROR(CheckByteOrder(*zip, prefix, path));
  ASSIGN_OR_RETURN(const pickle::ValuePtr root,
                   ReadStateDict(*zip, prefix, path, options.max_pickle_bytes));
  auto file = std::unique_ptr<TorchFile>(new TorchFile(source, std::move(zip)));
  file->prefix_ = std::move(prefix);
  Builder builder(file.get(), path);
  RETURN_IF_ERROR(builder.AddStateDict(*root));
  file->SortTensors();  // names are unique: the pickled dict's keys are
  return file;
}

absl::StatusOr<std::unique_ptr<TorchFile>> TorchFile::Open(
    const std::string& path) {
  ASSIGN_OR_RETURN(std::shared_ptr<LocalFileSource> source,
                   LocalFileSource::Open(path));
  return Open(std::move(source));
}

absl::StatusOr<uint64_t> TorchFile::SegmentOffset(uint32_t segment) const {
  if (segment >= storages_.size()) {
    return absl::InternalError(absl::StrCat(path(), ": no storage ", segment));
  }
  return zip_->DataOffset(*storages_[segment].entry);
}

}  // namespace garden

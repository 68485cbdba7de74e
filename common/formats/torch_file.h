// A reader for PyTorch checkpoints as torch.save writes them since PyTorch
// 1.6 (pytorch_model.bin): a zip archive (zip_archive.h) whose entries sit
// under one prefix folder — data.pkl (a pickle of the state dict, read by
// the restricted pickle machine, pickle_machine.h, which executes nothing),
// data/<key> (one entry per storage), byteorder, version.
//
// Open reads the archive's tail and central directory, byteorder and
// data.pkl; a tensor's storage entry is located (its local header read) when
// the tensor is first read. Several tensors may share a storage at different
// offsets; a tensor whose strides are not row-major is listed but not read
// (TensorFile::FileOffset says why).
//
// Errors, each naming the file: FAILED_PRECONDITION for content Garden does
// not read — the legacy pre-1.6 format, big-endian files, compressed
// entries, a pickle using another opcode or global (nothing of it is
// executed), a root that is not a dict of string to tensor; DATA_LOSS for
// damage — a broken archive, a missing data.pkl, a storage key with no
// entry, a storage or tensor extent beyond its entry.
#ifndef GARDEN_COMMON_FORMATS_TORCH_FILE_H_
#define GARDEN_COMMON_FORMATS_TORCH_FILE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/formats/byte_source.h"
#include "common/formats/tensor_file.h"
#include "common/formats/zip_archive.h"

namespace garden {

class TorchFile : public TensorFile {
 public:
  struct Options {
    // data.pkl of pythia-12b is a few tens of KB; this bounds hostile input.
    uint64_t max_pickle_bytes = 64ull << 20;
  };

  static absl::StatusOr<std::unique_ptr<TorchFile>> Open(
      std::shared_ptr<const ByteSource> source, Options options);
  static absl::StatusOr<std::unique_ptr<TorchFile>> Open(
      std::shared_ptr<const ByteSource> source) {
    return Open(std::move(source), Options());
  }
  // A local file (LocalFileSource::Open's errors, then the above).
  static absl::StatusOr<std::unique_ptr<TorchFile>> Open(
      const std::string& path);

  // The archive's prefix folder ("archive", "pytorch_model", ...).
  const std::string& prefix() const { return prefix_; }

 private:
  struct StorageEntry {
    const ZipEntry* entry;  // owned by zip_
    DType dtype;
    uint64_t numel;
  };
  TorchFile(std::shared_ptr<const ByteSource> source,
            std::unique_ptr<ZipArchive> zip)
      : TensorFile(std::move(source), "pytorch"), zip_(std::move(zip)) {}
  absl::StatusOr<uint64_t> SegmentOffset(uint32_t segment) const override;
  class Builder;

  std::unique_ptr<ZipArchive> zip_;
  std::string prefix_;
  std::vector<StorageEntry> storages_;  // by TensorInfo::segment
};

}  // namespace garden

#endif  // GARDEN_COMMON_FORMATS_TORCH_FILE_H_

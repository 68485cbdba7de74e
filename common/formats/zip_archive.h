// A reader for the zip archives torch.save writes (PyTorch >= 1.6): stored
// entries, ZIP64 records, no encryption, one disk. Reads through a
// ByteSource and only what it needs: Open reads the end-of-central-directory
// record (and its ZIP64 locator and record) from the tail and then the
// central directory; an entry's local header is read when the entry's data
// offset is first asked for.
//
// Errors name the source and what is wrong: DATA_LOSS for damage (truncated
// archive, missing or corrupt end-of-central-directory record, entries
// pointing outside the archive, a local header that disagrees with the
// central directory), FAILED_PRECONDITION for valid zips Garden does not
// read (compressed or encrypted entries, multi-disk archives).
#ifndef GARDEN_COMMON_FORMATS_ZIP_ARCHIVE_H_
#define GARDEN_COMMON_FORMATS_ZIP_ARCHIVE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/formats/byte_source.h"

namespace garden {

struct ZipEntry {
  std::string name;            // as the central directory spells it
  uint64_t size = 0;           // bytes of data (stored: compressed == size)
  uint64_t header_offset = 0;  // of its local file header
  uint16_t method = 0;         // 0 = stored
};

class ZipArchive {
 public:
  struct Options {
    // Bounds on what a hostile archive can make Open allocate.
    uint64_t max_central_directory_bytes = 64ull << 20;
    uint64_t max_entries = 1'000'000;
  };

  // Validates the end records and every central-directory entry (sizes,
  // offsets inside the archive, method stored, no duplicate names).
  static absl::StatusOr<std::unique_ptr<ZipArchive>> Open(
      std::shared_ptr<const ByteSource> source, Options options);
  static absl::StatusOr<std::unique_ptr<ZipArchive>> Open(
      std::shared_ptr<const ByteSource> source) {
    return Open(std::move(source), Options());
  }

  const ByteSource& source() const { return *source_; }
  // In central-directory order.
  const std::vector<ZipEntry>& entries() const { return entries_; }
  // nullptr if absent.
  const ZipEntry* Find(std::string_view name) const;

  // The offset in the source of the entry's first data byte, from its local
  // header (read once, then cached; thread-safe). DATA_LOSS if the local
  // header is missing, disagrees with the central directory (name, method,
  // sizes), or its data would run past the central directory.
  absl::StatusOr<uint64_t> DataOffset(const ZipEntry& entry) const;

  // The whole entry's bytes (for small entries: data.pkl, byteorder);
  // INVALID_ARGUMENT past `max_bytes`.
  absl::StatusOr<std::string> ReadEntry(const ZipEntry& entry,
                                        uint64_t max_bytes) const;

 private:
  ZipArchive() = default;

  std::shared_ptr<const ByteSource> source_;
  uint64_t central_directory_offset_ = 0;  // entries' data must end before it
  std::vector<ZipEntry> entries_;
  std::map<std::string, size_t, std::less<>> by_name_;
  mutable std::mutex mu_;
  mutable std::map<size_t, uint64_t> data_offsets_;  // by entry index
};

}  // namespace garden

#endif  // GARDEN_COMMON_FORMATS_ZIP_ARCHIVE_H_

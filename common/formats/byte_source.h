// The one seam through which checkpoint readers get bytes: a source knows its
// size and reads ranges on request, so a reader touches only the bytes it
// asks for. A local file is one implementation (pread); the Hugging Face Hub
// (HTTP range reads) is another. Readers must never assume a local path.
//
// Errors every implementation returns from ReadAt: DATA_LOSS naming the source
// and the offset when it ends before the range does (a file truncated while
// it is read is a status, never a crash), or the I/O error as a status.
#ifndef GARDEN_COMMON_FORMATS_BYTE_SOURCE_H_
#define GARDEN_COMMON_FORMATS_BYTE_SOURCE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace garden {

class ByteSource {
 public:
  virtual ~ByteSource();

  // What error messages call this source: a path, a URL.
  virtual const std::string& name() const = 0;
  // The size when the source was opened.
  virtual uint64_t size() const = 0;

  // Fills `out` with the bytes [offset, offset + out.size()). INVALID_ARGUMENT
  // for a range past size(); DATA_LOSS when the source turns out shorter.
  // Thread-safe. Counts the bytes into bytes_read().
  absl::Status ReadAt(uint64_t offset, absl::Span<uint8_t> out) const;
  // ReadAt into a fresh string.
  absl::StatusOr<std::string> ReadString(uint64_t offset, uint64_t size) const;

  // Says that bytes [offset, offset + size) are about to be read, in pieces:
  // a remote source fetches them in one transfer (and may keep them). Local
  // sources ignore it. Errors are ReadAt's.
  virtual absl::Status Prefetch(uint64_t offset, uint64_t size) const {
    return absl::OkStatus();
  }

  // The whole source in memory, read-only, where that is cheap (a local file
  // maps it); UNIMPLEMENTED where it is not. Reads of a mapping of a file
  // that shrinks fault (SIGBUS): only callers that own the file map it.
  virtual absl::StatusOr<absl::Span<const uint8_t>> Map() const;

  // Bytes delivered by ReadAt since the source was opened (benchmarks print
  // it; the Hub counts what it fetched).
  uint64_t bytes_read() const { return bytes_read_.load(); }

 protected:
  // Reads exactly out.size() bytes at `offset` (already checked against
  // size()); DATA_LOSS if the source ends first.
  virtual absl::Status DoRead(uint64_t offset, absl::Span<uint8_t> out) const = 0;

 private:
  mutable std::atomic<uint64_t> bytes_read_{0};
};

// A local file read with pread; mapped (MAP_SHARED, read-only) on the first
// Map() call only.
class LocalFileSource : public ByteSource {
 public:
  // NOT_FOUND if the file does not exist, PERMISSION_DENIED if unreadable,
  // DATA_LOSS for a path that is not a regular file; messages start with
  // "<path>: ".
  static absl::StatusOr<std::shared_ptr<LocalFileSource>> Open(
      const std::string& path);
  ~LocalFileSource() override;

  const std::string& name() const override { return path_; }
  uint64_t size() const override { return size_; }
  absl::StatusOr<absl::Span<const uint8_t>> Map() const override;

  // Bytes every LocalFileSource of the process has read from disk (its page
  // cache, that is) with pread, for metrics; mapped reads are not counted.
  static uint64_t TotalBytesRead();

 protected:
  absl::Status DoRead(uint64_t offset, absl::Span<uint8_t> out) const override;

 private:
  LocalFileSource(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}

  std::string path_;
  int fd_;
  uint64_t size_;
  mutable std::once_flag map_once_;
  mutable absl::StatusOr<absl::Span<const uint8_t>> map_;
};

// Bytes held in memory: tests and fuzz targets parse with it.
class MemorySource : public ByteSource {
 public:
  MemorySource(std::string name, std::string bytes)
      : name_(std::move(name)), bytes_(std::move(bytes)) {}
  const std::string& name() const override { return name_; }
  uint64_t size() const override { return bytes_.size(); }
  absl::StatusOr<absl::Span<const uint8_t>> Map() const override;

 protected:
  absl::Status DoRead(uint64_t offset, absl::Span<uint8_t> out) const override;

 private:
  std::string name_;
  std::string bytes_;
};

}  // namespace garden

#endif  // GARDEN_COMMON_FORMATS_BYTE_SOURCE_H_

#include "common/formats/byte_source.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"

namespace garden {

ByteSource::~ByteSource() = default;

absl::Status ByteSource::ReadAt(uint64_t offset,
                                absl::Span<uint8_t> out) const {
  if (offset > size() || out.size() > size() - offset) {
    return absl::InvalidArgumentError(absl::StrCat(
        name(), ": bytes [", offset, ", ", offset + out.size(),
        ") are past the end of its ", size(), " bytes"));
  }
  if (out.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(DoRead(offset, out));
  bytes_read_.fetch_add(out.size(), std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::StatusOr<std::string> ByteSource::ReadString(uint64_t offset,
                                                   uint64_t size) const {
  std::string out(size, '\0');
  RETURN_IF_ERROR(ReadAt(
      offset, absl::MakeSpan(reinterpret_cast<uint8_t*>(out.data()), size)));
  return out;
}

absl::StatusOr<absl::Span<const uint8_t>> ByteSource::Map() const {
  return absl::UnimplementedError(
      absl::StrCat(name(), ": this source cannot be mapped"));
}

absl::StatusOr<std::shared_ptr<LocalFileSource>> LocalFileSource::Open(
    const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(path, errno, "cannot open");
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return ErrnoStatus(path, err, "cannot stat");
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return absl::DataLossError(absl::StrCat(path, ": not a regular file"));
  }
  return std::shared_ptr<LocalFileSource>(
      new LocalFileSource(path, fd, static_cast<uint64_t>(st.st_size)));
}

LocalFileSource::~LocalFileSource() {
  if (map_.ok() && !map_->empty()) {
    munmap(const_cast<uint8_t*>(map_->data()), map_->size());
  }
  close(fd_);
}

namespace {
std::atomic<uint64_t> g_local_bytes_read{0};
}  // namespace

uint64_t LocalFileSource::TotalBytesRead() { return g_local_bytes_read.load(); }

absl::Status LocalFileSource::DoRead(uint64_t offset,
                                     absl::Span<uint8_t> out) const {
  size_t got = 0;
  // Counted as read, whatever follows: the bytes that did come were read.
  struct Count {
    size_t& got;
    ~Count() { g_local_bytes_read.fetch_add(got, std::memory_order_relaxed); }
  } count{got};
  while (got < out.size()) {
    const ssize_t n = pread(fd_, out.data() + got, out.size() - got,
                            static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::DataLossError(absl::StrCat(path_, ": reading bytes at ",
                                              offset + got, ": ",
                                              std::strerror(errno)));
    }
    if (n == 0) {
      return absl::DataLossError(absl::StrCat(
          path_, ": truncated while being read: the file ended at byte ",
          offset + got, " of the ", size_, " it had when opened"));
    }
    got += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Span<const uint8_t>> LocalFileSource::Map() const {
  std::call_once(map_once_, [this] {
    if (size_ == 0) {
      map_ = absl::Span<const uint8_t>();
      return;
    }
    void* map = mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd_, 0);
    if (map == MAP_FAILED) {
      map_ = ErrnoStatus(path_, errno, "cannot mmap");
      return;
    }
    map_ = absl::Span<const uint8_t>(static_cast<const uint8_t*>(map), size_);
  });
  return map_;
}

absl::Status MemorySource::DoRead(uint64_t offset,
                                  absl::Span<uint8_t> out) const {
  std::memcpy(out.data(), bytes_.data() + offset, out.size());
  return absl::OkStatus();
}

absl::StatusOr<absl::Span<const uint8_t>> MemorySource::Map() const {
  return absl::Span<const uint8_t>(
      reinterpret_cast<const uint8_t*>(bytes_.data()), bytes_.size());
}

}  // namespace garden

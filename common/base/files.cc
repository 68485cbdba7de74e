#include "common/base/files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"
#include "common/base/status.h"

namespace garden {
namespace {

// Closes a descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now, reporting the error close() gives (write-back failures on
  // some file systems surface only here).
  int Close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// fsync of a directory, so that renames in it survive a crash: 0 or errno.
int SyncDirectory(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || ::fsync(fd.get()) != 0) return errno;
  return 0;
}

}  // namespace

absl::Status FsyncDirectory(const std::string& dir) {
  if (const int err = SyncDirectory(dir); err != 0) {
    return ErrnoStatus(dir, err, "cannot fsync the directory");
  }
  return absl::OkStatus();
}

absl::Status WriteFileAtomic(const std::string& path, std::string_view bytes) {
  return WriteFileAtomic(path, bytes, AtomicWriteOptions());
}

absl::Status WriteFileAtomic(const std::string& path, std::string_view bytes,
                             const AtomicWriteOptions& options) {
  // mkostemp needs a writable template.
  std::string tmp = path + ".tmp.XXXXXX";
  Fd fd(::mkostemp(tmp.data(), O_CLOEXEC));
  if (fd.get() < 0) {
    return ErrnoStatus(path, errno, "cannot create a temporary file");
  }
  bool renamed = false;
  auto fail = [&](int err, std::string_view what) {
    if (!renamed) ::unlink(tmp.c_str());
    return ErrnoStatus(path, err, what);
  };
  // mkostemp makes the file 0600; a finished artefact should be readable.
  if (::fchmod(fd.get(), 0644) != 0) return fail(errno, "cannot chmod");
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n =
        ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(errno, "cannot write");
    }
    done += static_cast<size_t>(n);
  }
  if (options.durable && ::fsync(fd.get()) != 0) return fail(errno, "cannot fsync");
  if (fd.Close() != 0) return fail(errno, "cannot close");
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return fail(errno, "cannot rename the temporary file into place");
  }
  renamed = true;
  if (!options.durable) return absl::OkStatus();
  // The rename itself is durable only once the directory is synced.
  if (const int err = SyncDirectory(DirectoryOf(path)); err != 0) {
    return fail(err, "cannot fsync the directory");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus(path, errno, "cannot open");
  std::string out;
  struct stat st;
  if (::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode)) {
    out.reserve(static_cast<size_t>(st.st_size));
  }
  std::vector<char> buffer(1 << 16);
  while (true) {
    const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(path, errno, "cannot read");  // EISDIR: a directory
    }
    if (n == 0) break;
    out.append(buffer.data(), static_cast<size_t>(n));
  }
  return out;
}

absl::StatusOr<std::string> ReadFileAtMost(const std::string& path,
                                           uint64_t max_bytes,
                                           absl::StatusCode too_big) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
      static_cast<uint64_t>(st.st_size) > max_bytes) {
    return absl::Status(too_big, absl::StrCat(path, ": ", st.st_size,
                                              " bytes, more than the ", max_bytes,
                                              " such a file may have"));
  }
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  if (text.size() > max_bytes) {  // grew, or not a regular file
    return absl::Status(too_big, absl::StrCat(path, ": more than the ", max_bytes,
                                              " bytes such a file may have"));
  }
  return text;
}

absl::StatusOr<std::string> ReadFlagFile(std::string_view flag,
                                         const std::string& path,
                                         uint64_t max_bytes) {
  absl::StatusOr<std::string> text =
      ReadFileAtMost(path, max_bytes, absl::StatusCode::kInvalidArgument);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        absl::StrCat(ToAbsl(flag), " ", text.status().message()));
  }
  return text;
}

}  // namespace garden

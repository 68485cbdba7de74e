#include "common/hub/extract_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/base/absl_compat.h"
#include "common/base/status.h"
#include "spdlog/spdlog.h"
#include "xxhash.h"

namespace garden {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kChecksumBytes = 8;
constexpr size_t kVerifyChunk = size_t{4} << 20;

std::string FileName(uint64_t offset, uint64_t size) {
  return absl::StrCat(offset, "-", size);
}

// "<offset>-<size>" back into numbers; false for anything else.
bool ParseFileName(const std::string& name, uint64_t* offset, uint64_t* size) {
  std::vector<std::string> parts = absl::StrSplit(name, '-');
  return parts.size() == 2 && absl::SimpleAtoi(parts[0], offset) &&
         absl::SimpleAtoi(parts[1], size);
}

// Etags name folders: hex digits only (sha256 or git sha1).
bool IsEtag(std::string_view etag) {
  if (etag.empty() || etag.size() > 128) return false;
  for (char c : etag) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Older than any transfer takes: left by a process that was killed.
bool IsStale(const fs::path& path) {
  std::error_code ec;
  const auto written = fs::last_write_time(path, ec);
  return !ec && fs::file_time_type::clock::now() - written > std::chrono::minutes(10);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ExtractCache>> ExtractCache::Open(
    Options options) {
  std::error_code ec;
  fs::create_directories(options.dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(absl::StrCat(
        options.dir, ": cannot create the extract cache: ", ec.message()));
  }
  auto cache = std::unique_ptr<ExtractCache>(new ExtractCache(std::move(options)));
  cache->Scan();
  return cache;
}

void ExtractCache::Scan() {
  std::error_code ec;
  for (fs::directory_iterator blob(options_.dir, ec), end; !ec && blob != end;
       blob.increment(ec)) {
    const std::string etag = blob->path().filename().string();
    if (!IsEtag(etag) || !blob->is_directory()) continue;
    std::error_code inner;
    for (fs::directory_iterator it(blob->path(), inner), stop;
         !inner && it != stop; it.increment(inner)) {
      const std::string name = it->path().filename().string();
      uint64_t offset = 0, size = 0;
      if (!ParseFileName(name, &offset, &size)) {
        // A temporary file of a write that never finished; a recent one may
        // be another gardend's on the same cache, still being written.
        if (name.find(".tmp.") != std::string::npos && IsStale(it->path())) {
          fs::remove(it->path(), inner);
        }
        continue;
      }
      const uint64_t file_bytes = fs::file_size(it->path(), inner);
      if (inner || file_bytes != size + kChecksumBytes) {
        fs::remove(it->path(), inner);
        continue;
      }
      AddLocked(Key{etag, offset, size}, it->path().string(), file_bytes);
    }
  }
  std::unique_lock lock(mu_);
  while (bytes_ > options_.max_bytes && !lru_.empty()) DropLocked(lru_.back());
}

uint64_t ExtractCache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

ExtractCache::Stats ExtractCache::stats() const {
  std::lock_guard lock(mu_);
  return {.hits = hits_, .misses = misses_, .bytes = bytes_, .entries = entries_.size()};
}

void ExtractCache::AddLocked(const Key& key, std::string path,
                             uint64_t file_bytes) {
  if (entries_.count(key)) return;
  lru_.push_front(key);
  entries_[key] = Entry{std::move(path), file_bytes, lru_.begin()};
  bytes_ += file_bytes;
}

void ExtractCache::DropLocked(const Key& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  std::error_code ec;
  fs::remove(it->second.path, ec);
  bytes_ -= it->second.file_bytes;
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

std::optional<std::pair<ExtractCache::Key, std::string>>
ExtractCache::LookupLocked(std::string_view etag, uint64_t offset,
                           uint64_t size) {
  // Extracts of one blob sort by offset: look at those starting at or
  // before `offset`.
  auto it = entries_.upper_bound(Key{std::string(etag), offset, UINT64_MAX});
  while (it != entries_.begin()) {
    --it;
    const Key& key = it->first;
    if (key.etag != etag) break;
    if (key.offset <= offset && offset - key.offset <= key.size &&
        size <= key.size - (offset - key.offset)) {
      ++hits_;
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      return std::make_pair(key, it->second.path);
    }
  }
  return std::nullopt;
}

namespace {

// XXH3-64 of the file's first `size` bytes.
absl::StatusOr<uint64_t> HashPrefix(const ByteSource& file, uint64_t size) {
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  std::vector<uint8_t> buffer(std::min<uint64_t>(kVerifyChunk, size));
  absl::Status read = absl::OkStatus();
  for (uint64_t done = 0; done < size && read.ok();) {
    const size_t n =
        static_cast<size_t>(std::min<uint64_t>(buffer.size(), size - done));
    read = file.ReadAt(done, absl::MakeSpan(buffer.data(), n));
    XXH3_64bits_update(state, buffer.data(), n);
    done += n;
  }
  const uint64_t sum = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  RETURN_IF_ERROR(read);
  return sum;
}

// Extracts below this are checked whole when opened; larger ones as they
// are read, which costs no second pass over a sweep's tensor.
constexpr uint64_t kCheckWholeBelow = 1 << 20;

// An extract's payload, its checksum checked as it is read: reads in order
// (a sweep's chunks) are hashed as they pass and compared when they reach
// the end; the first read out of order checks the whole extract first. A
// mismatch is DATA_LOSS on that read and every later one, and `on_damage`
// drops the entry from the cache.
class CheckedExtract : public ByteSource {
 public:
  CheckedExtract(std::shared_ptr<LocalFileSource> file, uint64_t size,
                 uint64_t checksum, bool verified,
                 std::function<void()> on_damage)
      : file_(std::move(file)),
        size_(size),
        checksum_(checksum),
        verified_(verified),
        on_damage_(std::move(on_damage)) {
    XXH3_64bits_reset(state_.get());
  }
  const std::string& name() const override { return file_->name(); }
  uint64_t size() const override { return size_; }

 protected:
  absl::Status DoRead(uint64_t offset, absl::Span<uint8_t> out) const override {
    RETURN_IF_ERROR(file_->ReadAt(offset, out));
    std::lock_guard lock(mu_);
    if (!verified_ && !damaged_) {
      if (offset == next_) {
        XXH3_64bits_update(state_.get(), out.data(), out.size());
        next_ += out.size();
        if (next_ == size_) Conclude(XXH3_64bits_digest(state_.get()));
      } else if (offset + out.size() > next_) {
        absl::StatusOr<uint64_t> sum = HashPrefix(*file_, size_);
        RETURN_IF_ERROR(sum.status());
        Conclude(*sum);
      }
    }
    if (damaged_) {
      return absl::DataLossError(absl::StrCat(
          file_->name(), ": the cached extract fails its checksum; it is "
                         "dropped and will be fetched again"));
    }
    return absl::OkStatus();
  }

 private:
  void Conclude(uint64_t sum) const {
    verified_ = sum == checksum_;
    damaged_ = !verified_;
    if (damaged_ && on_damage_) on_damage_();
  }
  struct StateDeleter {
    void operator()(XXH3_state_t* s) const { XXH3_freeState(s); }
  };

  std::shared_ptr<LocalFileSource> file_;
  uint64_t size_, checksum_;
  mutable std::mutex mu_;
  mutable bool verified_, damaged_ = false;
  mutable uint64_t next_ = 0;
  std::unique_ptr<XXH3_state_t, StateDeleter> state_{XXH3_createState()};
  std::function<void()> on_damage_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<const ByteSource>> ExtractCache::OpenExtract(
    const Key& key, const std::string& path, bool verified) {
  ASSIGN_OR_RETURN(std::shared_ptr<LocalFileSource> file,
                   LocalFileSource::Open(path));
  if (file->size() != key.size + kChecksumBytes) {
    return absl::DataLossError(absl::StrCat(path, ": ", file->size(),
                                            " bytes, expected ",
                                            key.size + kChecksumBytes));
  }
  uint8_t stored[kChecksumBytes];
  RETURN_IF_ERROR(file->ReadAt(key.size, absl::MakeSpan(stored)));
  uint64_t checksum = 0;
  for (int i = 7; i >= 0; --i) checksum = (checksum << 8) | stored[i];
  if (!verified && key.size < kCheckWholeBelow) {
    ASSIGN_OR_RETURN(const uint64_t sum, HashPrefix(*file, key.size));
    if (sum != checksum) {
      return absl::DataLossError(absl::StrCat(path, ": checksum mismatch"));
    }
    verified = true;
  }
  return std::make_shared<CheckedExtract>(std::move(file), key.size, checksum,
                                          verified, [this, key] {
                                            spdlog::warn(
                                                "extract cache: {}/{}-{} fails "
                                                "its checksum; dropped",
                                                key.etag, key.offset, key.size);
                                            std::lock_guard lock(mu_);
                                            DropLocked(key);
                                          });
}

std::optional<ExtractCache::Hit> ExtractCache::Find(std::string_view etag,
                                                    uint64_t offset,
                                                    uint64_t size) {
  std::optional<std::pair<Key, std::string>> found;
  {
    std::lock_guard lock(mu_);
    found = LookupLocked(etag, offset, size);
  }
  if (!found) return std::nullopt;
  return OpenFound(found->first, found->second);
}

std::optional<ExtractCache::Hit> ExtractCache::OpenFound(const Key& key,
                                                         const std::string& path) {
  auto verified = OpenExtract(key, path, /*verified=*/false);
  if (!verified.ok()) {
    spdlog::warn("extract cache: {}; dropping it", verified.status().ToString());
    std::lock_guard lock(mu_);
    DropLocked(key);
    return std::nullopt;
  }
  return Hit{*std::move(verified), key.offset};
}

absl::StatusOr<ExtractCache::Hit> ExtractCache::GetOrFetch(
    std::string_view etag, uint64_t offset, uint64_t size, const Fetch& fetch) {
  if (!IsEtag(etag)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "extract cache: etag \"", ToAbsl(etag), "\" is not hexadecimal"));
  }
  const Key key{std::string(etag), offset, size};
  std::shared_ptr<Flight> flight;
  {
    std::unique_lock lock(mu_);
    // Looked up under the same lock as the flights, so that a caller
    // arriving just after a fetch finished finds its extract.
    if (auto found = LookupLocked(etag, offset, size)) {
      lock.unlock();
      if (auto hit = OpenFound(found->first, found->second)) return *hit;
      lock.lock();
    }
    auto [it, leader] = flights_.try_emplace(key, nullptr);
    if (!leader) {
      ++hits_;  // the bytes cross the network once, for the leader
      flight = it->second;
      flight_done_.wait(lock, [&] { return flight->done; });
      return flight->result;
    }
    ++misses_;
    it->second = flight = std::make_shared<Flight>();
  }
  absl::StatusOr<Hit> result = FetchAndStore(key, fetch);
  std::lock_guard lock(mu_);
  flight->result = result;
  flight->done = true;
  flights_.erase(key);
  flight_done_.notify_all();
  return result;
}

namespace {

// An extract's temporary file, mapped for writing. The blocks are reserved
// first (posix_fallocate), so that a full disk is an error here rather than
// a SIGBUS while the mapping is written.
class TempExtract {
 public:
  static absl::StatusOr<std::unique_ptr<TempExtract>> Create(
      const std::string& final_path, uint64_t bytes) {
    auto temp = std::unique_ptr<TempExtract>(new TempExtract());
    temp->path_ = final_path + ".tmp.XXXXXX";
    temp->fd_ = ::mkostemp(temp->path_.data(), O_CLOEXEC);
    if (temp->fd_ < 0) {
      temp->path_.clear();
      return ErrnoStatus(final_path, errno, "cannot create a temporary file");
    }
    if (const int err = ::posix_fallocate(temp->fd_, 0, static_cast<off_t>(bytes));
        err != 0) {
      return ErrnoStatus(temp->path_, err, "cannot reserve the extract's space");
    }
    void* map = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
                       temp->fd_, 0);
    if (map == MAP_FAILED) return ErrnoStatus(temp->path_, errno, "cannot mmap");
    temp->map_ = absl::MakeSpan(static_cast<uint8_t*>(map), bytes);
    return temp;
  }
  ~TempExtract() {
    if (!map_.empty()) ::munmap(map_.data(), map_.size());
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  absl::Span<uint8_t> bytes() { return map_; }
  // Unmaps, and renames the file to `final_path`.
  absl::Status Commit(const std::string& final_path) {
    ::munmap(map_.data(), map_.size());
    map_ = {};
    if (::fchmod(fd_, 0644) != 0 || ::close(fd_) != 0) {
      fd_ = -1;
      return ErrnoStatus(path_, errno, "cannot finish the extract");
    }
    fd_ = -1;
    if (::rename(path_.c_str(), final_path.c_str()) != 0) {
      return ErrnoStatus(final_path, errno, "cannot rename the extract into place");
    }
    path_.clear();
    return absl::OkStatus();
  }

 private:
  TempExtract() = default;
  std::string path_;
  int fd_ = -1;
  absl::Span<uint8_t> map_;
};

void WriteChecksum(absl::Span<uint8_t> file, uint64_t size) {
  const uint64_t sum = XXH3_64bits(file.data(), size);
  for (int i = 0; i < 8; ++i) {
    file[size + i] = static_cast<uint8_t>(sum >> (8 * i));
  }
}

}  // namespace

std::string ExtractCache::PathOf(const Key& key) const {
  return (fs::path(options_.dir) / key.etag / FileName(key.offset, key.size))
      .string();
}

absl::StatusOr<ExtractCache::Hit> ExtractCache::FetchAndStore(
    const Key& key, const Fetch& fetch) {
  const uint64_t file_bytes = key.size + kChecksumBytes;
  if (file_bytes <= options_.max_bytes) {
    // Fetched straight into the file through a shared mapping: the bytes
    // land in the page cache once, with no buffer to copy them from.
    const std::string path = PathOf(key);
    std::error_code ec;
    fs::create_directories(fs::path(path).parent_path(), ec);
    absl::StatusOr<std::unique_ptr<TempExtract>> temp =
        TempExtract::Create(path, file_bytes);
    if (temp.ok()) {
      absl::Span<uint8_t> bytes = (*temp)->bytes();
      RETURN_IF_ERROR(fetch(bytes.subspan(0, key.size)));
      WriteChecksum(bytes, key.size);
      // Not fsynced: the checksum catches what a power loss may tear.
      absl::Status committed = (*temp)->Commit(path);
      if (committed.ok()) {
        {
          std::lock_guard lock(mu_);
          AddLocked(key, path, file_bytes);
          // Evict the least recently used, never the one just written.
          while (bytes_ > options_.max_bytes && lru_.size() > 1) DropLocked(lru_.back());
        }
        auto file = OpenExtract(key, path, /*verified=*/true);
        if (file.ok()) return Hit{*std::move(file), key.offset};
      }
      // Rare (the cache folder went away, say): the bytes went with the
      // temporary file, so they are fetched again, into memory.
      spdlog::warn("extract cache: not kept: {}", committed.ToString());
      return FetchIntoMemory(key, fetch);
    }
    spdlog::warn("extract cache: not kept: {}", temp.status().ToString());
  }
  return FetchIntoMemory(key, fetch);
}

// Too big to keep, or not writable: served from memory this once.
absl::StatusOr<ExtractCache::Hit> ExtractCache::FetchIntoMemory(
    const Key& key, const Fetch& fetch) {
  std::string bytes(key.size, '\0');
  RETURN_IF_ERROR(fetch(absl::MakeSpan(reinterpret_cast<uint8_t*>(bytes.data()),
                                       bytes.size())));
  return Hit{std::make_shared<MemorySource>(
                 absl::StrCat("extract ", key.etag, "/",
                              FileName(key.offset, key.size)),
                 std::move(bytes)),
             key.offset};
}

}  // namespace garden

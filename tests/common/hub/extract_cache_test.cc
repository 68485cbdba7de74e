// ExtractCache: fetched once and read back, sub-range hits, persistence
// across Open, damaged files dropped and fetched again, leftovers of a
// killed write removed by Open, least-recently-used eviction under
// max_bytes, extracts too big to keep, single-flight fetches, fetch errors
// and bad etags.
#include "common/hub/extract_cache.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <latch>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_files.h"

namespace garden {
namespace {

namespace fs = std::filesystem;

using ::garden::testing::TempDir;
using ::garden::testing::WriteFile;
using ::testing::HasSubstr;

// A sha256-like etag, and a second blob's.
constexpr char kEtag[] =
    "3f2a9c0d4e5b6a7988776655443322110fedcba9876543210abcdef012345678";
constexpr char kOtherEtag[] =
    "aaaabbbbccccddddeeeeffff0000111122223333444455556666777788889999";

// Byte `i` of the (imaginary) blob `etag`: differs by position and by blob.
uint8_t BlobByte(std::string_view etag, uint64_t i) {
  return static_cast<uint8_t>((i * 131 + (i >> 8) * 7 + etag[0]) % 251);
}

std::string BlobBytes(std::string_view etag, uint64_t offset, uint64_t size) {
  std::string out(size, '\0');
  for (uint64_t i = 0; i < size; ++i) {
    out[i] = static_cast<char>(BlobByte(etag, offset + i));
  }
  return out;
}

// A fetch of blob `etag`'s range [offset, offset + span size) that counts
// its calls.
ExtractCache::Fetch CountingFetch(std::string_view etag, uint64_t offset,
                                  std::atomic<int>* calls) {
  return [etag = std::string(etag), offset, calls](absl::Span<uint8_t> out) {
    ++*calls;
    for (size_t i = 0; i < out.size(); ++i) out[i] = BlobByte(etag, offset + i);
    return absl::OkStatus();
  };
}

// A fetch that must not be called.
absl::Status NoFetch(absl::Span<uint8_t>) {
  ADD_FAILURE() << "fetch called for a cached range";
  return absl::InternalError("unexpected fetch");
}

// The blob's bytes [offset, offset + size) as the hit holds them.
std::string ReadRange(const ExtractCache::Hit& hit, uint64_t offset,
                      uint64_t size) {
  EXPECT_GE(offset, hit.offset);
  absl::StatusOr<std::string> bytes = hit.file->ReadString(offset - hit.offset, size);
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return bytes.ok() ? *bytes : std::string();
}

std::unique_ptr<ExtractCache> OpenCache(const std::string& dir,
                                        uint64_t max_bytes = 64ull << 20) {
  absl::StatusOr<std::unique_ptr<ExtractCache>> cache =
      ExtractCache::Open({.dir = dir, .max_bytes = max_bytes});
  EXPECT_TRUE(cache.ok()) << cache.status();
  return cache.ok() ? *std::move(cache) : nullptr;
}

// The extract file of a range, as the header lays it out.
std::string ExtractPath(const std::string& dir, std::string_view etag,
                        uint64_t offset, uint64_t size) {
  return (fs::path(dir) / std::string(etag) /
          (std::to_string(offset) + "-" + std::to_string(size)))
      .string();
}

// Every file below `dir`, relative to it.
std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) {
      out.push_back(fs::relative(entry.path(), dir).string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ExtractCacheTest, OpenCreatesTheDirectory) {
  TempDir tmp;
  const std::string dir = tmp.Join("a/b/extracts");
  auto cache = OpenCache(dir);
  ASSERT_NE(cache, nullptr);
  EXPECT_TRUE(fs::is_directory(dir));
  EXPECT_EQ(cache->bytes(), 0u);
}

TEST(ExtractCacheTest, GetOrFetchFetchesOnceAndReturnsTheFetchedBytes) {
  TempDir tmp;
  auto cache = OpenCache(tmp.path());
  ASSERT_NE(cache, nullptr);
  std::atomic<int> calls{0};
  absl::StatusOr<ExtractCache::Hit> hit =
      cache->GetOrFetch(kEtag, 1000, 300, CountingFetch(kEtag, 1000, &calls));
  ASSERT_TRUE(hit.ok()) << hit.status();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_LE(hit->offset, 1000u);
  EXPECT_EQ(ReadRange(*hit, 1000, 300), BlobBytes(kEtag, 1000, 300));
  // Kept on disk, with its 8-byte checksum.
  EXPECT_EQ(fs::file_size(ExtractPath(tmp.path(), kEtag, 1000, 300)), 308u);
  EXPECT_EQ(cache->bytes(), 308u);
}

TEST(ExtractCacheTest, SecondGetOrFetchAndFindOfASubRangeHitWithoutFetching) {
  TempDir tmp;
  auto cache = OpenCache(tmp.path());
  ASSERT_NE(cache, nullptr);
  std::atomic<int> calls{0};
  ASSERT_TRUE(cache->GetOrFetch(kEtag, 100, 400, CountingFetch(kEtag, 100, &calls)).ok());
  ASSERT_EQ(calls.load(), 1);

  absl::StatusOr<ExtractCache::Hit> again = cache->GetOrFetch(kEtag, 100, 400, NoFetch);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(ReadRange(*again, 100, 400), BlobBytes(kEtag, 100, 400));

  // A range inside the extract, from its start, in its middle, to its end.
  for (auto [offset, size] : std::vector<std::pair<uint64_t, uint64_t>>{
           {100, 10}, {250, 50}, {480, 20}, {100, 400}}) {
    std::optional<ExtractCache::Hit> found = cache->Find(kEtag, offset, size);
    ASSERT_TRUE(found.has_value()) << offset << "+" << size;
    EXPECT_EQ(found->offset, 100u);
    EXPECT_EQ(ReadRange(*found, offset, size), BlobBytes(kEtag, offset, size));
  }
  absl::StatusOr<ExtractCache::Hit> sub = cache->GetOrFetch(kEtag, 300, 100, NoFetch);
  ASSERT_TRUE(sub.ok()) << sub.status();
  EXPECT_EQ(ReadRange(*sub, 300, 100), BlobBytes(kEtag, 300, 100));
  EXPECT_EQ(calls.load(), 1);
}

TEST(ExtractCacheTest, FindMissesRangesNotCovered) {
  TempDir tmp;
  auto cache = OpenCache(tmp.path());
  ASSERT_NE(cache, nullptr);
  std::atomic<int> calls{0};
  ASSERT_TRUE(cache->GetOrFetch(kEtag, 100, 400, CountingFetch(kEtag, 100, &calls)).ok());
  EXPECT_FALSE(cache->Find(kEtag, 99, 10).has_value());    // starts before
  EXPECT_FALSE(cache->Find(kEtag, 490, 11).has_value());   // ends after
  EXPECT_FALSE(cache->Find(kEtag, 600, 10).has_value());   // past it
  EXPECT_FALSE(cache->Find(kEtag, 0, 1000).has_value());   // contains it
  EXPECT_FALSE(cache->Find(kOtherEtag, 100, 10).has_value());  // other blob
}

TEST(ExtractCacheTest, AnotherOpenOfTheSameDirectoryFindsTheExtract) {
  TempDir tmp;
  std::atomic<int> calls{0};
  {
    auto cache = OpenCache(tmp.path());
    ASSERT_NE(cache, nullptr);
    ASSERT_TRUE(cache->GetOrFetch(kEtag, 0, 256, CountingFetch(kEtag, 0, &calls)).ok());
  }
  auto reopened = OpenCache(tmp.path());
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->bytes(), 256u + 8u);
  std::optional<ExtractCache::Hit> found = reopened->Find(kEtag, 16, 64);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(ReadRange(*found, 16, 64), BlobBytes(kEtag, 16, 64));
  absl::StatusOr<ExtractCache::Hit> hit = reopened->GetOrFetch(kEtag, 0, 256, NoFetch);
  ASSERT_TRUE(hit.ok()) << hit.status();
  EXPECT_EQ(ReadRange(*hit, 0, 256), BlobBytes(kEtag, 0, 256));
  EXPECT_EQ(calls.load(), 1);
}

// Flips one byte of a file in place.
void FlipByte(const std::string& path, uint64_t at) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.is_open()) << path;
  f.seekg(static_cast<std::streamoff>(at));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x40);
  f.seekp(static_cast<std::streamoff>(at));
  f.write(&c, 1);
  ASSERT_TRUE(f.good());
}

TEST(ExtractCacheTest, DamagedPayloadIsDroppedAndFetchedAgain) {
  TempDir tmp;
  std::atomic<int> calls{0};
  const std::string path = ExtractPath(tmp.path(), kEtag, 64, 128);
  {
    auto cache = OpenCache(tmp.path());
    ASSERT_NE(cache, nullptr);
    ASSERT_TRUE(cache->GetOrFetch(kEtag, 64, 128, CountingFetch(kEtag, 64, &calls)).ok());
  }
  ASSERT_TRUE(fs::exists(path));
  FlipByte(path, 40);  // a payload byte; the size stays right

  auto cache = OpenCache(tmp.path());
  ASSERT_NE(cache, nullptr);
  EXPECT_FALSE(cache->Find(kEtag, 64, 128).has_value());
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(cache->bytes(), 0u);

  absl::StatusOr<ExtractCache::Hit> hit =
      cache->GetOrFetch(kEtag, 64, 128, CountingFetch(kEtag, 64, &calls));
  ASSERT_TRUE(hit.ok()) << hit.status();
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(ReadRange(*hit, 64, 128), BlobBytes(kEtag, 64, 128));
  EXPECT_TRUE(fs::exists(path));
}

// A large extract is checked as it is read, so a sweep reads it once: in
// order, the read that reaches its end fails; out of order, the first read.
TEST(ExtractCacheTest, LargeDamagedExtractFailsTheReadThatCompletesIt) {
  TempDir tmp;
  constexpr uint64_t kSize = 3 << 20;  // above the check-when-opened bound
  std::atomic<int> calls{0};
  const std::string path = ExtractPath(tmp.path(), kEtag, 0, kSize);
  {
    auto cache = OpenCache(tmp.path());
    ASSERT_NE(cache, nullptr);
    ASSERT_TRUE(cache->GetOrFetch(kEtag, 0, kSize, CountingFetch(kEtag, 0, &calls)).ok());
  }
  FlipByte(path, kSize - 10);
  auto cache = OpenCache(tmp.path());
  ASSERT_NE(cache, nullptr);
  std::optional<ExtractCache::Hit> hit = cache->Find(kEtag, 0, kSize);
  ASSERT_TRUE(hit.has_value());  // not read yet: not checked yet
  std::string chunk(1 << 20, '\0');
  auto span = absl::MakeSpan(reinterpret_cast<uint8_t*>(chunk.data()), chunk.size());
  EXPECT_TRUE(hit->file->ReadAt(0, span).ok());
  EXPECT_TRUE(hit->file->ReadAt(1 << 20, span).ok());
  const absl::Status last = hit->file->ReadAt(2 << 20, span);
  EXPECT_EQ(last.code(), absl::StatusCode::kDataLoss) << last;
  EXPECT_THAT(std::string(last.message()), ::testing::HasSubstr("checksum"));
  EXPECT_EQ(hit->file->ReadAt(0, span).code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(fs::exists(path));  // dropped, to be fetched again

  // Out of order: the first read checks the whole extract.
  ASSERT_TRUE(cache->GetOrFetch(kEtag, 0, kSize, CountingFetch(kEtag, 0, &calls)).ok());
  EXPECT_EQ(calls.load(), 2);
  FlipByte(path, 5);
  auto again = OpenCache(tmp.path());
  ASSERT_NE(again, nullptr);
  hit = again->Find(kEtag, 0, kSize);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->file->ReadAt(2 << 20, span).code(), absl::StatusCode::kDataLoss);

  // An undamaged one reads back whole, in any order.
  ASSERT_TRUE(again->GetOrFetch(kEtag, 0, kSize, CountingFetch(kEtag, 0, &calls)).ok());
  auto fresh = OpenCache(tmp.path());
  hit = fresh->Find(kEtag, 0, kSize);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(ReadRange(*hit, 2 << 20, 100), BlobBytes(kEtag, 2 << 20, 100));
  EXPECT_EQ(ReadRange(*hit, 0, kSize), BlobBytes(kEtag, 0, kSize));
}

TEST(ExtractCacheTest, DamagedChecksumMakesGetOrFetchFetchAgain) {
  TempDir tmp;
  std::atomic<int> calls{0};
  const std::string path = ExtractPath(tmp.path(), kEtag, 0, 50);
  {
    auto cache = OpenCache(tmp.path());
    ASSERT_NE(cache, nullptr);
    ASSERT_TRUE(cache->GetOrFetch(kEtag, 0, 50, CountingFetch(kEtag, 0, &calls)).ok());
  }
  FlipByte(path, 50 + 3);  // in the trailer
  auto cache = OpenCache(tmp.path());
  ASSERT_NE(cache, nullptr);
  absl::StatusOr<ExtractCache::Hit> hit =
      cache->GetOrFetch(kEtag, 0, 50, CountingFetch(kEtag, 0, &calls));
  ASSERT_TRUE(hit.ok()) << hit.status();
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(ReadRange(*hit, 0, 50), BlobBytes(kEtag, 0, 50));
  // The new file is whole again.
  auto reopened = OpenCache(tmp.path());
  ASSERT_NE(reopened, nullptr);
  EXPECT_TRUE(reopened->Find(kEtag, 0, 50).has_value());
}

TEST(ExtractCacheTest, OpenRemovesWhatAKilledWriteLeft) {
  TempDir tmp;
  std::atomic<int> calls{0};
  {
    auto cache = OpenCache(tmp.path());
    ASSERT_NE(cache, nullptr);
    ASSERT_TRUE(cache->GetOrFetch(kEtag, 0, 100, CountingFetch(kEtag, 0, &calls)).ok());
  }
  // A process killed mid-write leaves its temporary file (whole or part);
  // a file of the wrong size cannot be an extract of its name.
  const std::string blob_dir = (fs::path(tmp.path()) / kEtag).string();
  WriteFile(blob_dir + "/200-100.tmp.Ab3dE9", BlobBytes(kEtag, 200, 37));
  WriteFile(blob_dir + "/300-100.tmp.zZ0011", BlobBytes(kEtag, 300, 100) + "12345678");
  WriteFile(blob_dir + "/400-100", BlobBytes(kEtag, 400, 60));          // short
  WriteFile(blob_dir + "/500-10", BlobBytes(kEtag, 500, 10));           // no trailer
  fs::create_directories(fs::path(tmp.path()) / kOtherEtag);
  WriteFile(tmp.Join(std::string(kOtherEtag) + "/0-8.tmp.qwerty"), "");
  // Temporary files are a killed process's once they are old; a fresh one
  // may be another gardend's on the same cache, still being written.
  const auto an_hour_ago = fs::file_time_type::clock::now() - std::chrono::hours(1);
  for (const std::string& old :
       {blob_dir + "/200-100.tmp.Ab3dE9", blob_dir + "/300-100.tmp.zZ0011",
        tmp.Join(std::string(kOtherEtag) + "/0-8.tmp.qwerty")}) {
    fs::last_write_time(old, an_hour_ago);
  }
  WriteFile(blob_dir + "/600-100.tmp.InFlgt", "being written");

  auto cache = OpenCache(tmp.path());
  ASSERT_NE(cache, nullptr);
  EXPECT_EQ(FilesUnder(tmp.path()),
            (std::vector<std::string>{std::string(kEtag) + "/0-100",
                                      std::string(kEtag) + "/600-100.tmp.InFlgt"}));
  EXPECT_EQ(cache->bytes(), 108u);
  EXPECT_FALSE(cache->Find(kEtag, 200, 100).has_value());
  EXPECT_FALSE(cache->Find(kEtag, 300, 100).has_value());
  EXPECT_FALSE(cache->Find(kEtag, 400, 100).has_value());
  EXPECT_FALSE(cache->Find(kEtag, 500, 10).has_value());
  // The good extract survived.
  std::optional<ExtractCache::Hit> found = cache->Find(kEtag, 0, 100);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(ReadRange(*found, 0, 100), BlobBytes(kEtag, 0, 100));
}

TEST(ExtractCacheTest, EvictsTheLeastRecentlyUsed) {
  TempDir tmp;
  constexpr uint64_t kSize = 100, kFileBytes = kSize + 8;
  auto cache = OpenCache(tmp.path(), 2 * kFileBytes);
  ASSERT_NE(cache, nullptr);
  std::atomic<int> calls{0};
  ASSERT_TRUE(cache->GetOrFetch(kEtag, 0, kSize, CountingFetch(kEtag, 0, &calls)).ok());
  ASSERT_TRUE(cache->GetOrFetch(kEtag, 1000, kSize, CountingFetch(kEtag, 1000, &calls)).ok());
  EXPECT_EQ(cache->bytes(), 2 * kFileBytes);
  // Touch the older one: the one at 1000 is now the least recently used.
  ASSERT_TRUE(cache->Find(kEtag, 0, kSize).has_value());
  ASSERT_TRUE(cache->GetOrFetch(kEtag, 2000, kSize, CountingFetch(kEtag, 2000, &calls)).ok());
  EXPECT_EQ(calls.load(), 3);

  EXPECT_LE(cache->bytes(), 2 * kFileBytes);
  EXPECT_FALSE(fs::exists(ExtractPath(tmp.path(), kEtag, 1000, kSize)));
  EXPECT_FALSE(cache->Find(kEtag, 1000, kSize).has_value());
  EXPECT_TRUE(cache->Find(kEtag, 0, kSize).has_value());
  EXPECT_TRUE(cache->Find(kEtag, 2000, kSize).has_value());
}

TEST(ExtractCacheTest, OpenTrimsToMaxBytes) {
  TempDir tmp;
  std::atomic<int> calls{0};
  {
    auto cache = OpenCache(tmp.path());
    ASSERT_NE(cache, nullptr);
    for (uint64_t offset : {0, 1000, 2000, 3000}) {
      ASSERT_TRUE(cache->GetOrFetch(kEtag, offset, 100,
                                    CountingFetch(kEtag, offset, &calls)).ok());
    }
    EXPECT_EQ(cache->bytes(), 4 * 108u);
  }
  auto smaller = OpenCache(tmp.path(), 2 * 108);
  ASSERT_NE(smaller, nullptr);
  EXPECT_EQ(smaller->bytes(), 2 * 108u);
  EXPECT_EQ(FilesUnder(tmp.path()).size(), 2u);
}

TEST(ExtractCacheTest, ExtractLargerThanMaxBytesIsReturnedButNotKept) {
  TempDir tmp;
  auto cache = OpenCache(tmp.path(), 200);
  ASSERT_NE(cache, nullptr);
  std::atomic<int> calls{0};
  // One that fits, which the big one must not evict.
  ASSERT_TRUE(cache->GetOrFetch(kEtag, 0, 50, CountingFetch(kEtag, 0, &calls)).ok());

  absl::StatusOr<ExtractCache::Hit> big =
      cache->GetOrFetch(kEtag, 4096, 500, CountingFetch(kEtag, 4096, &calls));
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(ReadRange(*big, 4096, 500), BlobBytes(kEtag, 4096, 500));
  EXPECT_EQ(cache->bytes(), 58u);
  EXPECT_FALSE(fs::exists(ExtractPath(tmp.path(), kEtag, 4096, 500)));
  EXPECT_FALSE(cache->Find(kEtag, 4096, 500).has_value());
  EXPECT_TRUE(cache->Find(kEtag, 0, 50).has_value());
  // Not kept, so asked for again it is fetched again.
  ASSERT_TRUE(cache->GetOrFetch(kEtag, 4096, 500, CountingFetch(kEtag, 4096, &calls)).ok());
  EXPECT_EQ(calls.load(), 3);
}

// Waits (up to 10 s) until `counter` reaches `n`.
bool WaitFor(const std::atomic<int>& counter, int n) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (counter.load() < n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

TEST(ExtractCacheTest, ConcurrentCallersOfOneRangeShareOneFetch) {
  TempDir tmp;
  auto cache = OpenCache(tmp.path());
  ASSERT_NE(cache, nullptr);
  constexpr int kThreads = 8;
  std::atomic<int> calls{0}, entering{0};
  ExtractCache::Fetch fetch = [&](absl::Span<uint8_t> out) {
    ++calls;
    // Every caller is on its way in before this fetch ends.
    EXPECT_TRUE(WaitFor(entering, kThreads));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    for (size_t i = 0; i < out.size(); ++i) out[i] = BlobByte(kEtag, 777 + i);
    return absl::OkStatus();
  };
  std::latch start(kThreads);
  std::vector<absl::StatusOr<std::string>> got(kThreads, absl::UnknownError("unset"));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      ++entering;
      absl::StatusOr<ExtractCache::Hit> hit = cache->GetOrFetch(kEtag, 777, 1234, fetch);
      if (!hit.ok()) {
        got[t] = hit.status();
      } else {
        got[t] = hit->file->ReadString(777 - hit->offset, 1234);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(calls.load(), 1);
  const std::string want = BlobBytes(kEtag, 777, 1234);
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_TRUE(got[t].ok()) << "thread " << t << ": " << got[t].status();
    EXPECT_EQ(*got[t], want) << "thread " << t;
  }
  EXPECT_EQ(cache->bytes(), 1234u + 8u);
}

TEST(ExtractCacheTest, DifferentRangesAreFetchedSeparatelyAndConcurrently) {
  TempDir tmp;
  auto cache = OpenCache(tmp.path());
  ASSERT_NE(cache, nullptr);
  constexpr int kThreads = 4;
  std::atomic<int> calls{0}, in_fetch{0};
  std::vector<absl::StatusOr<std::string>> got(kThreads, absl::UnknownError("unset"));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const uint64_t offset = 10000 * t;
      ExtractCache::Fetch fetch = [&, offset](absl::Span<uint8_t> out) {
        ++calls;
        ++in_fetch;
        // Ends only once every range's fetch has begun: one fetch must not
        // hold up the others.
        EXPECT_TRUE(WaitFor(in_fetch, kThreads));
        for (size_t i = 0; i < out.size(); ++i) out[i] = BlobByte(kEtag, offset + i);
        return absl::OkStatus();
      };
      absl::StatusOr<ExtractCache::Hit> hit = cache->GetOrFetch(kEtag, offset, 500, fetch);
      if (!hit.ok()) {
        got[t] = hit.status();
      } else {
        got[t] = hit->file->ReadString(offset - hit->offset, 500);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(calls.load(), kThreads);
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_TRUE(got[t].ok()) << "thread " << t << ": " << got[t].status();
    EXPECT_EQ(*got[t], BlobBytes(kEtag, 10000 * t, 500)) << "thread " << t;
  }
  EXPECT_EQ(cache->bytes(), kThreads * 508u);
}

TEST(ExtractCacheTest, FetchErrorReachesEveryWaiterAndNothingIsStored) {
  TempDir tmp;
  auto cache = OpenCache(tmp.path());
  ASSERT_NE(cache, nullptr);
  constexpr int kThreads = 8;
  std::atomic<int> calls{0}, entering{0};
  ExtractCache::Fetch failing = [&](absl::Span<uint8_t>) {
    ++calls;
    EXPECT_TRUE(WaitFor(entering, kThreads));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return absl::UnavailableError("hub said 503");
  };
  std::latch start(kThreads);
  std::vector<absl::Status> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      ++entering;
      got[t] = cache->GetOrFetch(kEtag, 0, 64, failing).status();
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(calls.load(), 1);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_TRUE(absl::IsUnavailable(got[t])) << "thread " << t << ": " << got[t];
    EXPECT_THAT(got[t].message(), HasSubstr("hub said 503"));
  }
  EXPECT_EQ(cache->bytes(), 0u);
  EXPECT_FALSE(cache->Find(kEtag, 0, 64).has_value());
  EXPECT_TRUE(FilesUnder(tmp.path()).empty());

  // The next call fetches again.
  std::atomic<int> retries{0};
  absl::StatusOr<ExtractCache::Hit> hit =
      cache->GetOrFetch(kEtag, 0, 64, CountingFetch(kEtag, 0, &retries));
  ASSERT_TRUE(hit.ok()) << hit.status();
  EXPECT_EQ(retries.load(), 1);
  EXPECT_EQ(ReadRange(*hit, 0, 64), BlobBytes(kEtag, 0, 64));
}

TEST(ExtractCacheTest, NonHexEtagIsInvalidArgument) {
  TempDir tmp;
  auto cache = OpenCache(tmp.path());
  ASSERT_NE(cache, nullptr);
  for (std::string_view etag : {"", "../../etc", "abc/def", "xyz0123", "\"3f2a9c\"",
                                "3f2a 9c"}) {
    absl::StatusOr<ExtractCache::Hit> hit = cache->GetOrFetch(etag, 0, 8, NoFetch);
    EXPECT_TRUE(absl::IsInvalidArgument(hit.status()))
        << "etag \"" << etag << "\": " << hit.status();
  }
  EXPECT_TRUE(FilesUnder(tmp.path()).empty());
}

}  // namespace
}  // namespace garden

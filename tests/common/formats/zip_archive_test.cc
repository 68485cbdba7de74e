#include "common/formats/zip_archive.h"

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "common/base/utf8.h"
#include "common/formats/byte_source.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_files.h"

namespace garden {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kSourceName[] = "test.zip";

// What torch.save(OrderedDict(w=torch.arange(3, dtype=torch.float16)),
// io.BytesIO()) writes with PyTorch 1.13: stored entries with flag bits 3
// and 11 (sizes in data descriptors), "FB" padding fields aligning each
// entry's data to 64 bytes, a ZIP64 end record and locator, and an end of
// central directory record whose fields are not saturated.
constexpr char kTorchSaveHex[] =
    "504b030400000808000000000000000000000000000000000000100012006172"
    "63686976652f646174612e706b6c46420e005a5a5a5a5a5a5a5a5a5a5a5a5a5a"
    "800263636f6c6c656374696f6e730a4f726465726564446963740a7100295271"
    "01580100000077710263746f7263682e5f7574696c730a5f72656275696c645f"
    "74656e736f725f76320a71032828580700000073746f72616765710463746f72"
    "63680a48616c6653746f726167650a7105580100000030710658030000006370"
    "7571074b03747108514b004b038571094b0185710a8968002952710b74710c52"
    "710d732e504b0708ffd0e96ea4000000a4000000504b03040000080800000000"
    "00000000000000000000000000000e002000617263686976652f646174612f30"
    "46421c005a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
    "0000003c0040504b0708c7fc6fea0600000006000000504b0304000008080000"
    "000000000000000000000000000000000f003d00617263686976652f76657273"
    "696f6e464239005a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
    "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
    "330a504b0708d19e67550200000002000000504b010200000000080800000000"
    "0000ffd0e96ea4000000a4000000100000000000000000000000000000000000"
    "617263686976652f646174612e706b6c504b0102000000000808000000000000"
    "c7fc6fea06000000060000000e00000000000000000000000000f40000006172"
    "63686976652f646174612f30504b0102000000000808000000000000d19e6755"
    "02000000020000000f0000000000000000000000000056010000617263686976"
    "652f76657273696f6e504b06062c000000000000001e032d0000000000000000"
    "0003000000000000000300000000000000b700000000000000d2010000000000"
    "00504b060700000000890200000000000001000000504b050600000000030003"
    "00b7000000d20100000000";

// ---- A small zip writer, so each test can build (and damage) its archive.

void AppendLe(std::string* out, uint64_t v, int width) {
  for (int i = 0; i < width; ++i)
    out->push_back(static_cast<char>(v >> (8 * i)));
}

void SetLe(std::string* out, size_t at, uint64_t v, int width) {
  ASSERT_LE(at + width, out->size());
  for (int i = 0; i < width; ++i)
    (*out)[at + i] = static_cast<char>(v >> (8 * i));
}

uint64_t GetLe(const std::string& in, size_t at, int width) {
  uint64_t v = 0;
  for (int i = width; i-- > 0;) v = (v << 8) | static_cast<uint8_t>(in[at + i]);
  return v;
}

struct File {
  std::string name;
  std::string data;
};

struct ZipOptions {
  bool zip64 = true;            // a ZIP64 end record and locator
  bool saturate_end = false;    // end record counts, size, offset saturated
  bool data_descriptor = true;  // flag bit 3, zero local sizes, a descriptor
  bool local_zip64 = false;     // local sizes 0xFFFFFFFF + ZIP64 extra
  bool central_zip64 = false;   // central sizes, offset 0xFFFFFFFF + extra
  std::string comment;
};

// Offsets of the records BuildZip wrote, for tests to patch.
struct Zip {
  std::string bytes;
  std::vector<size_t> local;    // local headers
  std::vector<size_t> central;  // central directory headers
  size_t cd_offset = 0;
  size_t cd_size = 0;
  size_t zip64_end = 0;
  size_t locator = 0;
  size_t end = 0;
};

// Field offsets inside the records.
constexpr size_t kLocalFlags = 6, kLocalMethod = 8, kLocalCompressed = 18,
                 kLocalSize = 22, kLocalExtraLength = 28, kLocalName = 30;
constexpr size_t kCentralFlags = 8, kCentralMethod = 10,
                 kCentralCompressed = 20, kCentralSize = 24, kCentralDisk = 34,
                 kCentralOffset = 42;
constexpr size_t kZip64EntriesOnDisk = 24, kZip64Entries = 32,
                 kZip64CdSize = 40, kZip64CdOffset = 48;
constexpr size_t kLocatorOffset = 8;
constexpr size_t kEndDisk = 4, kEndEntriesOnDisk = 8, kEndEntries = 10,
                 kEndCdOffset = 16;

void AppendLocalHeader(const File& f, const ZipOptions& o, std::string* b) {
  std::string extra;
  if (o.local_zip64) {
    AppendLe(&extra, 0x0001, 2);
    AppendLe(&extra, 16, 2);
    AppendLe(&extra, f.data.size(), 8);  // uncompressed
    AppendLe(&extra, f.data.size(), 8);  // compressed
  }
  // torch.save pads with an "FB" field so that the data is 64-byte aligned.
  const size_t unpadded = b->size() + 30 + f.name.size() + extra.size() + 4;
  const size_t pad = (64 - unpadded % 64) % 64;
  extra += "FB";
  AppendLe(&extra, pad, 2);
  extra.append(pad, 'Z');
  uint64_t size = o.data_descriptor ? 0 : f.data.size();
  if (o.local_zip64) size = 0xFFFFFFFF;
  AppendLe(b, 0x04034b50, 4);
  AppendLe(b, 0, 2);                                    // version needed
  AppendLe(b, o.data_descriptor ? 0x0808 : 0x0800, 2);  // flags
  AppendLe(b, 0, 2);                                    // method: stored
  AppendLe(b, 0, 4);                                    // time, date
  AppendLe(b, 0, 4);                                    // crc (not checked)
  AppendLe(b, size, 4);
  AppendLe(b, size, 4);
  AppendLe(b, f.name.size(), 2);
  AppendLe(b, extra.size(), 2);
  *b += f.name;
  *b += extra;
  *b += f.data;
  if (o.data_descriptor) {
    AppendLe(b, 0x08074b50, 4);
    AppendLe(b, 0, 4);
    AppendLe(b, f.data.size(), 4);
    AppendLe(b, f.data.size(), 4);
  }
}

void AppendCentralHeader(const File& f, uint64_t offset, const ZipOptions& o,
                         std::string* b) {
  std::string extra;
  uint64_t size = f.data.size();
  if (o.central_zip64) {
    AppendLe(&extra, 0x0001, 2);
    AppendLe(&extra, 24, 2);
    AppendLe(&extra, size, 8);
    AppendLe(&extra, size, 8);
    AppendLe(&extra, offset, 8);
    size = offset = 0xFFFFFFFF;
  }
  AppendLe(b, 0x02014b50, 4);
  AppendLe(b, 0x031e, 2);  // made by
  AppendLe(b, 0x002d, 2);  // needed: 4.5 (ZIP64)
  AppendLe(b, o.data_descriptor ? 0x0808 : 0x0800, 2);
  AppendLe(b, 0, 2);  // method
  AppendLe(b, 0, 4);  // time, date
  AppendLe(b, 0, 4);  // crc
  AppendLe(b, size, 4);
  AppendLe(b, size, 4);
  AppendLe(b, f.name.size(), 2);
  AppendLe(b, extra.size(), 2);
  AppendLe(b, 0, 2);  // comment
  AppendLe(b, 0, 2);  // disk
  AppendLe(b, 0, 2);  // internal attributes
  AppendLe(b, 0, 4);  // external attributes
  AppendLe(b, offset, 4);
  *b += f.name;
  *b += extra;
}

void AppendEndRecords(Zip* z, size_t entries, const ZipOptions& o) {
  std::string* b = &z->bytes;
  if (o.zip64) {
    z->zip64_end = b->size();
    AppendLe(b, 0x06064b50, 4);
    AppendLe(b, 44, 8);  // size of the rest of the record
    AppendLe(b, 0x031e, 2);
    AppendLe(b, 0x002d, 2);
    AppendLe(b, 0, 4);  // disk
    AppendLe(b, 0, 4);  // central directory disk
    AppendLe(b, entries, 8);
    AppendLe(b, entries, 8);
    AppendLe(b, z->cd_size, 8);
    AppendLe(b, z->cd_offset, 8);
    z->locator = b->size();
    AppendLe(b, 0x07064b50, 4);
    AppendLe(b, 0, 4);
    AppendLe(b, z->zip64_end, 8);
    AppendLe(b, 1, 4);  // disks
  }
  const bool sat = o.saturate_end;
  z->end = b->size();
  AppendLe(b, 0x06054b50, 4);
  AppendLe(b, 0, 2);
  AppendLe(b, 0, 2);
  AppendLe(b, sat ? 0xFFFF : entries, 2);
  AppendLe(b, sat ? 0xFFFF : entries, 2);
  AppendLe(b, sat ? 0xFFFFFFFF : z->cd_size, 4);
  AppendLe(b, sat ? 0xFFFFFFFF : z->cd_offset, 4);
  AppendLe(b, o.comment.size(), 2);
  *b += o.comment;
}

Zip BuildZip(const std::vector<File>& files, const ZipOptions& o = {}) {
  Zip z;
  for (const File& f : files) {
    z.local.push_back(z.bytes.size());
    AppendLocalHeader(f, o, &z.bytes);
  }
  z.cd_offset = z.bytes.size();
  for (size_t i = 0; i < files.size(); ++i) {
    z.central.push_back(z.bytes.size());
    AppendCentralHeader(files[i], z.local[i], o, &z.bytes);
  }
  z.cd_size = z.bytes.size() - z.cd_offset;
  AppendEndRecords(&z, files.size(), o);
  return z;
}

std::vector<File> TorchFiles() {
  return {{"archive/data.pkl", std::string("\x80\x02}q\x00.", 6)},
          {"archive/data/0", std::string("\x00\x00\x00\x3c\x00\x40", 6)},
          {"archive/version", "3\n"}};
}

ZipOptions Saturated() {
  ZipOptions o;
  o.saturate_end = true;
  o.central_zip64 = true;
  o.local_zip64 = true;
  o.data_descriptor = false;
  return o;
}

ZipOptions Plain() {
  ZipOptions o;
  o.zip64 = false;
  o.data_descriptor = false;
  return o;
}

std::shared_ptr<MemorySource> Source(std::string bytes) {
  return std::make_shared<MemorySource>(kSourceName, std::move(bytes));
}

absl::StatusOr<std::unique_ptr<ZipArchive>> OpenBytes(
    std::string bytes, ZipArchive::Options options = {}) {
  return ZipArchive::Open(Source(std::move(bytes)), options);
}

// The status has `code`, names the source first and contains `substring`;
// its message is valid UTF-8.
void ExpectError(const absl::Status& status, absl::StatusCode code,
                 const std::string& substring) {
  EXPECT_EQ(status.code(), code) << status;
  const std::string message(status.message());
  EXPECT_THAT(message, StartsWith(std::string(kSourceName) + ": "));
  EXPECT_THAT(message, HasSubstr(substring));
  EXPECT_TRUE(IsValidUtf8(message)) << message;
}

void ExpectOpenError(std::string bytes, absl::StatusCode code,
                     const std::string& substring,
                     ZipArchive::Options options = {}) {
  const auto archive = OpenBytes(std::move(bytes), options);
  ASSERT_FALSE(archive.ok());
  ExpectError(archive.status(), code, substring);
}

// Opens `bytes` (which must open) and returns DataOffset's status for the
// entry `name`.
absl::Status DataOffsetStatus(std::string bytes, const std::string& name) {
  auto archive = OpenBytes(std::move(bytes));
  if (!archive.ok()) return archive.status();
  const ZipEntry* entry = (*archive)->Find(name);
  if (entry == nullptr) return absl::NotFoundError(name);
  return (*archive)->DataOffset(*entry).status();
}

std::vector<std::string> Names(const ZipArchive& archive) {
  std::vector<std::string> names;
  for (const ZipEntry& e : archive.entries()) names.push_back(e.name);
  return names;
}

// Every entry's data offset is 64-byte aligned and its bytes are `files`'.
void ExpectContents(const ZipArchive& archive, const std::vector<File>& files) {
  ASSERT_EQ(archive.entries().size(), files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    const ZipEntry& entry = archive.entries()[i];
    EXPECT_EQ(entry.name, files[i].name);
    EXPECT_EQ(entry.size, files[i].data.size());
    EXPECT_EQ(entry.method, 0);
    const auto offset = archive.DataOffset(entry);
    ASSERT_TRUE(offset.ok()) << offset.status();
    EXPECT_EQ(*offset % 64, 0u) << entry.name;
    const auto bytes = archive.ReadEntry(entry, 1 << 20);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    EXPECT_EQ(*bytes, files[i].data) << entry.name;
  }
}

// ---- Valid archives.

TEST(ZipArchiveTest, ReadsWhatTorchSaveWrote) {
  auto archive = OpenBytes(absl::HexStringToBytes(kTorchSaveHex));
  ASSERT_TRUE(archive.ok()) << archive.status();
  const ZipArchive& zip = **archive;
  EXPECT_THAT(Names(zip), ElementsAre("archive/data.pkl", "archive/data/0",
                                      "archive/version"));
  const ZipEntry* pkl = zip.Find("archive/data.pkl");
  const ZipEntry* data = zip.Find("archive/data/0");
  const ZipEntry* version = zip.Find("archive/version");
  ASSERT_NE(pkl, nullptr);
  ASSERT_NE(data, nullptr);
  ASSERT_NE(version, nullptr);
  EXPECT_EQ(pkl->size, 164u);
  EXPECT_EQ(data->size, 6u);
  EXPECT_EQ(data->header_offset, 244u);
  EXPECT_EQ(version->header_offset, 342u);
  EXPECT_EQ(zip.Find("archive/data/1"), nullptr);
  EXPECT_EQ(zip.Find("archive"), nullptr);

  EXPECT_EQ(*zip.DataOffset(*pkl), 64u);
  EXPECT_EQ(*zip.DataOffset(*data), 320u);
  EXPECT_EQ(*zip.DataOffset(*version), 448u);
  EXPECT_EQ(*zip.ReadEntry(*version, 16), "3\n");
  // float16 0, 1, 2.
  EXPECT_EQ(*zip.ReadEntry(*data, 16), std::string("\0\0\0\x3c\0\x40", 6));
  const auto pickle = zip.ReadEntry(*pkl, 1 << 10);
  ASSERT_TRUE(pickle.ok()) << pickle.status();
  EXPECT_THAT(*pickle, StartsWith("\x80\x02"
                                  "ccollections\nOrderedDict"));
  EXPECT_EQ(pickle->back(), '.');
}

TEST(ZipArchiveTest, ReadsTorchSaveFromALocalFile) {
  testing::TempDir dir;
  const std::string path = dir.Join("model.bin");
  testing::WriteFile(path, absl::HexStringToBytes(kTorchSaveHex));
  auto source = LocalFileSource::Open(path);
  ASSERT_TRUE(source.ok()) << source.status();
  auto archive = ZipArchive::Open(*source);
  ASSERT_TRUE(archive.ok()) << archive.status();
  const ZipEntry* version = (*archive)->Find("archive/version");
  ASSERT_NE(version, nullptr);
  EXPECT_EQ(*(*archive)->ReadEntry(*version, 2), "3\n");
  EXPECT_EQ(&(*archive)->source(), source->get());
}

TEST(ZipArchiveTest, ReadsSaturatedZip64Records) {
  const std::vector<File> files = TorchFiles();
  const Zip zip = BuildZip(files, Saturated());
  // The end record defers every field to the ZIP64 one.
  EXPECT_EQ(GetLe(zip.bytes, zip.end + kEndEntries, 2), 0xFFFFu);
  EXPECT_EQ(GetLe(zip.bytes, zip.central[1] + kCentralOffset, 4), 0xFFFFFFFFu);
  auto archive = OpenBytes(zip.bytes);
  ASSERT_TRUE(archive.ok()) << archive.status();
  EXPECT_THAT(
      Names(**archive),
      ElementsAre("archive/data.pkl", "archive/data/0", "archive/version"));
  for (size_t i = 0; i < files.size(); ++i) {
    EXPECT_EQ((*archive)->entries()[i].header_offset, zip.local[i]);
  }
  ExpectContents(**archive, files);
}

TEST(ZipArchiveTest, ReadsTorchStyleZip64WithDataDescriptors) {
  const std::vector<File> files = TorchFiles();
  auto archive = OpenBytes(BuildZip(files).bytes);
  ASSERT_TRUE(archive.ok()) << archive.status();
  ExpectContents(**archive, files);
}

TEST(ZipArchiveTest, ReadsPlainArchiveWithComment) {
  const std::vector<File> files = {{"a", "alpha"}, {"dir/b", ""}, {"c", "x"}};
  ZipOptions o = Plain();
  // A comment holding an end record signature is not taken for the record.
  // (Its comment length would be "cc", 25443 bytes, which do not follow it.)
  o.comment = std::string("PK\x05\x06", 4) + std::string(40, 'c');
  auto archive = OpenBytes(BuildZip(files, o).bytes);
  ASSERT_TRUE(archive.ok()) << archive.status();
  ExpectContents(**archive, files);
}

TEST(ZipArchiveTest, ReadsEmptyArchive) {
  auto plain = OpenBytes(BuildZip({}, Plain()).bytes);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_TRUE((*plain)->entries().empty());
  auto zip64 = OpenBytes(BuildZip({}, Saturated()).bytes);
  ASSERT_TRUE(zip64.ok()) << zip64.status();
  EXPECT_TRUE((*zip64)->entries().empty());
}

TEST(ZipArchiveTest, OpenReadsOnlyTheTailAndCentralDirectory) {
  std::vector<File> files = TorchFiles();
  files.insert(files.begin() + 1,
               {"archive/data/big", std::string(4 << 20, 'w')});
  const Zip zip = BuildZip(files);
  auto source = Source(zip.bytes);
  auto archive = ZipArchive::Open(source);
  ASSERT_TRUE(archive.ok()) << archive.status();
  const uint64_t after_open = source->bytes_read();
  EXPECT_LT(after_open, zip.cd_size + 65557 + 76);
  EXPECT_LT(after_open, (4u << 20) / 32);

  // A data offset costs one local header, once.
  const ZipEntry* big = (*archive)->Find("archive/data/big");
  ASSERT_NE(big, nullptr);
  const auto offset = (*archive)->DataOffset(*big);
  ASSERT_TRUE(offset.ok()) << offset.status();
  EXPECT_EQ(*offset % 64, 0u);
  const uint64_t after_header = source->bytes_read();
  EXPECT_LE(after_header - after_open, 30u + big->name.size() + 64);
  EXPECT_EQ(*(*archive)->DataOffset(*big), *offset);
  EXPECT_EQ(source->bytes_read(), after_header);

  // Only the tail of a large archive is searched for the end record.
  auto small = (*archive)->ReadEntry(*(*archive)->Find("archive/version"), 8);
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_EQ(*small, "3\n");
  EXPECT_LT(source->bytes_read(), (4u << 20) / 32);
}

TEST(ZipArchiveTest, DataOffsetAcceptsCopiesAndRejectsForeignEntries) {
  auto archive = OpenBytes(BuildZip(TorchFiles()).bytes);
  ASSERT_TRUE(archive.ok()) << archive.status();
  const ZipEntry copy = (*archive)->entries()[1];
  const auto offset = (*archive)->DataOffset(copy);
  ASSERT_TRUE(offset.ok()) << offset.status();
  EXPECT_EQ(*offset, *(*archive)->DataOffset((*archive)->entries()[1]));

  ZipEntry foreign = copy;
  foreign.name = "archive/data/7";
  ExpectError((*archive)->DataOffset(foreign).status(),
              absl::StatusCode::kInvalidArgument,
              "entry \"archive/data/7\" is not an entry of this archive");
  ZipEntry moved = copy;
  moved.header_offset += 1;
  EXPECT_EQ((*archive)->DataOffset(moved).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ZipArchiveTest, DataOffsetIsThreadSafe) {
  std::vector<File> files;
  for (int i = 0; i < 64; ++i) {
    files.push_back({"archive/data/" + std::to_string(i), std::string(i, 'a')});
  }
  auto archive = OpenBytes(BuildZip(files).bytes);
  ASSERT_TRUE(archive.ok()) << archive.status();
  const ZipArchive& zip = **archive;
  std::vector<std::vector<uint64_t>> seen(8);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < seen.size(); ++t) {
    threads.emplace_back([&zip, &seen, t] {
      for (int round = 0; round < 4; ++round) {
        for (const ZipEntry& e : zip.entries()) {
          const auto offset = zip.DataOffset(e);
          seen[t].push_back(offset.ok() ? *offset : 1);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (size_t t = 1; t < seen.size(); ++t) EXPECT_EQ(seen[t], seen[0]);
  for (uint64_t offset : seen[0]) EXPECT_EQ(offset % 64, 0u);
}

// ---- The end records.

TEST(ZipArchiveTest, RejectsTooShortSource) {
  ExpectOpenError("PK\x05\x06", absl::StatusCode::kDataLoss,
                  "4 bytes is too short for a zip archive");
  ExpectOpenError("", absl::StatusCode::kDataLoss, "0 bytes is too short");
}

TEST(ZipArchiveTest, RejectsTruncatedTail) {
  const std::string bytes = BuildZip(TorchFiles()).bytes;
  ExpectOpenError(bytes.substr(0, bytes.size() - 10),
                  absl::StatusCode::kDataLoss,
                  "no end of central directory record (signature 0x06054b50)");
  ExpectOpenError(bytes.substr(0, bytes.size() / 2),
                  absl::StatusCode::kDataLoss,
                  "not a zip archive, or truncated");
}

TEST(ZipArchiveTest, RejectsSourceWithoutEndRecord) {
  ExpectOpenError(std::string(1000, 'x'), absl::StatusCode::kDataLoss,
                  "no end of central directory record");
}

TEST(ZipArchiveTest, RejectsEveryTruncation) {
  const std::string bytes = absl::HexStringToBytes(kTorchSaveHex);
  for (size_t n = 0; n < bytes.size(); ++n) {
    const auto archive = OpenBytes(bytes.substr(0, n));
    ASSERT_FALSE(archive.ok()) << n;
    EXPECT_EQ(archive.status().code(), absl::StatusCode::kDataLoss) << n;
  }
}

TEST(ZipArchiveTest, RejectsCentralDirectoryPastTheEndRecord) {
  Zip plain = BuildZip(TorchFiles(), Plain());
  SetLe(&plain.bytes, plain.end + kEndCdOffset, plain.cd_offset + 1, 4);
  ExpectOpenError(plain.bytes, absl::StatusCode::kDataLoss,
                  "runs past the end of central directory record at " +
                      std::to_string(plain.end));

  Zip zip64 = BuildZip(TorchFiles(), Saturated());
  SetLe(&zip64.bytes, zip64.zip64_end + kZip64CdOffset, uint64_t{1} << 62, 8);
  ExpectOpenError(zip64.bytes, absl::StatusCode::kDataLoss,
                  "bytes at 4611686018427387904 runs past the ZIP64 end of "
                  "central directory record at " +
                      std::to_string(zip64.zip64_end));

  // Offset + size overflowing 64 bits.
  Zip wrap = BuildZip(TorchFiles(), Saturated());
  SetLe(&wrap.bytes, wrap.zip64_end + kZip64CdSize, ~uint64_t{0}, 8);
  ExpectOpenError(wrap.bytes, absl::StatusCode::kDataLoss,
                  "the central directory of 18446744073709551615 bytes");
}

TEST(ZipArchiveTest, RejectsEndRecordsThatDisagree) {
  Zip zip = BuildZip(TorchFiles());  // narrow fields not saturated
  SetLe(&zip.bytes, zip.end + kEndEntries, 2, 2);
  ExpectOpenError(zip.bytes, absl::StatusCode::kDataLoss,
                  "the end of central directory record gives entry count 2 "
                  "but the ZIP64 end record gives 3");
}

TEST(ZipArchiveTest, RejectsSaturatedEndRecordWithoutZip64) {
  Zip zip = BuildZip(TorchFiles(), Plain());
  SetLe(&zip.bytes, zip.end + kEndCdOffset, 0xFFFFFFFF, 4);
  ExpectOpenError(zip.bytes, absl::StatusCode::kDataLoss,
                  "has saturated fields");
  ExpectOpenError(zip.bytes, absl::StatusCode::kDataLoss,
                  "but no ZIP64 locator (signature 0x07064b50) precedes it");
}

TEST(ZipArchiveTest, RejectsZip64LocatorPointingOutside) {
  Zip zip = BuildZip(TorchFiles(), Saturated());
  SetLe(&zip.bytes, zip.locator + kLocatorOffset, uint64_t{1} << 40, 8);
  ExpectOpenError(zip.bytes, absl::StatusCode::kDataLoss,
                  "the ZIP64 locator at " + std::to_string(zip.locator) +
                      " points to a ZIP64 end record at 1099511627776, "
                      "outside the archive");
  // Just too late: the 56-byte record would overlap the locator.
  SetLe(&zip.bytes, zip.locator + kLocatorOffset, zip.zip64_end + 1, 8);
  ExpectOpenError(zip.bytes, absl::StatusCode::kDataLoss,
                  "outside the archive");
}

TEST(ZipArchiveTest, RejectsZip64LocatorPointingAtAnotherRecord) {
  Zip zip = BuildZip(TorchFiles(), Saturated());
  SetLe(&zip.bytes, zip.locator + kLocatorOffset, 0, 8);
  ExpectOpenError(zip.bytes, absl::StatusCode::kDataLoss,
                  "points to 0, which has signature 0x04034b50, not a ZIP64 "
                  "end record's 0x06064b50");
}

TEST(ZipArchiveTest, RejectsMultiDiskArchives) {
  Zip plain = BuildZip(TorchFiles(), Plain());
  SetLe(&plain.bytes, plain.end + kEndDisk, 1, 2);
  ExpectOpenError(plain.bytes, absl::StatusCode::kFailedPrecondition,
                  "describes a multi-disk archive (disk 1");

  Zip split = BuildZip(TorchFiles(), Saturated());
  SetLe(&split.bytes, split.zip64_end + kZip64EntriesOnDisk, 2, 8);
  ExpectOpenError(split.bytes, absl::StatusCode::kFailedPrecondition,
                  "2 of 3 entries on this disk");

  Zip locator = BuildZip(TorchFiles(), Saturated());
  SetLe(&locator.bytes, locator.locator + 16, 3, 4);
  ExpectOpenError(locator.bytes, absl::StatusCode::kFailedPrecondition,
                  "gives 3 disks");

  Zip entry = BuildZip(TorchFiles(), Plain());
  SetLe(&entry.bytes, entry.central[2] + kCentralDisk, 1, 2);
  ExpectOpenError(entry.bytes, absl::StatusCode::kFailedPrecondition,
                  "central directory entry 2 (\"archive/version\") starts on "
                  "disk 1");
}

TEST(ZipArchiveTest, RejectsEntryCountMismatch) {
  Zip fewer = BuildZip(TorchFiles(), Saturated());
  SetLe(&fewer.bytes, fewer.zip64_end + kZip64EntriesOnDisk, 2, 8);
  SetLe(&fewer.bytes, fewer.zip64_end + kZip64Entries, 2, 8);
  ExpectOpenError(fewer.bytes, absl::StatusCode::kDataLoss,
                  "the central directory holds more than the 2 entries the "
                  "ZIP64 end of central directory record declares");

  // (ZIP64 extra fields make the directory big enough for 4 headers.)
  Zip more = BuildZip(TorchFiles(), Saturated());
  SetLe(&more.bytes, more.zip64_end + kZip64EntriesOnDisk, 4, 8);
  SetLe(&more.bytes, more.zip64_end + kZip64Entries, 4, 8);
  ExpectOpenError(more.bytes, absl::StatusCode::kDataLoss,
                  "the central directory holds 3 entries but the ZIP64 end "
                  "of central directory record declares 4");

  Zip absurd = BuildZip(TorchFiles(), Saturated());
  SetLe(&absurd.bytes, absurd.zip64_end + kZip64EntriesOnDisk, 500000, 8);
  SetLe(&absurd.bytes, absurd.zip64_end + kZip64Entries, 500000, 8);
  ExpectOpenError(absurd.bytes, absl::StatusCode::kDataLoss,
                  "declares 500000 entries, but a central directory of " +
                      std::to_string(absurd.cd_size) + " bytes holds at most");
}

TEST(ZipArchiveTest, EnforcesLimits) {
  const Zip zip = BuildZip(TorchFiles());
  ZipArchive::Options options;
  options.max_central_directory_bytes = zip.cd_size - 1;
  ExpectOpenError(zip.bytes, absl::StatusCode::kDataLoss,
                  "the central directory of " + std::to_string(zip.cd_size) +
                      " bytes exceeds the limit of " +
                      std::to_string(zip.cd_size - 1) +
                      " bytes (max_central_directory_bytes)",
                  options);
  options.max_central_directory_bytes = zip.cd_size;
  EXPECT_TRUE(OpenBytes(zip.bytes, options).ok());

  options = ZipArchive::Options();
  options.max_entries = 2;
  ExpectOpenError(zip.bytes, absl::StatusCode::kDataLoss,
                  "declares 3 entries, more than the limit of 2 (max_entries)",
                  options);

  // A hostile size is refused before anything is allocated for it.
  Zip hostile = BuildZip(TorchFiles(), Saturated());
  SetLe(&hostile.bytes, hostile.zip64_end + kZip64CdOffset, 0, 8);
  SetLe(&hostile.bytes, hostile.zip64_end + kZip64CdSize, hostile.zip64_end, 8);
  options = ZipArchive::Options();
  options.max_central_directory_bytes = 100;
  ExpectOpenError(hostile.bytes, absl::StatusCode::kDataLoss,
                  "max_central_directory_bytes", options);
}

// ---- Central directory entries.

TEST(ZipArchiveTest, RejectsBadCentralSignature) {
  Zip zip = BuildZip(TorchFiles());
  SetLe(&zip.bytes, zip.central[1], 0x02014b51, 4);
  ExpectOpenError(zip.bytes, absl::StatusCode::kDataLoss,
                  "central directory entry 1 at " +
                      std::to_string(zip.central[1]) +
                      " has signature 0x02014b51, not 0x02014b50");
}

TEST(ZipArchiveTest, RejectsCentralEntryRunningPastTheDirectory) {
  Zip zip = BuildZip(TorchFiles());
  SetLe(&zip.bytes, zip.central[2] + 28, 200, 2);  // name length
  ExpectOpenError(zip.bytes, absl::StatusCode::kDataLoss,
                  "central directory entry 2 at " +
                      std::to_string(zip.central[2]) +
                      ": its 246 bytes (name, extra field and comment "
                      "included) run past the end of the central directory");
}

TEST(ZipArchiveTest, RejectsLocalHeaderOffsetOutsideTheArchive) {
  Zip zip = BuildZip(TorchFiles());
  SetLe(&zip.bytes, zip.central[1] + kCentralOffset, 0xFFFFFF00, 4);
  ExpectOpenError(zip.bytes, absl::StatusCode::kDataLoss,
                  "central directory entry 1 (\"archive/data/0\"): local "
                  "header offset 4294967040 is outside the archive of " +
                      std::to_string(zip.bytes.size()) + " bytes");

  Zip zip64 = BuildZip(TorchFiles(), Saturated());
  // The offset in the ZIP64 extra field: size, compressed size, offset.
  const size_t extra = zip64.central[0] + 46 + TorchFiles()[0].name.size();
  SetLe(&zip64.bytes, extra + 4 + 16, uint64_t{1} << 50, 8);
  ExpectOpenError(zip64.bytes, absl::StatusCode::kDataLoss,
                  "local header offset 1125899906842624 is outside");
}

TEST(ZipArchiveTest, RejectsSaturatedFieldWithoutZip64Extra) {
  Zip zip = BuildZip(TorchFiles());
  SetLe(&zip.bytes, zip.central[0] + kCentralSize, 0xFFFFFFFF, 4);
  ExpectOpenError(zip.bytes, absl::StatusCode::kDataLoss,
                  "central directory entry 0 (\"archive/data.pkl\"): a size, "
                  "offset or disk field is saturated but there is no ZIP64 "
                  "extra field");

  Zip short_extra = BuildZip(TorchFiles(), Saturated());
  const size_t extra =
      short_extra.central[0] + 46 + TorchFiles()[0].name.size();
  SetLe(&short_extra.bytes, extra + 2, 8, 2);  // field holds 8 of 24 bytes
  ExpectOpenError(short_extra.bytes, absl::StatusCode::kDataLoss,
                  "its ZIP64 extra field of 8 bytes is shorter than the 24 "
                  "its saturated fields need");
}

TEST(ZipArchiveTest, RejectsCompressedEntries) {
  Zip zip = BuildZip(TorchFiles());
  SetLe(&zip.bytes, zip.central[0] + kCentralMethod, 8, 2);
  SetLe(&zip.bytes, zip.central[0] + kCentralCompressed, 3, 4);
  ExpectOpenError(zip.bytes, absl::StatusCode::kFailedPrecondition,
                  "central directory entry 0 (\"archive/data.pkl\") is "
                  "compressed (method 8); only stored entries are read");
}

TEST(ZipArchiveTest, RejectsEncryptedEntries) {
  Zip zip = BuildZip(TorchFiles());
  SetLe(&zip.bytes, zip.central[1] + kCentralFlags, 0x0809, 2);
  ExpectOpenError(zip.bytes, absl::StatusCode::kFailedPrecondition,
                  "central directory entry 1 (\"archive/data/0\") is "
                  "encrypted");
}

TEST(ZipArchiveTest, RejectsStoredSizesThatDiffer) {
  Zip zip = BuildZip(TorchFiles(), Plain());
  SetLe(&zip.bytes, zip.central[1] + kCentralCompressed, 5, 4);
  ExpectOpenError(zip.bytes, absl::StatusCode::kDataLoss,
                  "a stored entry with compressed size 5 but uncompressed "
                  "size 6");
}

TEST(ZipArchiveTest, RejectsDataRunningIntoTheCentralDirectory) {
  Zip zip = BuildZip(TorchFiles(), Plain());
  SetLe(&zip.bytes, zip.central[2] + kCentralCompressed, 100, 4);
  SetLe(&zip.bytes, zip.central[2] + kCentralSize, 100, 4);
  const uint64_t begin = zip.local[2] + 30 + TorchFiles()[2].name.size();
  ExpectOpenError(zip.bytes, absl::StatusCode::kDataLoss,
                  "central directory entry 2 (\"archive/version\"): data of "
                  "100 bytes at " +
                      std::to_string(begin) +
                      " or later runs past the central directory at " +
                      std::to_string(zip.cd_offset));

  // A header offset inside the central directory itself.
  Zip inside = BuildZip(TorchFiles(), Plain());
  SetLe(&inside.bytes, inside.central[0] + kCentralOffset, inside.cd_offset, 4);
  ExpectOpenError(inside.bytes, absl::StatusCode::kDataLoss,
                  "runs past the central directory at");
}

TEST(ZipArchiveTest, RejectsDuplicateNames) {
  ExpectOpenError(
      BuildZip({{"archive/data/0", "a"},
                {"archive/version", "3\n"},
                {"archive/data/0", "b"}})
          .bytes,
      absl::StatusCode::kDataLoss,
      "central directory entry 2 (\"archive/data/0\") duplicates the name of "
      "entry 0");
  // Names are untrusted bytes; the message escapes them.
  const std::string odd("archive/\xff\x01", 10);
  ExpectOpenError(BuildZip({{odd, "a"}, {odd, "b"}}).bytes,
                  absl::StatusCode::kDataLoss,
                  "entry 1 (\"archive/\\xff\\x01\") duplicates");
}

// ---- Local headers.

TEST(ZipArchiveTest, RejectsBadLocalSignature) {
  Zip zip = BuildZip(TorchFiles());
  SetLe(&zip.bytes, zip.local[1], 0x04034b00, 4);
  ExpectError(DataOffsetStatus(zip.bytes, "archive/data/0"),
              absl::StatusCode::kDataLoss,
              "entry \"archive/data/0\" (local header at " +
                  std::to_string(zip.local[1]) +
                  "): signature 0x04034b00, not 0x04034b50");
}

TEST(ZipArchiveTest, RejectsLocalNameMismatch) {
  Zip zip = BuildZip(TorchFiles());
  zip.bytes[zip.local[1] + kLocalName + 13] = '9';
  ExpectError(DataOffsetStatus(zip.bytes, "archive/data/0"),
              absl::StatusCode::kDataLoss,
              "it names \"archive/data/9\", not the central directory's name");
  // The other entries still read.
  EXPECT_TRUE(DataOffsetStatus(zip.bytes, "archive/version").ok());
}

TEST(ZipArchiveTest, RejectsLocalMethodMismatch) {
  Zip zip = BuildZip(TorchFiles());
  SetLe(&zip.bytes, zip.local[2] + kLocalMethod, 8, 2);
  ExpectError(DataOffsetStatus(zip.bytes, "archive/version"),
              absl::StatusCode::kDataLoss,
              "method 8 differs from the central directory's 0");
}

TEST(ZipArchiveTest, RejectsLocalSizeMismatch) {
  Zip zip = BuildZip(TorchFiles(), Plain());
  SetLe(&zip.bytes, zip.local[1] + kLocalSize, 7, 4);
  ExpectError(DataOffsetStatus(zip.bytes, "archive/data/0"),
              absl::StatusCode::kDataLoss,
              "its sizes (compressed 6, uncompressed 7) differ from the "
              "central directory's 6");

  // Zero sizes are only deferred to a data descriptor with flag bit 3.
  Zip zero = BuildZip(TorchFiles(), Plain());
  SetLe(&zero.bytes, zero.local[1] + kLocalCompressed, 0, 4);
  SetLe(&zero.bytes, zero.local[1] + kLocalSize, 0, 4);
  ExpectError(DataOffsetStatus(zero.bytes, "archive/data/0"),
              absl::StatusCode::kDataLoss, "(compressed 0, uncompressed 0)");
  SetLe(&zero.bytes, zero.local[1] + kLocalFlags, 0x0808, 2);
  EXPECT_TRUE(DataOffsetStatus(zero.bytes, "archive/data/0").ok());
}

TEST(ZipArchiveTest, ComparesLocalZip64Sizes) {
  Zip zip = BuildZip(TorchFiles(), Saturated());
  EXPECT_TRUE(DataOffsetStatus(zip.bytes, "archive/data/0").ok());
  // The local ZIP64 extra field: uncompressed, then compressed size.
  const size_t extra = zip.local[1] + 30 + TorchFiles()[1].name.size();
  SetLe(&zip.bytes, extra + 4 + 8, 9, 8);
  ExpectError(DataOffsetStatus(zip.bytes, "archive/data/0"),
              absl::StatusCode::kDataLoss,
              "its sizes (compressed 9, uncompressed 6)");

  Zip missing = BuildZip(TorchFiles(), Saturated());
  SetLe(&missing.bytes, missing.local[1] + 30 + TorchFiles()[1].name.size(),
        0x9999, 2);
  ExpectError(DataOffsetStatus(missing.bytes, "archive/data/0"),
              absl::StatusCode::kDataLoss, "there is no ZIP64 extra field");
}

TEST(ZipArchiveTest, RejectsLocalDataPastTheCentralDirectory) {
  Zip zip = BuildZip(TorchFiles());
  const size_t at = zip.local[2] + kLocalExtraLength;
  const uint64_t extra = GetLe(zip.bytes, at, 2);
  // The name and extra field still end before the central directory (the
  // 2 data bytes and a 16-byte descriptor follow them); the data does not.
  SetLe(&zip.bytes, at, extra + 17, 2);
  const uint64_t data = zip.local[2] + 30 + 15 + extra + 17;
  ExpectError(DataOffsetStatus(zip.bytes, "archive/version"),
              absl::StatusCode::kDataLoss,
              "entry \"archive/version\" (local header at " +
                  std::to_string(zip.local[2]) + "): data [" +
                  std::to_string(data) + ", " + std::to_string(data + 2) +
                  ") runs past the central directory at " +
                  std::to_string(zip.cd_offset));

  SetLe(&zip.bytes, at, 0xFFFF, 2);
  ExpectError(DataOffsetStatus(zip.bytes, "archive/version"),
              absl::StatusCode::kDataLoss,
              "its name and extra field (65550 bytes) run past the central "
              "directory");
}

// ---- ReadEntry.

TEST(ZipArchiveTest, ReadEntryEnforcesMaxBytes) {
  auto archive = OpenBytes(BuildZip(TorchFiles()).bytes);
  ASSERT_TRUE(archive.ok()) << archive.status();
  const ZipEntry* data = (*archive)->Find("archive/data/0");
  ASSERT_NE(data, nullptr);
  ExpectError((*archive)->ReadEntry(*data, 5).status(),
              absl::StatusCode::kInvalidArgument,
              "entry \"archive/data/0\" is 6 bytes, more than the 5 bytes "
              "allowed");
  EXPECT_TRUE((*archive)->ReadEntry(*data, 6).ok());
}

TEST(ZipArchiveTest, ReadEntryReportsLocalHeaderDamage) {
  Zip zip = BuildZip(TorchFiles());
  SetLe(&zip.bytes, zip.local[0], 0, 4);
  auto archive = OpenBytes(zip.bytes);
  ASSERT_TRUE(archive.ok()) << archive.status();
  ExpectError((*archive)->ReadEntry((*archive)->entries()[0], 1 << 10).status(),
              absl::StatusCode::kDataLoss, "signature 0x00000000");
}

// Damage anywhere gives a status, never a crash or a read past the end.
TEST(ZipArchiveTest, SurvivesEveryByteFlip) {
  const std::string bytes = absl::HexStringToBytes(kTorchSaveHex);
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (const uint8_t mask : {0x01, 0x80, 0xFF}) {
      std::string damaged = bytes;
      damaged[i] = static_cast<char>(damaged[i] ^ mask);
      auto archive = OpenBytes(damaged);
      if (!archive.ok()) {
        // Never INVALID_ARGUMENT: that would be a read past the source.
        EXPECT_THAT(archive.status().code(),
                    ::testing::AnyOf(absl::StatusCode::kDataLoss,
                                     absl::StatusCode::kFailedPrecondition))
            << i << ": " << archive.status();
        EXPECT_TRUE(IsValidUtf8(std::string(archive.status().message())));
        continue;
      }
      for (const ZipEntry& e : (*archive)->entries()) {
        const auto read = (*archive)->ReadEntry(e, 1 << 20);
        if (read.ok()) {
          EXPECT_EQ(read->size(), e.size);
        } else {
          EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss)
              << i << ": " << read.status();
        }
      }
    }
  }
}

}  // namespace
}  // namespace garden

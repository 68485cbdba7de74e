#include "common/formats/zip_archive.h"

#include <algorithm>
#include <functional>
#include <initializer_list>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"
#include "common/base/status.h"
#include "common/base/utf8.h"

namespace garden {
namespace {

// Record signatures and fixed sizes (APPNOTE.TXT 4.3).
constexpr uint32_t kLocalHeaderSignature = 0x04034b50;
constexpr uint32_t kCentralHeaderSignature = 0x02014b50;
constexpr uint32_t kEndSignature = 0x06054b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint32_t kZip64EndSignature = 0x06064b50;
constexpr uint64_t kLocalHeaderBytes = 30;
constexpr uint64_t kCentralHeaderBytes = 46;
constexpr uint64_t kEndBytes = 22;
constexpr uint64_t kZip64LocatorBytes = 20;
constexpr uint64_t kZip64EndBytes = 56;
constexpr uint64_t kMaxCommentBytes = 0xFFFF;

constexpr uint16_t kZip64ExtraTag = 0x0001;
constexpr uint16_t kFlagEncrypted = 1 << 0;
constexpr uint16_t kFlagDataDescriptor = 1 << 3;
constexpr uint16_t kMethodStored = 0;
// A 16- or 32-bit field with this value defers to the ZIP64 records.
constexpr uint64_t kSaturated16 = 0xFFFF;
constexpr uint64_t kSaturated32 = 0xFFFFFFFF;

// Little-endian fields; callers have checked that [at, at + width) is in `b`.
uint64_t Le(std::string_view b, size_t at, size_t width) {
  uint64_t v = 0;
  for (size_t i = width; i-- > 0;) {
    v = (v << 8) | static_cast<uint8_t>(b[at + i]);
  }
  return v;
}
uint16_t Le16(std::string_view b, size_t at) {
  return static_cast<uint16_t>(Le(b, at, 2));
}
uint32_t Le32(std::string_view b, size_t at) {
  return static_cast<uint32_t>(Le(b, at, 4));
}
uint64_t Le64(std::string_view b, size_t at) { return Le(b, at, 8); }

std::string Hex32(uint32_t v) {
  return absl::StrCat("0x", absl::Hex(v, absl::kZeroPad8));
}

// Entry names are untrusted bytes; messages must stay valid UTF-8.

std::string Range(uint64_t begin, uint64_t end) {
  return absl::StrCat("[", begin, ", ", end, ")");
}

template <typename... Args>
absl::Status DataLoss(const ByteSource& source, const Args&... args) {
  return absl::DataLossError(absl::StrCat(source.name(), ": ", args...));
}

template <typename... Args>
absl::Status Unsupported(const ByteSource& source, const Args&... args) {
  return absl::FailedPreconditionError(
      absl::StrCat(source.name(), ": ", args...));
}

// The bytes Open read from the end of the source; ranges they cover are
// sliced from them instead of being read again (a Hub source pays a round
// trip per read).
struct Tail {
  uint64_t offset = 0;
  std::string bytes;
};

// [offset, offset + size), which the caller has checked lies in the source.
absl::StatusOr<std::string> ReadRange(const ByteSource& source,
                                      const Tail& tail, uint64_t offset,
                                      uint64_t size) {
  if (offset >= tail.offset && size <= tail.bytes.size() &&
      offset - tail.offset <= tail.bytes.size() - size) {
    return tail.bytes.substr(offset - tail.offset, size);
  }
  return source.ReadString(offset, size);
}

// The end of central directory record closest to the end of the source
// whose comment fits in what follows it (a signature inside a comment is
// passed over that way).
absl::StatusOr<uint64_t> FindEndRecord(const ByteSource& source,
                                       const Tail& tail) {
  const std::string_view b = tail.bytes;
  for (size_t i = b.size() - kEndBytes + 1; i-- > 0;) {
    if (b[i] != 'P' || Le32(b, i) != kEndSignature) continue;
    if (Le16(b, i + 20) <= b.size() - i - kEndBytes) return tail.offset + i;
  }
  return DataLoss(source, "no end of central directory record (signature ",
                  Hex32(kEndSignature), ") in the last ", b.size(), " of its ",
                  source.size(), " bytes: not a zip archive, or truncated");
}

// What the end records say about the central directory.
struct EndRecord {
  uint64_t disk = 0;
  uint64_t cd_disk = 0;
  uint64_t entries_on_disk = 0;
  uint64_t entries = 0;
  uint64_t cd_size = 0;
  uint64_t cd_offset = 0;
  // Where the record read last starts; the central directory ends by it.
  uint64_t offset = 0;
  const char* what = "end of central directory record";
};

// A 32-bit record field that is not saturated must agree with the ZIP64 one.
absl::Status CheckAgrees(const ByteSource& source, const char* field,
                         uint64_t narrow, uint64_t saturated, uint64_t wide) {
  if (narrow == saturated || narrow == wide) return absl::OkStatus();
  return DataLoss(source, "the end of central directory record gives ", field,
                  " ", narrow, " but the ZIP64 end record gives ", wide);
}

absl::StatusOr<EndRecord> ReadZip64End(const ByteSource& source,
                                       const Tail& tail, uint64_t locator,
                                       const EndRecord& narrow) {
  ASSIGN_OR_RETURN(const std::string loc,
                   ReadRange(source, tail, locator, kZip64LocatorBytes));
  const uint32_t zip64_disk = Le32(loc, 4);
  const uint64_t zip64 = Le64(loc, 8);
  const uint32_t disks = Le32(loc, 16);
  if (zip64_disk != 0 || disks > 1) {
    return Unsupported(source, "the ZIP64 locator at ", locator, " gives ",
                       disks, " disks (end record on disk ", zip64_disk,
                       "); multi-disk archives are not read");
  }
  if (locator < kZip64EndBytes || zip64 > locator - kZip64EndBytes) {
    return DataLoss(source, "the ZIP64 locator at ", locator,
                    " points to a ZIP64 end record at ", zip64,
                    ", outside the archive (its ", kZip64EndBytes,
                    " bytes must end by the locator)");
  }
  ASSIGN_OR_RETURN(const std::string z,
                   ReadRange(source, tail, zip64, kZip64EndBytes));
  if (Le32(z, 0) != kZip64EndSignature) {
    return DataLoss(source, "the ZIP64 locator at ", locator, " points to ",
                    zip64, ", which has signature ", Hex32(Le32(z, 0)),
                    ", not a ZIP64 end record's ", Hex32(kZip64EndSignature));
  }
  const EndRecord wide{.disk = Le32(z, 16),
                       .cd_disk = Le32(z, 20),
                       .entries_on_disk = Le64(z, 24),
                       .entries = Le64(z, 32),
                       .cd_size = Le64(z, 40),
                       .cd_offset = Le64(z, 48),
                       .offset = zip64,
                       .what = "ZIP64 end of central directory record"};
  RETURN_IF_ERROR(
      CheckAgrees(source, "disk number", narrow.disk, kSaturated16, wide.disk));
  RETURN_IF_ERROR(CheckAgrees(source, "central directory disk", narrow.cd_disk,
                              kSaturated16, wide.cd_disk));
  RETURN_IF_ERROR(CheckAgrees(source, "entries on this disk",
                              narrow.entries_on_disk, kSaturated16,
                              wide.entries_on_disk));
  RETURN_IF_ERROR(CheckAgrees(source, "entry count", narrow.entries,
                              kSaturated16, wide.entries));
  RETURN_IF_ERROR(CheckAgrees(source, "central directory size", narrow.cd_size,
                              kSaturated32, wide.cd_size));
  RETURN_IF_ERROR(CheckAgrees(source, "central directory offset",
                              narrow.cd_offset, kSaturated32, wide.cd_offset));
  return wide;
}

// The end of central directory record at `end`, superseded by the ZIP64 end
// record where a ZIP64 locator precedes it (torch.save always writes one).
absl::StatusOr<EndRecord> ReadEndRecords(const ByteSource& source,
                                         const Tail& tail, uint64_t end) {
  const std::string_view e =
      std::string_view(tail.bytes).substr(end - tail.offset, kEndBytes);
  const EndRecord narrow{.disk = Le16(e, 4),
                         .cd_disk = Le16(e, 6),
                         .entries_on_disk = Le16(e, 8),
                         .entries = Le16(e, 10),
                         .cd_size = Le32(e, 12),
                         .cd_offset = Le32(e, 16),
                         .offset = end};
  const bool saturated =
      narrow.disk == kSaturated16 || narrow.cd_disk == kSaturated16 ||
      narrow.entries_on_disk == kSaturated16 ||
      narrow.entries == kSaturated16 || narrow.cd_size == kSaturated32 ||
      narrow.cd_offset == kSaturated32;
  bool has_locator = false;
  if (end >= kZip64LocatorBytes) {
    ASSIGN_OR_RETURN(const std::string sig,
                     ReadRange(source, tail, end - kZip64LocatorBytes, 4));
    has_locator = Le32(sig, 0) == kZip64LocatorSignature;
  }
  if (has_locator) {
    return ReadZip64End(source, tail, end - kZip64LocatorBytes, narrow);
  }
  if (saturated) {
    return DataLoss(source, "the end of central directory record at ", end,
                    " has saturated fields (", narrow.entries,
                    " entries, central directory of ", narrow.cd_size,
                    " bytes at ", narrow.cd_offset,
                    ") but no ZIP64 locator (signature ",
                    Hex32(kZip64LocatorSignature), ") precedes it");
  }
  return narrow;
}

absl::Status CheckEndRecord(const ByteSource& source, const EndRecord& end,
                            const ZipArchive::Options& options) {
  if (end.disk != 0 || end.cd_disk != 0 || end.entries_on_disk != end.entries) {
    return Unsupported(source, "the ", end.what, " describes a multi-disk ",
                       "archive (disk ", end.disk, ", central directory on ",
                       "disk ", end.cd_disk, ", ", end.entries_on_disk, " of ",
                       end.entries, " entries on this disk); only ",
                       "single-disk archives are read");
  }
  uint64_t cd_end;
  if (__builtin_add_overflow(end.cd_offset, end.cd_size, &cd_end) ||
      cd_end > end.offset) {
    return DataLoss(source, "the central directory of ", end.cd_size,
                    " bytes at ", end.cd_offset, " runs past the ", end.what,
                    " at ", end.offset);
  }
  if (end.cd_size > options.max_central_directory_bytes) {
    return DataLoss(source, "the central directory of ", end.cd_size,
                    " bytes exceeds the limit of ",
                    options.max_central_directory_bytes,
                    " bytes (max_central_directory_bytes)");
  }
  if (end.entries > options.max_entries) {
    return DataLoss(source, "the ", end.what, " declares ", end.entries,
                    " entries, more than the limit of ", options.max_entries,
                    " (max_entries)");
  }
  if (end.entries > end.cd_size / kCentralHeaderBytes) {
    return DataLoss(source, "the ", end.what, " declares ", end.entries,
                    " entries, but a central directory of ", end.cd_size,
                    " bytes holds at most ", end.cd_size / kCentralHeaderBytes);
  }
  return absl::OkStatus();
}

// The extra field with `tag` in `extra`; nullopt if absent. A trailing
// fragment too short for its declared length ends the walk: some writers pad
// the extra field with bytes that are not fields.
std::optional<std::string_view> FindExtraField(std::string_view extra,
                                               uint16_t tag) {
  while (extra.size() >= 4) {
    const uint16_t id = Le16(extra, 0);
    const size_t size = Le16(extra, 2);
    if (size > extra.size() - 4) break;
    if (id == tag) return extra.substr(4, size);
    extra.remove_prefix(4 + size);
  }
  return std::nullopt;
}

// A field that the ZIP64 extended-information extra field supplies when its
// narrow value is saturated.
struct Zip64Field {
  uint64_t* value;
  uint64_t saturated;
  size_t width;  // in the extra field
};

// Replaces each saturated field, in the order given (the order APPNOTE
// 4.5.3 fixes), with the next value of the ZIP64 extra field in `extra`.
absl::Status ExpandZip64(const ByteSource& source, std::string_view what,
                         std::string_view extra,
                         std::initializer_list<Zip64Field> fields) {
  size_t needed = 0;
  for (const Zip64Field& f : fields) {
    if (*f.value == f.saturated) needed += f.width;
  }
  if (needed == 0) return absl::OkStatus();
  const std::optional<std::string_view> data =
      FindExtraField(extra, kZip64ExtraTag);
  if (!data.has_value()) {
    return DataLoss(source, ToAbsl(what), ": a size, offset or disk field ",
                    "is saturated but there is no ZIP64 extra field (tag ",
                    "0x0001)");
  }
  if (data->size() < needed) {
    return DataLoss(source, ToAbsl(what), ": its ZIP64 extra field of ",
                    data->size(), " bytes is shorter than the ", needed,
                    " its saturated fields need");
  }
  size_t at = 0;
  for (const Zip64Field& f : fields) {
    if (*f.value != f.saturated) continue;
    *f.value = Le(*data, at, f.width);
    at += f.width;
  }
  return absl::OkStatus();
}

// The fields of a central directory header, ZIP64 values expanded.
struct CentralFields {
  uint16_t flags = 0;
  uint64_t compressed = 0;
  uint64_t disk = 0;
};

absl::Status CheckCentralEntry(const ByteSource& source, std::string_view what,
                               const CentralFields& fields,
                               const ZipEntry& entry, uint64_t cd_offset) {
  if (fields.flags & kFlagEncrypted) {
    return Unsupported(source, ToAbsl(what), " is encrypted (flag bit 0); ",
                       "encrypted entries are not read");
  }
  if (entry.method != kMethodStored) {
    return Unsupported(source, ToAbsl(what), " is compressed (method ",
                       entry.method, "); only stored entries are read");
  }
  if (fields.disk != 0) {
    return Unsupported(source, ToAbsl(what), " starts on disk ", fields.disk,
                       "; multi-disk archives are not read");
  }
  if (fields.compressed != entry.size) {
    return DataLoss(source, ToAbsl(what), ": a stored entry with compressed ",
                    "size ", fields.compressed, " but uncompressed size ",
                    entry.size);
  }
  if (entry.header_offset > source.size() ||
      source.size() - entry.header_offset < kLocalHeaderBytes) {
    return DataLoss(source, ToAbsl(what), ": local header offset ",
                    entry.header_offset, " is outside the archive of ",
                    source.size(), " bytes");
  }
  // The local extra field is not known yet; DataOffset checks with it.
  const uint64_t begin =
      entry.header_offset + kLocalHeaderBytes + entry.name.size();
  uint64_t end;
  if (__builtin_add_overflow(begin, entry.size, &end) || end > cd_offset) {
    return DataLoss(source, ToAbsl(what), ": data of ", entry.size,
                    " bytes at ", begin, " or later runs past the central ",
                    "directory at ", cd_offset);
  }
  return absl::OkStatus();
}

struct CentralEntry {
  ZipEntry entry;
  size_t record_bytes = 0;  // header, name, extra field, comment
};

// The central directory header at `pos` in `cd`, the index-th.
absl::StatusOr<CentralEntry> ParseCentralEntry(const ByteSource& source,
                                               std::string_view cd,
                                               uint64_t cd_offset, size_t pos,
                                               size_t index) {
  const std::string_view rest = cd.substr(pos);
  const std::string where =
      absl::StrCat("central directory entry ", index, " at ", cd_offset + pos);
  if (rest.size() < kCentralHeaderBytes) {
    return DataLoss(source, where, ": its ", kCentralHeaderBytes,
                    "-byte header runs past the end of the central directory",
                    " at ", cd_offset + cd.size());
  }
  if (Le32(rest, 0) != kCentralHeaderSignature) {
    return DataLoss(source, where, " has signature ", Hex32(Le32(rest, 0)),
                    ", not ", Hex32(kCentralHeaderSignature));
  }
  const size_t name_size = Le16(rest, 28);
  const size_t extra_size = Le16(rest, 30);
  const size_t record =
      kCentralHeaderBytes + name_size + extra_size + Le16(rest, 32);
  if (record > rest.size()) {
    return DataLoss(source, where, ": its ", record, " bytes (name, extra ",
                    "field and comment included) run past the end of the ",
                    "central directory at ", cd_offset + cd.size());
  }
  CentralEntry out;
  out.record_bytes = record;
  ZipEntry& entry = out.entry;
  entry.name = std::string(rest.substr(kCentralHeaderBytes, name_size));
  entry.method = Le16(rest, 10);
  entry.size = Le32(rest, 24);
  entry.header_offset = Le32(rest, 42);
  CentralFields fields{.flags = Le16(rest, 8),
                       .compressed = Le32(rest, 20),
                       .disk = Le16(rest, 34)};
  const std::string what = absl::StrCat("central directory entry ", index, " (",
                                        QuoteForMessage(entry.name), ")");
  RETURN_IF_ERROR(ExpandZip64(
      source, what, rest.substr(kCentralHeaderBytes + name_size, extra_size),
      {{&entry.size, kSaturated32, 8},
       {&fields.compressed, kSaturated32, 8},
       {&entry.header_offset, kSaturated32, 8},
       {&fields.disk, kSaturated16, 4}}));
  RETURN_IF_ERROR(CheckCentralEntry(source, what, fields, entry, cd_offset));
  return out;
}

// Parses every header of `cd` into `entries` and `by_name`; their number
// must be the one the end record declares.
absl::Status ParseCentralDirectory(
    const ByteSource& source, std::string_view cd, const EndRecord& end,
    std::vector<ZipEntry>* entries,
    std::map<std::string, size_t, std::less<>>* by_name) {
  entries->reserve(end.entries);  // CheckEndRecord bounded it
  size_t pos = 0;
  while (pos < cd.size()) {
    const size_t index = entries->size();
    if (index == end.entries) {
      return DataLoss(source, "the central directory holds more than the ",
                      end.entries, " entries the ", end.what,
                      " declares (another starts at ", end.cd_offset + pos,
                      ")");
    }
    ASSIGN_OR_RETURN(CentralEntry parsed,
                     ParseCentralEntry(source, cd, end.cd_offset, pos, index));
    const auto [it, inserted] = by_name->emplace(parsed.entry.name, index);
    if (!inserted) {
      return DataLoss(source, "central directory entry ", index, " (",
                      QuoteForMessage(parsed.entry.name), ") duplicates the name of ",
                      "entry ", it->second);
    }
    entries->push_back(std::move(parsed.entry));
    pos += parsed.record_bytes;
  }
  if (entries->size() != end.entries) {
    return DataLoss(source, "the central directory holds ", entries->size(),
                    " entries but the ", end.what, " declares ", end.entries);
  }
  return absl::OkStatus();
}

// The local header's sizes must be the central directory's, unless they are
// deferred to a data descriptor (flag bit 3 with zero sizes; torch.save
// writes them so).
absl::Status CheckLocalSizes(const ByteSource& source, std::string_view what,
                             std::string_view header, std::string_view extra,
                             const ZipEntry& entry) {
  uint64_t compressed = Le32(header, 18);
  uint64_t uncompressed = Le32(header, 22);
  // The local ZIP64 extra field holds the uncompressed size first.
  RETURN_IF_ERROR(ExpandZip64(
      source, what, extra,
      {{&uncompressed, kSaturated32, 8}, {&compressed, kSaturated32, 8}}));
  const bool deferred = (Le16(header, 6) & kFlagDataDescriptor) != 0 &&
                        compressed == 0 && uncompressed == 0;
  if (deferred || (compressed == entry.size && uncompressed == entry.size)) {
    return absl::OkStatus();
  }
  return DataLoss(source, ToAbsl(what), ": its sizes (compressed ", compressed,
                  ", uncompressed ", uncompressed,
                  ") differ from the central directory's ", entry.size);
}

// The offset of the entry's data, from its local header; Open checked that
// header_offset + 30 + name + size ends by `cd_offset`.
absl::StatusOr<uint64_t> ReadLocalHeader(const ByteSource& source,
                                         const ZipEntry& entry,
                                         uint64_t cd_offset) {
  const std::string what =
      absl::StrCat("entry ", QuoteForMessage(entry.name), " (local header at ",
                   entry.header_offset, ")");
  ASSIGN_OR_RETURN(const std::string header,
                   source.ReadString(entry.header_offset, kLocalHeaderBytes));
  if (Le32(header, 0) != kLocalHeaderSignature) {
    return DataLoss(source, what, ": signature ", Hex32(Le32(header, 0)),
                    ", not ", Hex32(kLocalHeaderSignature));
  }
  const uint64_t name_size = Le16(header, 26);
  const uint64_t extra_size = Le16(header, 28);
  const uint64_t fields_offset = entry.header_offset + kLocalHeaderBytes;
  if (name_size + extra_size > cd_offset - fields_offset) {
    return DataLoss(source, what, ": its name and extra field (",
                    name_size + extra_size, " bytes) run past the central ",
                    "directory at ", cd_offset);
  }
  ASSIGN_OR_RETURN(const std::string fields,
                   source.ReadString(fields_offset, name_size + extra_size));
  const std::string_view name = std::string_view(fields).substr(0, name_size);
  if (name != entry.name) {
    return DataLoss(source, what, ": it names ", QuoteForMessage(name),
                    ", not the central directory's name");
  }
  if (Le16(header, 8) != entry.method) {
    return DataLoss(source, what, ": method ", Le16(header, 8),
                    " differs from the central directory's ", entry.method);
  }
  RETURN_IF_ERROR(CheckLocalSizes(
      source, what, header, std::string_view(fields).substr(name_size), entry));
  const uint64_t data = fields_offset + name_size + extra_size;
  if (entry.size > cd_offset - data) {
    return DataLoss(source, what, ": data ", Range(data, data + entry.size),
                    " runs past the central directory at ", cd_offset);
  }
  return data;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ZipArchive>> ZipArchive::Open(
    std::shared_ptr<const ByteSource> source, Options options) {
  if (source == nullptr) {
    return absl::InvalidArgumentError("ZipArchive::Open: no source");
  }
  const ByteSource& s = *source;
  if (s.size() < kEndBytes) {
    return DataLoss(s, s.size(), " bytes is too short for a zip archive (",
                    "its end of central directory record alone is ", kEndBytes,
                    " bytes)");
  }
  // The end record is in the last 22 + 65535 (its longest comment) bytes.
  Tail tail;
  const uint64_t tail_size =
      std::min<uint64_t>(s.size(), kEndBytes + kMaxCommentBytes);
  tail.offset = s.size() - tail_size;
  ASSIGN_OR_RETURN(tail.bytes, s.ReadString(tail.offset, tail_size));
  ASSIGN_OR_RETURN(const uint64_t end_offset, FindEndRecord(s, tail));
  ASSIGN_OR_RETURN(const EndRecord end, ReadEndRecords(s, tail, end_offset));
  RETURN_IF_ERROR(CheckEndRecord(s, end, options));
  ASSIGN_OR_RETURN(const std::string cd,
                   ReadRange(s, tail, end.cd_offset, end.cd_size));

  auto archive = std::unique_ptr<ZipArchive>(new ZipArchive());
  archive->central_directory_offset_ = end.cd_offset;
  RETURN_IF_ERROR(ParseCentralDirectory(s, cd, end, &archive->entries_,
                                        &archive->by_name_));
  archive->source_ = std::move(source);
  return archive;
}

const ZipEntry* ZipArchive::Find(std::string_view name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

absl::StatusOr<uint64_t> ZipArchive::DataOffset(const ZipEntry& entry) const {
  // Callers pass references into entries(); a copy is found by its name.
  size_t index;
  const std::less<const ZipEntry*> before;
  if (!entries_.empty() && !before(&entry, entries_.data()) &&
      before(&entry, entries_.data() + entries_.size())) {
    index = static_cast<size_t>(&entry - entries_.data());
  } else {
    const auto it = by_name_.find(entry.name);
    if (it == by_name_.end() ||
        entries_[it->second].header_offset != entry.header_offset ||
        entries_[it->second].size != entry.size) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_->name(), ": entry ", QuoteForMessage(entry.name),
                       " is not an entry of this archive"));
    }
    index = it->second;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = data_offsets_.find(index);
    if (it != data_offsets_.end()) return it->second;
  }
  // Read without the lock, so that a slow source does not stall lookups of
  // other entries; racing readers compute the same offset.
  ASSIGN_OR_RETURN(
      const uint64_t offset,
      ReadLocalHeader(*source_, entries_[index], central_directory_offset_));
  std::lock_guard<std::mutex> lock(mu_);
  data_offsets_.emplace(index, offset);
  return offset;
}

absl::StatusOr<std::string> ZipArchive::ReadEntry(const ZipEntry& entry,
                                                  uint64_t max_bytes) const {
  if (entry.size > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_->name(), ": entry ", QuoteForMessage(entry.name), " is ", entry.size,
        " bytes, more than the ", max_bytes, " bytes allowed"));
  }
  ASSIGN_OR_RETURN(const uint64_t offset, DataOffset(entry));
  return source_->ReadString(offset, entry.size);
}

}  // namespace garden

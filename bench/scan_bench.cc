// Kernel benchmark: how close the 16-bit histogram scan comes to just
// reading the bytes, and which way of reading a checkpoint is cheapest (a
// fresh mmap, mmap with MADV_POPULATE_READ, or pread in chunks of several
// sizes). Usage: scan_bench CHECKPOINT.safetensors [TENSOR]
// Prints best-of-5 times and ratios against the in-RAM read floor of the
// same run.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <vector>

#include "common/formats/safetensors.h"
#include "common/stats/histogram.h"

namespace {

double BestOf(int runs, const std::function<void()>& fn) {
  double best = 1e30;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
  }
  return best;
}

// One measured way of scanning, in seconds.
struct Row {
  const char* name;
  double seconds;
};

volatile uint64_t sink = 0;

// The in-RAM kernels over one copy of the tensor's bytes.
std::vector<Row> InRamKernels(absl::Span<const uint8_t> bytes,
                              garden::DType dtype) {
  std::vector<Row> rows;
  rows.push_back({"read floor (sum of words, in RAM)", BestOf(5, [&] {
                    uint64_t sum = 0;
                    for (size_t i = 0; i + 8 <= bytes.size(); i += 8) {
                      uint64_t w;
                      std::memcpy(&w, bytes.data() + i, 8);
                      sum += w;
                    }
                    sink = sink + sum;
                  })});
  rows.push_back({"value counts (in RAM)", BestOf(5, [&] {
                    auto counts = garden::CodeCounts::Count(bytes, dtype);
                    sink = sink + counts->distinct();
                  })});
  rows.push_back({"counts + summary + 64 bins", BestOf(5, [&] {
                    auto counts = garden::CodeCounts::Count(bytes, dtype);
                    auto summary = counts->Summarize();
                    auto binner =
                        *garden::Binner::Create(summary.min, summary.max, 64);
                    sink = sink + counts->Bin(binner).counts[0];
                  })});
  rows.push_back({"generic per-value scan", BestOf(2, [&] {
                    auto binner = *garden::Binner::Create(-0.5, 0.5, 64);
                    auto scan = garden::ScanValues(bytes, dtype, &binner);
                    sink = sink + scan->histogram->counts[0];
                  })});
  // The same values stored as F32, for the per-value path wide dtypes take.
  std::vector<uint8_t> as_f32(bytes.size() / garden::DTypeSize(dtype) * 4);
  if (dtype == garden::DType::kF16 || dtype == garden::DType::kBF16) {
    for (size_t i = 0; i < as_f32.size() / 4; ++i) {
      uint16_t bits;
      std::memcpy(&bits, bytes.data() + 2 * i, 2);
      const float f = static_cast<float>(dtype == garden::DType::kF16
                                             ? garden::DecodeF16(bits)
                                             : garden::DecodeBF16(bits));
      std::memcpy(as_f32.data() + 4 * i, &f, 4);
    }
  }
  rows.push_back({"generic per-value scan of F32 copy", BestOf(2, [&] {
                    auto binner = *garden::Binner::Create(-0.5, 0.5, 64);
                    auto scan = garden::ScanValues(absl::MakeConstSpan(as_f32),
                                                   garden::DType::kF32, &binner);
                    sink = sink + scan->histogram->counts[0];
                  })});
  return rows;
}

// Value counts of the tensor read from the file each time: a fresh mmap, mmap
// with MADV_POPULATE_READ, pread in chunks of several sizes.
std::vector<Row> FileReads(const char* path, const std::string& tensor) {
  std::vector<Row> rows;
  rows.push_back({"value counts (fresh mmap)", BestOf(5, [&] {
                    auto again = garden::SafetensorsFile::Open(path);
                    const garden::TensorInfo* t = (*again)->Find(tensor);
                    auto counts =
                        garden::CodeCounts::Count(*(*again)->Data(*t), t->dtype);
                    (*again)->Release(*t);
                    sink = sink + counts->distinct();
                  })});
  rows.push_back({"value counts (mmap + populate)", BestOf(5, [&] {
                    auto again = garden::SafetensorsFile::Open(path);
                    const garden::TensorInfo* t = (*again)->Find(tensor);
                    auto d = *(*again)->Data(*t);
                    const uintptr_t page = 4096;
                    uintptr_t a = reinterpret_cast<uintptr_t>(d.data()) & ~(page - 1);
                    uintptr_t e = reinterpret_cast<uintptr_t>(d.data() + d.size());
#ifdef MADV_POPULATE_READ
                    madvise(reinterpret_cast<void*>(a), e - a, MADV_POPULATE_READ);
#endif
                    auto counts = garden::CodeCounts::Count(d, t->dtype);
                    (*again)->Release(*t);
                    sink = sink + counts->distinct();
                  })});
  static constexpr struct {
    const char* name;
    size_t bytes;
  } kChunks[] = {{"value counts (pread, 64 KiB chunks)", 64 << 10},
                 {"value counts (pread, 256 KiB chunks)", 256 << 10},
                 {"value counts (pread, 1 MiB chunks)", 1 << 20},
                 {"value counts (pread, 4 MiB chunks)", 4 << 20},
                 {"value counts (pread, 8 MiB chunks)", 8 << 20}};
  for (const auto& chunk : kChunks) {
    std::vector<uint8_t> buffer(chunk.bytes, 1);  // reused, as each worker's is
    rows.push_back({chunk.name, BestOf(5, [&] {
                      auto again = garden::SafetensorsFile::Open(path);
                      const garden::TensorInfo* t = (*again)->Find(tensor);
                      auto counter = garden::CodeCounter::Create(t->dtype);
                      auto status = (*again)->ReadChunks(
                          *t, absl::MakeSpan(buffer),
                          [&](absl::Span<const uint8_t> c) { return counter->Add(c); });
                      sink = sink + counter->Finish().distinct() + status.ok();
                    })});
  }
  return rows;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: scan_bench FILE.safetensors [TENSOR]\n");
    return 2;
  }
  const std::string tensor = argc > 2 ? argv[2] : "embed_out.weight";
  auto file = garden::SafetensorsFile::Open(argv[1]);
  if (!file.ok()) {
    std::fprintf(stderr, "%s\n", file.status().ToString().c_str());
    return 1;
  }
  const garden::TensorInfo* info = (*file)->Find(tensor);
  if (info == nullptr) {
    std::fprintf(stderr, "no tensor %s\n", tensor.c_str());
    return 1;
  }
  const auto mapped = *(*file)->Data(*info);
  const std::vector<uint8_t> copy(mapped.begin(), mapped.end());
  std::vector<Row> rows = InRamKernels(absl::MakeConstSpan(copy), info->dtype);
  for (const Row& row : FileReads(argv[1], tensor)) rows.push_back(row);
  const double floor = rows.front().seconds;
  const double mb = copy.size() / 1e6;
  std::printf("%s %s: %.1f MB, %s\n", argv[1], tensor.c_str(), mb,
              std::string(garden::DTypeName(info->dtype)).c_str());
  std::printf("%-36s %9s %9s %8s\n", "kernel", "ms", "GB/s", "x floor");
  for (const Row& row : rows) {
    std::printf("%-36s %9.2f %9.2f %8.2f\n", row.name, row.seconds * 1e3,
                mb / 1e3 / row.seconds, row.seconds / floor);
  }
  return 0;
}

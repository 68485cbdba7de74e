// Throughput of Tokenizer::Encode on one thread.
//
//   tokenizer_bench TOKENIZER_JSON TEXT_FILE [IDS_OUT]
//
// Encodes the file five times in each of two ways and prints the best
// throughput of each in MB/s (10^6 bytes of input per second):
//   whole:      the whole file as one text, one Encode call;
//   paragraphs: the file cut after each blank line ("\n\n"), one Encode call
//               per paragraph, as a server sees requests.
// The first run starts with a cold word cache; the best run is a warm one,
// as it is for the Hugging Face library, whose cache also persists. With
// IDS_OUT, writes the ids of both (IDS_OUT.whole, IDS_OUT.paragraphs), one
// per line, for comparison with another implementation
// (bench/tokenizer_bench.sh does).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/text/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::cerr << "usage: tokenizer_bench TOKENIZER_JSON TEXT_FILE [IDS_OUT]\n";
    return 2;
  }
  auto tokenizer = garden::Tokenizer::Load(argv[1]);
  if (!tokenizer.ok()) {
    std::cerr << tokenizer.status() << "\n";
    return 1;
  }
  std::ifstream in(argv[2], std::ios::binary);
  if (!in) {
    std::cerr << argv[2] << ": cannot open\n";
    return 1;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();

  std::vector<std::string_view> paragraphs;
  for (size_t at = 0; at < text.size();) {
    size_t end = text.find("\n\n", at);
    end = end == std::string::npos ? text.size() : end + 2;
    paragraphs.push_back(std::string_view(text).substr(at, end - at));
    at = end;
  }

  const garden::Tokenizer& tok = **tokenizer;
  auto measure = [&](const char* name, auto encode) {
    std::vector<int32_t> ids;
    double best = 1e300;
    for (int run = 0; run < 5; ++run) {
      const auto start = std::chrono::steady_clock::now();
      ids = encode();
      const std::chrono::duration<double> took =
          std::chrono::steady_clock::now() - start;
      best = std::min(best, took.count());
    }
    std::printf(
        "garden %s: %zu bytes, %zu tokens, best of 5 %.1f ms, %.2f MB/s\n",
        name, text.size(), ids.size(), best * 1e3, text.size() / best / 1e6);
    if (argc == 4) {
      std::ofstream out(std::string(argv[3]) + "." + name);
      for (int32_t id : ids) out << id << "\n";
    }
  };
  measure("whole", [&] { return tok.Encode(text); });
  measure("paragraphs", [&] {
    std::vector<int32_t> all;
    for (std::string_view p : paragraphs) {
      std::vector<int32_t> ids = tok.Encode(p);
      all.insert(all.end(), ids.begin(), ids.end());
    }
    return all;
  });
  return 0;
}

#include "client/output/progress.h"

namespace garden::client {

void ProgressBar::Update(uint32_t done, uint32_t total,
                         const std::string& label) {
  if (!enabled_ || total == 0) return;
  constexpr int kWidth = 30;
  const int filled =
      static_cast<int>(static_cast<uint64_t>(done) * kWidth / total);
  std::fprintf(
      out_, "\r[%s%s] %u/%u %s\x1b[K", std::string(filled, '#').c_str(),
      std::string(kWidth - filled, '.').c_str(), done, total, label.c_str());
  std::fflush(out_);
  drawn_ = true;
}

void ProgressBar::Clear() {
  if (!drawn_) return;
  std::fprintf(out_, "\r\x1b[K");
  std::fflush(out_);
  drawn_ = false;
}

std::string TransferLabel(uint64_t received, uint64_t expected) {
  if (expected == 0) return "";
  char text[96];
  std::snprintf(text, sizeof(text), " (%.1f of %.1f MB from the Hub)",
                static_cast<double>(received) / 1e6,
                static_cast<double>(expected) / 1e6);
  return text;
}

}  // namespace garden::client

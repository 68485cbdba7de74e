// The one-line progress bar the sweeps draw while the server scans steps.
#ifndef GARDEN_CLIENT_OUTPUT_PROGRESS_H_
#define GARDEN_CLIENT_OUTPUT_PROGRESS_H_

#include <cstdint>
#include <cstdio>
#include <string>

namespace garden::client {

// "[#########.....] 3/10 label", redrawn in place on `out` (stderr, and only
// when it is a terminal: the caller decides with `enabled`). Clear() erases
// it before a record is printed, so records and the bar never share a line.
class ProgressBar {
 public:
  explicit ProgressBar(bool enabled, std::FILE* out = stderr)
      : enabled_(enabled), out_(out) {}
  ~ProgressBar() { Clear(); }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Draws done/total; nothing when disabled or total is 0.
  void Update(uint32_t done, uint32_t total, const std::string& label);
  // Erases the bar if one is drawn.
  void Clear();

 private:
  bool enabled_;
  std::FILE* out_;
  bool drawn_ = false;
};

// " (12.3 of 824.2 MB from the Hub)" for a progress message's transfer
// bytes; "" when nothing was asked of the Hub.
std::string TransferLabel(uint64_t received, uint64_t expected);

}  // namespace garden::client

#endif  // GARDEN_CLIENT_OUTPUT_PROGRESS_H_

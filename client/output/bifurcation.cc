#include "client/output/bifurcation.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/output/json.h"

namespace garden::client {

namespace pb = ::garden::v1;

void BifurcationRenderer::Step(const pb::BifurcationStep& s) {
  nlohmann::json j = {
      {"step", s.step()},
      {"bc", JsonNumber(s.bc())},
      {"modes", std::vector<double>(s.mode_locations().begin(),
                                    s.mode_locations().end())},
      {"mode_heights", std::vector<double>(s.mode_heights().begin(),
                                           s.mode_heights().end())},
      {"dip", JsonNumber(s.dip())},
      {"bimodal", s.bimodal()},
      {"bandwidth", JsonNumber(s.bandwidth())}};
  records_.Print(std::move(j), [&] {
    std::string modes;
    for (double m : s.mode_locations()) {
      absl::StrAppend(&modes, modes.empty() ? "" : " ",
                      absl::StrFormat("%.4g", m));
    }
    return RecordText{
        absl::StrFormat("%8s %7s %7s %8s  %s\n", "STEP", "BC", "DIP",
                        "BIMODAL", "MODES"),
        absl::StrFormat("%8d %7.3f %7.3f %8s  %s\n", s.step(), s.bc(),
                        s.dip(), s.bimodal() ? "yes" : "no", modes)};
  });
}

void BifurcationRenderer::Summary(const pb::BifurcationSummary& summary) {
  if (summary.has_onset()) onset_ = summary.onset();
}

void BifurcationRenderer::Finish() {
  if (format_ == Format::kJson) {
    WriteJson({{"onset", onset_ ? nlohmann::json(*onset_) : nullptr},
               {"steps", records_.TakeKept()}},
              out_);
  } else if (format_ == Format::kTable) {
    out_ << (onset_ ? absl::StrCat("onset: step ", *onset_) : "onset: none")
         << "\n";
  }
}

}  // namespace garden::client

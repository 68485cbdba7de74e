// How gardend's log lines look: text for people (spdlog's pattern), or with
// --log-format json one JSON object per line for log collectors:
//
//   {"time":"2026-12-01T13:50:39.105Z","level":"info","msg":"...",
//    "request_id":"5f3a9c2e00000007","method":"StreamHistograms",
//    "user":"alice","peer":"ipv4:127.0.0.1:53294","model":"pythia/70m/deduped",
//    "code":"OK","duration_ms":161.2}
//
// The request fields appear on the line that ends each RPC (rpc_log.h sets
// them with ScopedLogFields around its log call).
#ifndef GARDEN_SERVER_SERVICE_LOG_FORMAT_H_
#define GARDEN_SERVER_SERVICE_LOG_FORMAT_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "spdlog/logger.h"

namespace garden {

enum class LogFormat { kText, kJson };

// "text" or "json"; INVALID_ARGUMENT naming the value otherwise.
absl::StatusOr<LogFormat> ParseLogFormat(std::string_view name);

// Gives `logger` the format's formatter.
void UseLogFormat(spdlog::logger& logger, LogFormat format);

// While alive, log lines written by this thread carry `fields` (an object)
// besides time, level and msg, in json format.
class ScopedLogFields {
 public:
  explicit ScopedLogFields(const nlohmann::ordered_json& fields);
  ~ScopedLogFields();
  ScopedLogFields(const ScopedLogFields&) = delete;
  ScopedLogFields& operator=(const ScopedLogFields&) = delete;

 private:
  const nlohmann::ordered_json* previous_;
};

}  // namespace garden

#endif  // GARDEN_SERVER_SERVICE_LOG_FORMAT_H_

#include "server/service/log_format.h"

#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"
#include "fmt/chrono.h"
#include "spdlog/formatter.h"
#include "spdlog/pattern_formatter.h"

namespace garden {
namespace {

thread_local const nlohmann::ordered_json* t_fields = nullptr;

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg,
              spdlog::memory_buf_t& dest) override {
    nlohmann::ordered_json line = nlohmann::ordered_json::object();
    const auto since_epoch = msg.time.time_since_epoch();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch) % 1000;
    line["time"] = fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03d}Z",
                               fmt::gmtime(std::chrono::system_clock::to_time_t(msg.time)),
                               static_cast<int>(ms.count()));
    const auto level = spdlog::level::to_string_view(msg.level);
    line["level"] = std::string(level.data(), level.size());
    line["msg"] = std::string(msg.payload.data(), msg.payload.size());
    if (t_fields != nullptr) {
      for (const auto& [key, value] : t_fields->items()) line[key] = value;
    }
    // Bad UTF-8 (a client's odd name) is replaced, never thrown.
    const std::string text =
        line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    dest.append(text.data(), text.data() + text.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

absl::StatusOr<LogFormat> ParseLogFormat(std::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError(absl::StrCat(
      "--log-format \"", ToAbsl(name), "\": expected text or json"));
}

void UseLogFormat(spdlog::logger& logger, LogFormat format) {
  if (format == LogFormat::kJson) {
    logger.set_formatter(std::make_unique<JsonFormatter>());
  } else {
    logger.set_formatter(std::make_unique<spdlog::pattern_formatter>());
  }
}

ScopedLogFields::ScopedLogFields(const nlohmann::ordered_json& fields)
    : previous_(t_fields) {
  t_fields = &fields;
}

ScopedLogFields::~ScopedLogFields() { t_fields = previous_; }

}  // namespace garden

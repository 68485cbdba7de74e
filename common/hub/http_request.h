// Internal to garden_hub: one HTTP exchange over libcurl (no redirect
// followed, no retry), URL helpers built on curl's URL parser, and a pool of
// easy handles so that consecutive requests reuse their connections.
#ifndef GARDEN_COMMON_HUB_HTTP_REQUEST_H_
#define GARDEN_COMMON_HUB_HTTP_REQUEST_H_

#include <curl/curl.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace garden::hub_internal {

// Response headers, names lower-cased; a repeated header keeps its last value.
using HttpHeaders = std::map<std::string, std::string>;

// The value of header `name` (lower case), or "" when absent.
std::string_view HeaderOr(const HttpHeaders& headers, const std::string& name);

struct HttpRequest {
  bool head = false;  // HEAD instead of GET
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::chrono::seconds connect_timeout{10};
  std::chrono::seconds stall_timeout{60};
};

// Receives the body of a 2xx answer. Returning false stops the transfer
// (curl then reports CURLE_WRITE_ERROR).
class BodySink {
 public:
  virtual ~BodySink() = default;
  virtual bool Write(long status, const HttpHeaders& headers, const char* data,
                     size_t n) = 0;
};

struct HttpResponse {
  CURLcode code = CURLE_OK;
  std::string error;  // curl's description when code != CURLE_OK
  long status = 0;    // 0: no answer came
  HttpHeaders headers;
  // The body of a non-2xx answer (its first 64 KiB), or of a 2xx answer that
  // had no sink (at most kMaxCollectedBody bytes; body_too_large past that).
  std::string body;
  bool body_too_large = false;
  bool stopped_by_sink = false;
};

inline constexpr size_t kMaxCollectedBody = 64u << 20;

// Reuses easy handles (and so their connections) across requests; thread-safe.
class CurlPool {
 public:
  CurlPool() = default;
  ~CurlPool();
  CurlPool(const CurlPool&) = delete;
  CurlPool& operator=(const CurlPool&) = delete;

  // One exchange. Every body byte received is added to *bytes_received.
  HttpResponse Perform(const HttpRequest& request, BodySink* sink,
                       std::atomic<uint64_t>* bytes_received);

 private:
  CURL* Take();
  void Give(CURL* curl);

  std::mutex mu_;
  std::vector<CURL*> idle_;
};

// scheme://host:port of an absolute http(s) URL, lower-cased, with the
// default port filled in; compared to decide where the token may go.
absl::StatusOr<std::string> OriginOf(std::string_view url);

// `location` (absolute or relative) resolved against `base`.
absl::StatusOr<std::string> ResolveUrl(std::string_view base,
                                       std::string_view location);

// Calls curl_global_init once per process.
void InitCurlOnce();

}  // namespace garden::hub_internal

#endif  // GARDEN_COMMON_HUB_HTTP_REQUEST_H_

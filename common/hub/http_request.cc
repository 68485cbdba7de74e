#include "common/hub/http_request.h"

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"
#include "common/base/status.h"
#include "common/base/transfer_meter.h"

namespace garden::hub_internal {
namespace {

// Idle handles kept for reuse; more concurrent requests still work, their
// handles are just not kept.
constexpr size_t kMaxIdleHandles = 8;
// What is kept of an error answer's body (for its message, if any).
constexpr size_t kMaxErrorBody = 64u << 10;
constexpr const char* kUserAgent = "garden/0.1";

bool Is2xx(long status) { return status >= 200 && status < 300; }

// Per-exchange state shared with curl's callbacks.
struct Exchange {
  BodySink* sink = nullptr;
  std::atomic<uint64_t>* bytes_received = nullptr;
  HttpResponse* response = nullptr;
  long status = 0;  // from the status line of the answer being read
};

// One header line: a status line starts a new answer (1xx interim answers
// come first), so only the last answer's headers are kept.
size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  const size_t total = size * n;
  std::string_view line(data, total);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
    line.remove_suffix(1);
  }
  if (line.substr(0, 5) == "HTTP/") {
    ex->response->headers.clear();
    ex->status = 0;
    const size_t space = line.find(' ');
    if (space != std::string_view::npos) {
      const std::string_view rest = line.substr(space + 1);
      int status = 0;
      if (absl::SimpleAtoi(ToAbsl(rest.substr(0, rest.find(' '))), &status)) {
        ex->status = status;
      }
    }
    return total;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return total;  // the blank line, folds
  std::string name(line.substr(0, colon));
  absl::AsciiStrToLower(&name);
  ex->response->headers[std::move(name)] =
      std::string(absl::StripAsciiWhitespace(ToAbsl(line.substr(colon + 1))));
  return total;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  const size_t total = size * n;
  ex->bytes_received->fetch_add(total, std::memory_order_relaxed);
  if (TransferMeter* meter = CurrentTransferMeter()) {
    meter->received.fetch_add(total, std::memory_order_relaxed);
  }
  HttpResponse& response = *ex->response;
  if (Is2xx(ex->status) && ex->sink != nullptr) {
    if (ex->sink->Write(ex->status, response.headers, data, total)) {
      return total;
    }
    response.stopped_by_sink = true;
    return 0;
  }
  if (Is2xx(ex->status)) {
    if (response.body.size() + total > kMaxCollectedBody) {
      response.body_too_large = true;
      return 0;
    }
    response.body.append(data, total);
    return total;
  }
  // An error body is only read for its message; the rest is drained so that
  // the connection stays usable.
  const size_t room =
      kMaxErrorBody - std::min(kMaxErrorBody, response.body.size());
  response.body.append(data, std::min(room, total));
  return total;
}

void SetOptions(CURL* curl, const HttpRequest& request, curl_slist* headers,
                Exchange* ex, char* error_buffer) {
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
  if (request.head) {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  }
  // Redirects are followed by the caller, which decides where the token goes.
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, kUserAgent);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(request.connect_timeout.count() * 1000));
  // A stalled transfer (under 1 KiB/s for stall_timeout) is dropped.
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME,
                   static_cast<long>(request.stall_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, ex);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, ex);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
}

struct CurlUrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
using CurlUrl = std::unique_ptr<CURLU, CurlUrlDeleter>;

// One part of a parsed URL ("" when absent).
std::string UrlPart(CURLU* u, CURLUPart part, unsigned flags = 0) {
  char* value = nullptr;
  if (curl_url_get(u, part, &value, flags) != CURLUE_OK || value == nullptr) {
    return "";
  }
  std::string out(value);
  curl_free(value);
  return out;
}

}  // namespace

std::string_view HeaderOr(const HttpHeaders& headers, const std::string& name) {
  const auto it = headers.find(name);
  return it == headers.end() ? std::string_view()
                             : std::string_view(it->second);
}

CurlPool::~CurlPool() {
  for (CURL* curl : idle_) curl_easy_cleanup(curl);
}

CURL* CurlPool::Take() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      CURL* curl = idle_.back();
      idle_.pop_back();
      return curl;
    }
  }
  return curl_easy_init();
}

void CurlPool::Give(CURL* curl) {
  // Reset drops the options (callback data, error buffer) but keeps the
  // connection cache, which is the point of pooling.
  curl_easy_reset(curl);
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < kMaxIdleHandles) {
    idle_.push_back(curl);
  } else {
    curl_easy_cleanup(curl);
  }
}

HttpResponse CurlPool::Perform(const HttpRequest& request, BodySink* sink,
                               std::atomic<uint64_t>* bytes_received) {
  HttpResponse response;
  CURL* curl = Take();
  if (curl == nullptr) {
    response.code = CURLE_FAILED_INIT;
    response.error = "curl_easy_init failed";
    return response;
  }
  // Identity only: sizes, ranges and byte counts are of the file itself
  // (without the header any coding is acceptable, RFC 9110 12.5.3).
  curl_slist* headers = curl_slist_append(nullptr, "Accept-Encoding: identity");
  for (const std::string& header : request.headers) {
    headers = curl_slist_append(headers, header.c_str());
  }
  Exchange ex{sink, bytes_received, &response};
  char error_buffer[CURL_ERROR_SIZE] = {0};
  SetOptions(curl, request, headers, &ex, error_buffer);
  response.code = curl_easy_perform(curl);
  if (response.code != CURLE_OK) {
    response.error = error_buffer[0] != '\0'
                         ? std::string(error_buffer)
                         : std::string(curl_easy_strerror(response.code));
  }
  long status = 0;
  if (curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK) {
    response.status = status;
  }
  Give(curl);
  curl_slist_free_all(headers);
  return response;
}

absl::StatusOr<std::string> OriginOf(std::string_view url) {
  CurlUrl u(curl_url());
  const std::string text(url);
  if (u == nullptr ||
      curl_url_set(u.get(), CURLUPART_URL, text.c_str(), 0) != CURLUE_OK) {
    return absl::InvalidArgumentError("not an absolute URL");
  }
  std::string scheme = UrlPart(u.get(), CURLUPART_SCHEME);
  std::string host = UrlPart(u.get(), CURLUPART_HOST);
  const std::string port = UrlPart(u.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT);
  absl::AsciiStrToLower(&scheme);
  absl::AsciiStrToLower(&host);
  if ((scheme != "http" && scheme != "https") || host.empty()) {
    return absl::InvalidArgumentError("not an http(s) URL");
  }
  return absl::StrCat(scheme, "://", host, ":", port);
}

absl::StatusOr<std::string> ResolveUrl(std::string_view base,
                                       std::string_view location) {
  CurlUrl u(curl_url());
  const std::string base_text(base), location_text(location);
  if (u == nullptr ||
      curl_url_set(u.get(), CURLUPART_URL, base_text.c_str(), 0) != CURLUE_OK) {
    return absl::InvalidArgumentError("bad base URL");
  }
  // Setting a relative URL on a parsed one resolves it (RFC 3986).
  if (curl_url_set(u.get(), CURLUPART_URL, location_text.c_str(), 0) !=
      CURLUE_OK) {
    return absl::InvalidArgumentError("bad Location");
  }
  std::string out = UrlPart(u.get(), CURLUPART_URL);
  if (out.empty()) return absl::InvalidArgumentError("bad Location");
  return out;
}

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace garden::hub_internal

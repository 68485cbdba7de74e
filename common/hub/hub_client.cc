#include "common/hub/hub_client.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <semaphore>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"
#include "common/base/status.h"
#include "common/base/transfer_meter.h"
#include "common/base/utf8.h"
#include "common/crypto/sha256.h"
#include "common/hub/http_request.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace garden {
namespace {

using hub_internal::BodySink;
using hub_internal::HeaderOr;
using hub_internal::HttpHeaders;
using hub_internal::HttpRequest;
using hub_internal::HttpResponse;
using hub_internal::OriginOf;
using hub_internal::ResolveUrl;

constexpr int kMaxRedirects = 10;
constexpr std::string_view kTokenHint =
    "give a token with HF_TOKEN, $HF_HOME/token or --hf-token-file";

bool IsRedirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 ||
         status == 308;
}

bool Is2xx(long status) { return status >= 200 && status < 300; }

// Transport failures worth another try: the network or the peer went away
// or stalled, as opposed to a configuration error (bad URL, TLS trust).
bool IsRetryableCurl(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

// What a request is about, for messages.
struct Target {
  std::string_view repo, revision, filename;
};

// ORG/NAME of [A-Za-z0-9._-]: everything else could change the URL's path.
absl::Status ValidateRepo(std::string_view repo) {
  const size_t slash = repo.find('/');
  const auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", EscapeForMessage(repo), "\" is not a Hub repository (",
        ToAbsl(why), "); expected ORG/NAME"));
  };
  if (slash == std::string_view::npos ||
      repo.find('/', slash + 1) != repo.npos) {
    return bad("one '/' expected");
  }
  for (const std::string_view part :
       {repo.substr(0, slash), repo.substr(slash + 1)}) {
    if (part.empty() || part == "." || part.size() > 96) return bad("bad name");
  }
  for (const char c : repo) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '_' && c != '-' && c != '/') {
      return bad("characters outside [A-Za-z0-9._-]");
    }
  }
  if (absl::StrContains(ToAbsl(repo), "..")) return bad("\"..\"");
  return absl::OkStatus();
}

// A path inside the repository: no empty, "." or ".." segment (curl would
// fold dot segments into another path).
absl::Status ValidateFilename(std::string_view filename) {
  size_t start = 0;
  while (true) {
    const size_t slash = filename.find('/', start);
    const std::string_view seg = filename.substr(start, slash - start);
    if (seg.empty() || seg == "." || seg == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", EscapeForMessage(filename),
                       "\" is not a file path in a repository"));
    }
    if (slash == std::string_view::npos) return absl::OkStatus();
    start = slash + 1;
  }
}

// The file name URL-encoded segment by segment, '/' kept.
std::string EncodePath(std::string_view filename) {
  std::string out;
  size_t start = 0;
  while (true) {
    const size_t slash = filename.find('/', start);
    out += UrlEncodeAll(filename.substr(start, slash - start));
    if (slash == std::string_view::npos) return out;
    out += '/';
    start = slash + 1;
  }
}

// An ETag without its weak marker and quotes.
std::string Unquote(std::string_view etag) {
  if (absl::StartsWith(ToAbsl(etag), "W/")) etag.remove_prefix(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return std::string(etag);
}

std::optional<uint64_t> ParseSize(std::string_view text) {
  uint64_t value = 0;
  if (text.empty() || !absl::SimpleAtoi(ToAbsl(text), &value))
    return std::nullopt;
  return value;
}

// "bytes a-b/N" (N may not be "*": we need the whole size).
bool ParseContentRange(std::string_view v, uint64_t* first, uint64_t* last,
                       uint64_t* total) {
  if (!absl::StartsWith(ToAbsl(v), "bytes ")) return false;
  v.remove_prefix(6);
  const size_t dash = v.find('-'), slash = v.find('/');
  if (dash == v.npos || slash == v.npos || slash < dash) return false;
  const auto a = ParseSize(v.substr(0, dash));
  const auto b = ParseSize(v.substr(dash + 1, slash - dash - 1));
  const auto n = ParseSize(v.substr(slash + 1));
  if (!a || !b || !n) return false;
  *first = *a, *last = *b, *total = *n;
  return true;
}

// Retry-After in seconds; the HTTP-date form is left to the backoff.
std::optional<std::chrono::milliseconds> RetryAfter(
    const HttpHeaders& headers) {
  const auto seconds = ParseSize(HeaderOr(headers, "retry-after"));
  if (!seconds) return std::nullopt;
  return std::chrono::milliseconds(std::min<uint64_t>(*seconds, 86'400) * 1000);
}

// The Hub's own words about an error (X-Error-Message), quoted safely.
std::string ErrorDetail(const HttpResponse& r) {
  std::string_view message = HeaderOr(r.headers, "x-error-message");
  if (message.empty()) return "";
  return absl::StrCat(": ", EscapeForMessage(message.substr(0, 300)));
}

// A 4xx (or unexpected) answer as a status naming the repository.
absl::Status HubError(const HttpResponse& r, const Target& t,
                      std::string_view url, bool has_token, bool from_hub) {
  const std::string_view code = HeaderOr(r.headers, "x-error-code");
  const std::string where = UrlForMessage(url);
  const std::string rev = EscapeForMessage(t.revision);
  const std::string status = absl::StrCat("HTTP ", r.status);
  if (code == "RepoNotFound") {
    return absl::NotFoundError(
        absl::StrCat(ToAbsl(t.repo), ": repository not found on the Hub",
                     has_token ? ""
                               : absl::StrCat(" (if it is private or gated, ",
                                              ToAbsl(kTokenHint), ")")));
  }
  if (code == "RevisionNotFound") {
    return absl::NotFoundError(absl::StrCat(ToAbsl(t.repo), ": revision \"",
                                            rev, "\" not found on the Hub"));
  }
  if (code == "EntryNotFound") {
    return absl::NotFoundError(
        absl::StrCat(ToAbsl(t.repo), ": file \"", EscapeForMessage(t.filename),
                     "\" not found at revision \"", rev, "\" on the Hub"));
  }
  if (from_hub && (code == "GatedRepo" || r.status == 401 || r.status == 403)) {
    if (!has_token) {
      return absl::UnauthenticatedError(absl::StrCat(
          ToAbsl(t.repo), ": the Hub wants a token for this repository (",
          status, "); ", ToAbsl(kTokenHint)));
    }
    return absl::PermissionDeniedError(
        absl::StrCat(ToAbsl(t.repo), ": the Hub refused the token (", status,
                     "); accept the repository's conditions on its page, or ",
                     ToAbsl(kTokenHint)));
  }
  const std::string message = absl::StrCat(
      ToAbsl(t.repo), ": ", where, " answered ", status, ErrorDetail(r));
  if (r.status == 404) return absl::NotFoundError(message);
  if (r.status == 403) return absl::PermissionDeniedError(message);
  if (r.status == 400) return absl::InvalidArgumentError(message);
  return absl::FailedPreconditionError(message);
}

// One try of a request: its result, or a cause to try again.
struct Attempt {
  absl::Status status;  // the result, or (retry) why another try is needed
  bool retry = false;
  std::optional<std::chrono::milliseconds> retry_after;
  bool at_once = false;  // retry now, without counting a try (re-resolved URL)
};

Attempt Done(absl::Status status) {
  return Attempt{std::move(status), false, std::nullopt, false};
}
Attempt Retry(absl::Status cause,
              std::optional<std::chrono::milliseconds> after = std::nullopt) {
  return Attempt{std::move(cause), true, after, false};
}

// A retry for 429, 5xx and dropped or failed connections; nullopt otherwise.
std::optional<Attempt> Transient(const HttpResponse& r, std::string_view url) {
  if (r.code != CURLE_OK) {
    absl::Status cause = absl::UnavailableError(
        absl::StrCat("connection failed: ", EscapeForMessage(r.error)));
    if (IsRetryableCurl(r.code)) return Retry(std::move(cause));
    return Done(absl::UnavailableError(
        absl::StrCat(UrlForMessage(url), ": ", cause.message())));
  }
  if (r.status == 429 || r.status >= 500) {
    return Retry(absl::UnavailableError(absl::StrCat("HTTP ", r.status)),
                 RetryAfter(r.headers));
  }
  return std::nullopt;
}

// Where the bytes of a transfer go, strictly in order.
class Destination {
 public:
  virtual ~Destination() = default;
  virtual absl::Status Put(const char* data, size_t n) = 0;
};

class SpanDestination : public Destination {
 public:
  explicit SpanDestination(absl::Span<uint8_t> out) : out_(out) {}
  absl::Status Put(const char* data, size_t n) override {
    std::memcpy(out_.data() + at_, data, n);
    at_ += n;
    return absl::OkStatus();
  }

 private:
  absl::Span<uint8_t> out_;
  size_t at_ = 0;
};

class FileDestination : public Destination {
 public:
  FileDestination(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  absl::Status Put(const char* data, size_t n) override {
    sha256_.Update(data, n);
    while (n > 0) {
      const ssize_t w = ::write(fd_, data, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return ErrnoStatus(path_, errno, "cannot write");
      data += w;
      n -= static_cast<size_t>(w);
    }
    return absl::OkStatus();
  }
  std::string HexDigest() { return sha256_.FinishHex(); }

 private:
  int fd_;
  std::string path_;
  Sha256 sha256_;
};

// Takes the body of one answer to a ranged (or whole-file) GET, checking it
// is the bytes asked for: a 206 must say exactly that range; a 200 (range
// ignored) is skipped up to `first` and stopped once enough came.
class RangeSink : public BodySink {
 public:
  RangeSink(uint64_t first, uint64_t length, uint64_t total, Destination* dest)
      : first_(first), length_(length), total_(total), dest_(dest) {}

  bool Write(long status, const HttpHeaders& headers, const char* data,
             size_t n) override {
    if (!started_) {
      started_ = true;
      if (!Start(status, headers)) return false;
    }
    const size_t skip = static_cast<size_t>(std::min<uint64_t>(n, skip_));
    data += skip, n -= skip, skip_ -= skip;
    const uint64_t room = length_ - got_;
    const size_t take = static_cast<size_t>(std::min<uint64_t>(n, room));
    if (take > 0) {
      if (absl::Status s = dest_->Put(data, take); !s.ok()) {
        dest_error_ = std::move(s);
        return false;
      }
      got_ += take;
    }
    const bool to_end = first_ + length_ == total_;
    if (n > take) {  // past what was asked
      too_long_ = !whole_ || to_end;
      return false;
    }
    // A 200 carries the rest of the file: stop once we have our part.
    return !(whole_ && !to_end && got_ == length_);
  }

  uint64_t got() const { return got_; }
  bool too_long() const { return too_long_; }
  const std::string& mismatch() const { return mismatch_; }
  const absl::Status& dest_error() const { return dest_error_; }

 private:
  bool Start(long status, const HttpHeaders& headers) {
    const std::string_view content_range = HeaderOr(headers, "content-range");
    if (status == 206) {
      uint64_t a = 0, b = 0, n = 0;
      if (!ParseContentRange(content_range, &a, &b, &n) || a != first_ ||
          b != first_ + length_ - 1 || n != total_) {
        mismatch_ = absl::StrCat(
            "Content-Range \"", EscapeForMessage(content_range),
            "\" for bytes ", first_, "-", first_ + length_ - 1, " of ", total_);
        return false;
      }
      return true;
    }
    const auto size = ParseSize(HeaderOr(headers, "content-length"));
    if (status != 200 || (size && *size != total_)) {
      mismatch_ =
          absl::StrCat("HTTP ", status,
                       size ? absl::StrCat(" with Content-Length ", *size) : "",
                       " for a file of ", total_, " bytes");
      return false;
    }
    whole_ = true;
    skip_ = first_;
    return true;
  }

  const uint64_t first_, length_, total_;
  Destination* const dest_;
  bool started_ = false, whole_ = false, too_long_ = false;
  uint64_t skip_ = 0, got_ = 0;
  std::string mismatch_;
  absl::Status dest_error_;
};

}  // namespace

std::string UrlEncodeAll(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (absl::ascii_isalnum(u) || c == '_' || c == '.' || c == '~' ||
        c == '-') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

std::string UrlForMessage(std::string_view url) {
  url = url.substr(0, url.find_first_of("?#"));
  std::string out(url);
  // Credentials in the authority ("user:pass@") go too.
  const size_t scheme_end = out.find("://");
  if (scheme_end != std::string::npos) {
    const size_t start = scheme_end + 3;
    const size_t end = std::min(out.find('/', start), out.size());
    const size_t at = out.rfind('@', end);
    if (at != std::string::npos && at >= start)
      out.erase(start, at + 1 - start);
  }
  return out;
}

// Everything that talks to the network; HubClient only validates and routes.
constexpr std::ptrdiff_t kMaxConnections = 1024;

// One of HubOptions::max_connections transfers, held while it runs.
class TransferSlot {
 public:
  explicit TransferSlot(std::counting_semaphore<kMaxConnections>& slots)
      : slots_(slots) {
    slots_.acquire();
  }
  ~TransferSlot() { slots_.release(); }
  TransferSlot(const TransferSlot&) = delete;
  TransferSlot& operator=(const TransferSlot&) = delete;

 private:
  std::counting_semaphore<kMaxConnections>& slots_;
};

struct HubClient::Impl {
  Impl(const HubOptions& options, std::atomic<uint64_t>* bytes_received)
      : transfers(options.max_connections),
        options(options),
        bytes_received(bytes_received) {}

  std::counting_semaphore<kMaxConnections> transfers;

  // The answer a chain of redirects ended at.
  struct Fetched {
    HttpResponse response;
    std::string url;       // the last URL asked
    std::string location;  // a redirect off the endpoint's origin, not followed
    absl::Status error;    // a broken redirect chain
  };
  Fetched Follow(bool head, std::string url,
                 const std::vector<std::string>& headers, BodySink* sink,
                 bool stop_off_origin);
  bool FromHub(std::string_view url) const;
  absl::Status Retrying(std::string_view context, const std::string& url,
                        absl::FunctionRef<Attempt()> attempt);
  absl::StatusOr<nlohmann::json> GetJson(const Target& target,
                                         const std::string& url);
  absl::StatusOr<HubFileInfo> FileInfo(std::string_view repo,
                                       std::string_view revision,
                                       std::string_view filename);
  absl::Status FillInfo(const Fetched& f, HubFileInfo* info) const;
  absl::Status Transfer(const HubFileInfo& info, uint64_t offset,
                        uint64_t length, bool always_ranged, Destination* dest);

  // A transfer in progress, across tries.
  struct TransferState {
    HubFileInfo info;  // download_url replaced when re-resolved
    uint64_t offset = 0, length = 0, done = 0;
    bool always_ranged = false, refreshed = false;
    Destination* dest = nullptr;
    std::string context;  // "<repo>: <file>", for messages
  };
  Attempt TransferOnce(TransferState& s);
  Attempt Refresh(TransferState& s);

  const HubOptions& options;
  std::string origin;  // the endpoint's scheme://host:port
  hub_internal::CurlPool pool;
  std::atomic<uint64_t>* const bytes_received;
};

bool HubClient::Impl::FromHub(std::string_view url) const {
  const auto o = OriginOf(url);
  return o.ok() && *o == origin;
}

// Follows up to kMaxRedirects redirects, sending the token only to the
// endpoint's origin; with stop_off_origin, a redirect leaving it (an LFS
// file's CDN) is reported in `location` instead.
HubClient::Impl::Fetched HubClient::Impl::Follow(
    bool head, std::string url, const std::vector<std::string>& headers,
    BodySink* sink, bool stop_off_origin) {
  Fetched f;
  for (int hop = 0;; ++hop) {
    HttpRequest request{head, url, headers, options.connect_timeout,
                        options.stall_timeout};
    if (!options.token.empty() && FromHub(url)) {
      request.headers.push_back(
          absl::StrCat("Authorization: Bearer ", options.token));
    }
    f.response = pool.Perform(request, sink, bytes_received);
    f.url = url;
    if (f.response.code != CURLE_OK || !IsRedirect(f.response.status)) return f;
    const std::string_view location = HeaderOr(f.response.headers, "location");
    auto next = ResolveUrl(url, location);
    if (!next.ok()) {
      f.error = absl::DataLossError(absl::StrCat(UrlForMessage(url), ": HTTP ",
                                                 f.response.status,
                                                 " with a bad Location"));
      return f;
    }
    if (stop_off_origin && !FromHub(*next)) {
      f.location = *std::move(next);
      return f;
    }
    if (hop == kMaxRedirects) {
      f.error = absl::FailedPreconditionError(absl::StrCat(
          UrlForMessage(url), ": more than ", kMaxRedirects, " redirects"));
      return f;
    }
    url = *std::move(next);
  }
}

// Runs `attempt` up to max_attempts times, backing off exponentially (or as
// Retry-After says, capped); the last cause, with the URL, when all fail.
absl::Status HubClient::Impl::Retrying(std::string_view context,
                                       const std::string& url,
                                       absl::FunctionRef<Attempt()> attempt) {
  const int max_attempts = std::max(1, options.max_attempts);
  std::chrono::milliseconds backoff = options.first_backoff;
  absl::Status cause;
  for (int tries = 1;; ++tries) {
    Attempt a = attempt();
    if (!a.retry) return a.status;
    cause = std::move(a.status);
    if (a.at_once) {
      --tries;
      continue;
    }
    if (tries >= max_attempts) {
      return absl::Status(
          cause.code(),
          absl::StrCat(ToAbsl(context), ": ", UrlForMessage(url), ": ",
                       cause.message(), " (", tries, " attempts)"));
    }
    const auto wait =
        std::min(a.retry_after.value_or(backoff), options.max_backoff);
    spdlog::warn("{}: {}: {}; try {} of {} in {} ms", context,
                 UrlForMessage(url), std::string(cause.message()), tries + 1,
                 max_attempts, wait.count());
    std::this_thread::sleep_for(wait);
    backoff = std::min(backoff * 2, options.max_backoff);
  }
}

absl::StatusOr<nlohmann::json> HubClient::Impl::GetJson(
    const Target& target, const std::string& url) {
  nlohmann::json out;
  RETURN_IF_ERROR(Retrying(target.repo, url, [&]() -> Attempt {
    Fetched f =
        Follow(/*head=*/false, url, {}, nullptr, /*stop_off_origin=*/false);
    if (!f.error.ok()) return Done(f.error);
    if (auto retry = Transient(f.response, f.url)) return *std::move(retry);
    if (f.response.status != 200) {
      return Done(HubError(f.response, target, f.url, !options.token.empty(),
                           FromHub(f.url)));
    }
    out = nlohmann::json::parse(f.response.body, nullptr,
                                /*allow_exceptions=*/false);
    if (f.response.body_too_large || out.is_discarded()) {
      return Done(absl::DataLossError(absl::StrCat(ToAbsl(target.repo), ": ",
                                                   UrlForMessage(f.url),
                                                   " did not answer JSON")));
    }
    return Done(absl::OkStatus());
  }));
  return out;
}

absl::StatusOr<HubFileInfo> HubClient::Impl::FileInfo(
    std::string_view repo, std::string_view revision,
    std::string_view filename) {
  const std::string url =
      absl::StrCat(options.endpoint, "/", ToAbsl(repo), "/resolve/",
                   UrlEncodeAll(revision), "/", EncodePath(filename));
  const Target target{repo, revision, filename};
  HubFileInfo info;
  RETURN_IF_ERROR(Retrying(repo, url, [&]() -> Attempt {
    Fetched f =
        Follow(/*head=*/true, url, {}, nullptr, /*stop_off_origin=*/true);
    if (!f.error.ok()) return Done(f.error);
    if (auto retry = Transient(f.response, f.url)) return *std::move(retry);
    if (f.response.status == 200 || !f.location.empty())
      return Done(FillInfo(f, &info));
    return Done(HubError(f.response, target, f.url, !options.token.empty(),
                         FromHub(f.url)));
  }));
  info.repo = std::string(repo);
  info.revision = std::string(revision);
  info.filename = std::string(filename);
  return info;
}

// The metadata of a resolve answer: a 200 (the file itself) or a redirect to
// the CDN (LFS/Xet: X-Linked-Etag and X-Linked-Size describe the content).
absl::Status HubClient::Impl::FillInfo(const Fetched& f,
                                       HubFileInfo* info) const {
  const HttpHeaders& h = f.response.headers;
  const std::string_view linked_etag = HeaderOr(h, "x-linked-etag");
  info->lfs = !f.location.empty() || !linked_etag.empty();
  info->commit = std::string(HeaderOr(h, "x-repo-commit"));
  info->etag = Unquote(info->lfs ? linked_etag : HeaderOr(h, "etag"));
  const auto size =
      ParseSize(HeaderOr(h, info->lfs ? "x-linked-size" : "content-length"));
  info->download_url = f.location.empty() ? f.url : f.location;
  const char* missing =
      info->commit.empty() ? "X-Repo-Commit"
      : info->etag.empty() ? (info->lfs ? "X-Linked-Etag" : "ETag")
      : !size              ? (info->lfs ? "X-Linked-Size" : "Content-Length")
                           : nullptr;
  if (missing != nullptr) {
    return absl::DataLossError(
        absl::StrCat(UrlForMessage(f.url), ": HTTP ", f.response.status,
                     " without a usable ", missing, " header"));
  }
  info->size = *size;
  return absl::OkStatus();
}

absl::Status HubClient::Impl::Transfer(const HubFileInfo& info, uint64_t offset,
                                       uint64_t length, bool always_ranged,
                                       Destination* dest) {
  if (length == 0) return absl::OkStatus();
  TransferState s{
      info,
      offset,
      length,
      0,
      always_ranged,
      false,
      dest,
      absl::StrCat(info.repo, ": ", EscapeForMessage(info.filename))};
  return Retrying(s.context, s.info.download_url,
                  [&] { return TransferOnce(s); });
}

// One GET of what is still missing ([offset + done, offset + length)).
Attempt HubClient::Impl::TransferOnce(TransferState& s) {
  const uint64_t first = s.offset + s.done, last = s.offset + s.length - 1;
  std::vector<std::string> headers;
  if (s.always_ranged || s.done > 0) {
    headers.push_back(absl::StrCat("Range: bytes=", first, "-", last));
  }
  RangeSink sink(first, s.length - s.done, s.info.size, s.dest);
  Fetched f = Follow(/*head=*/false, s.info.download_url, headers, &sink,
                     /*stop_off_origin=*/false);
  s.done += sink.got();
  const std::string where = absl::StrCat(s.context, ": ", UrlForMessage(f.url));
  if (!sink.dest_error().ok()) return Done(sink.dest_error());
  if (sink.too_long()) {
    return Done(absl::DataLossError(
        absl::StrCat(where, ": the answer is longer than the ",
                     last - first + 1, " bytes asked")));
  }
  // Complete, whatever curl says: stopping a 200 early is a write error.
  if (s.done == s.length) return Done(absl::OkStatus());
  if (!f.error.ok()) return Done(f.error);
  if (!sink.mismatch().empty())
    return Retry(absl::DataLossError(sink.mismatch()));
  if (auto retry = Transient(f.response, f.url)) return *std::move(retry);
  if (f.response.status == 403 && !s.refreshed && !FromHub(f.url))
    return Refresh(s);
  if (f.response.status == 416) {  // the file is shorter than the Hub said
    return Done(absl::DataLossError(
        absl::StrCat(where, ": bytes ", first, "-", last,
                     " are past the file's end (HTTP 416)")));
  }
  const Target target{s.info.repo, s.info.revision, s.info.filename};
  if (!Is2xx(f.response.status)) {
    return Done(HubError(f.response, target, f.url, !options.token.empty(),
                         FromHub(f.url)));
  }
  return Retry(absl::DataLossError(
      absl::StrCat("the answer ended ", s.length - s.done, " bytes short")));
}

// A CDN's 403 is most likely an expired signature: resolve the file again
// (pinned to its commit) once, and go on with the fresh URL.
Attempt HubClient::Impl::Refresh(TransferState& s) {
  s.refreshed = true;
  const std::string& pin =
      s.info.commit.empty() ? s.info.revision : s.info.commit;
  auto fresh = FileInfo(s.info.repo, pin, s.info.filename);
  if (!fresh.ok()) return Done(fresh.status());
  if (fresh->etag != s.info.etag || fresh->size != s.info.size) {
    return Done(absl::DataLossError(
        absl::StrCat(s.info.repo, ": ", EscapeForMessage(s.info.filename),
                     " changed on the Hub while being read (etag ", fresh->etag,
                     ", was ", s.info.etag, ")")));
  }
  s.info.download_url = fresh->download_url;
  Attempt again =
      Retry(absl::PermissionDeniedError("the signed URL was refused"));
  again.at_once = true;
  return again;
}

HubClient::HubClient(HubOptions options)
    : options_(std::move(options)),
      impl_(std::make_unique<Impl>(options_, &bytes_received_)) {}

HubClient::~HubClient() = default;

namespace {

// http(s)://host[:port] with an optional trailing '/'; the endpoint without
// it, and its origin.
absl::StatusOr<std::pair<std::string, std::string>> CheckEndpoint(
    std::string endpoint) {
  const auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Hub endpoint \"", EscapeForMessage(UrlForMessage(endpoint)),
        "\": ", ToAbsl(why), "; expected http(s)://host[:port]"));
  };
  const size_t scheme_end = endpoint.find("://");
  if (scheme_end == std::string::npos) return bad("no scheme");
  const size_t path = endpoint.find('/', scheme_end + 3);
  if (path != std::string::npos) {
    if (path != endpoint.size() - 1) return bad("a path, query or fragment");
    endpoint.pop_back();
  }
  if (endpoint.find_first_of("?#@ \t\r\n") != std::string::npos) {
    return bad("a query, fragment, credentials or spaces");
  }
  auto origin = OriginOf(endpoint);
  if (!origin.ok()) return bad(std::string(origin.status().message()));
  return std::make_pair(std::move(endpoint), *std::move(origin));
}

}  // namespace

absl::StatusOr<std::unique_ptr<HubClient>> HubClient::Create(
    HubOptions options) {
  hub_internal::InitCurlOnce();
  ASSIGN_OR_RETURN(auto endpoint, CheckEndpoint(std::move(options.endpoint)));
  options.endpoint = std::move(endpoint.first);
  // The token goes into a header: a byte that could end it is refused (and
  // the token itself is never quoted).
  for (const char c : options.token) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) {
      return absl::InvalidArgumentError(
          "the Hub token holds spaces or control characters");
    }
  }
  if (options.max_attempts < 1 || options.first_backoff.count() < 0 ||
      options.max_backoff.count() < 0) {
    return absl::InvalidArgumentError(
        "Hub options: max_attempts must be at least 1 "
        "and backoffs not negative");
  }
  if (options.max_connections < 1 || options.max_connections > kMaxConnections) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Hub options: max_connections ", options.max_connections,
        " is outside [1, ", kMaxConnections, "]"));
  }
  std::unique_ptr<HubClient> client(new HubClient(std::move(options)));
  client->impl_->origin = std::move(endpoint.second);
  return client;
}

absl::StatusOr<std::vector<HubBranch>> HubClient::ListBranches(
    std::string_view repo) {
  RETURN_IF_ERROR(ValidateRepo(repo));
  const std::string url =
      absl::StrCat(options_.endpoint, "/api/models/", ToAbsl(repo), "/refs");
  ASSIGN_OR_RETURN(const nlohmann::json json,
                   impl_->GetJson(Target{repo, {}, {}}, url));
  const auto malformed = [&] {
    return absl::DataLossError(
        absl::StrCat(ToAbsl(repo), ": ", UrlForMessage(url),
                     ": no \"branches\" list of names and commits"));
  };
  const auto it = json.is_object() ? json.find("branches") : json.end();
  if (it == json.end() || !it->is_array()) return malformed();
  std::vector<HubBranch> branches;
  for (const nlohmann::json& b : *it) {
    const auto name = b.is_object() ? b.find("name") : b.end();
    const auto commit = b.is_object() ? b.find("targetCommit") : b.end();
    if (name == b.end() || commit == b.end() || !name->is_string() ||
        !commit->is_string()) {
      return malformed();
    }
    branches.push_back({name->get<std::string>(), commit->get<std::string>()});
  }
  return branches;
}

absl::StatusOr<std::vector<std::string>> HubClient::ListFiles(
    std::string_view repo, std::string_view revision) {
  RETURN_IF_ERROR(ValidateRepo(repo));
  if (revision.empty()) return absl::InvalidArgumentError("empty Hub revision");
  const std::string url =
      absl::StrCat(options_.endpoint, "/api/models/", ToAbsl(repo),
                   "/revision/", UrlEncodeAll(revision));
  ASSIGN_OR_RETURN(const nlohmann::json json,
                   impl_->GetJson(Target{repo, revision, {}}, url));
  const auto malformed = [&] {
    return absl::DataLossError(
        absl::StrCat(ToAbsl(repo), ": ", UrlForMessage(url),
                     ": no \"siblings\" list of file names"));
  };
  const auto it = json.is_object() ? json.find("siblings") : json.end();
  if (it == json.end() || !it->is_array()) return malformed();
  std::vector<std::string> files;
  for (const nlohmann::json& s : *it) {
    const auto name = s.is_object() ? s.find("rfilename") : s.end();
    if (name == s.end() || !name->is_string()) return malformed();
    files.push_back(name->get<std::string>());
  }
  return files;
}

absl::StatusOr<HubFileInfo> HubClient::FileInfo(std::string_view repo,
                                                std::string_view revision,
                                                std::string_view filename) {
  RETURN_IF_ERROR(ValidateRepo(repo));
  if (revision.empty()) return absl::InvalidArgumentError("empty Hub revision");
  RETURN_IF_ERROR(ValidateFilename(filename));
  return impl_->FileInfo(repo, revision, filename);
}

absl::Status HubClient::ReadRange(const HubFileInfo& info, uint64_t offset,
                                  absl::Span<uint8_t> out) {
  if (offset > info.size || out.size() > info.size - offset) {
    return absl::InvalidArgumentError(absl::StrCat(
        info.repo, ": ", EscapeForMessage(info.filename), ": bytes ", offset,
        "+", out.size(), " are past its ", info.size, " bytes"));
  }
  SpanDestination dest(out);
  if (TransferMeter* meter = CurrentTransferMeter()) meter->expected += out.size();
  TransferSlot slot(impl_->transfers);
  return impl_->Transfer(info, offset, out.size(), /*always_ranged=*/true,
                         &dest);
}

absl::Status HubClient::Download(const HubFileInfo& info,
                                 const std::string& path) {
  const int fd =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(path, errno, "cannot create");
  FileDestination dest(fd, path);
  if (TransferMeter* meter = CurrentTransferMeter()) meter->expected += info.size;
  TransferSlot slot(impl_->transfers);
  absl::Status status =
      impl_->Transfer(info, 0, info.size, /*always_ranged=*/false, &dest);
  if (status.ok() && info.lfs) {
    const std::string digest = dest.HexDigest();
    if (digest != absl::AsciiStrToLower(info.etag)) {
      status = absl::DataLossError(absl::StrCat(
          info.repo, ": ", EscapeForMessage(info.filename), ": sha256 ", digest,
          " does not match the Hub's ", EscapeForMessage(info.etag)));
    }
  }
  if (::close(fd) != 0 && status.ok())
    status = ErrnoStatus(path, errno, "cannot close");
  // A partial or corrupt file must not pass for the real one.
  if (!status.ok()) ::unlink(path.c_str());
  return status;
}

}  // namespace garden

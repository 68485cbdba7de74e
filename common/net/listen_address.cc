#include "common/net/listen_address.h"

#include <arpa/inet.h>

#include <cstring>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"

namespace garden {

bool IsUnixAddress(std::string_view listen) {
  return listen.starts_with("unix:") || listen.starts_with("unix-abstract:");
}

bool IsLoopbackAddress(std::string_view listen) {
  if (IsUnixAddress(listen)) return true;
  for (std::string_view scheme : {"ipv4:", "ipv6:"}) {
    if (listen.starts_with(scheme)) listen.remove_prefix(scheme.size());
  }
  std::string_view host;
  if (listen.starts_with("[")) {
    const size_t close = listen.find(']');
    if (close == std::string_view::npos) return false;
    host = listen.substr(1, close - 1);
  } else {
    const size_t colon = listen.rfind(':');
    host = colon == std::string_view::npos ? listen : listen.substr(0, colon);
  }
  const std::string h = absl::AsciiStrToLower(ToAbsl(host));
  if (h == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

absl::StatusOr<HostPort> ParseHostPort(std::string_view listen,
                                       std::string_view flag,
                                       std::string_view example) {
  const size_t colon = listen.rfind(':');
  HostPort out;
  std::string_view host =
      colon == std::string_view::npos ? listen : listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  out.host = std::string(host);
  if (colon == std::string_view::npos || out.host.empty() ||
      out.host.find_first_of("[]") != std::string::npos ||
      !absl::SimpleAtoi(ToAbsl(listen.substr(colon + 1)), &out.port) ||
      out.port < 0 || out.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(flag), " ", ToAbsl(listen),
                     ": expected HOST:PORT with PORT in [0, 65535], e.g. ",
                     ToAbsl(example)));
  }
  return out;
}

}  // namespace garden

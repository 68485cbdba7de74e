#include "server/security/listen_address.h"

#include <arpa/inet.h>

#include <cstring>
#include <string>

#include "absl/strings/ascii.h"
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

}  // namespace garden

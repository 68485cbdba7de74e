// Listening addresses: what one reaches (loopback only, or a network), and
// HOST:PORT split for the HTTP servers (gardend's /metrics, garden ui).
#ifndef GARDEN_COMMON_NET_LISTEN_ADDRESS_H_
#define GARDEN_COMMON_NET_LISTEN_ADDRESS_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace garden {

// True for addresses only this host can reach: 127.0.0.0/8, ::1 (and
// ::ffff:127.x), "localhost", and unix sockets ("unix:PATH",
// "unix-abstract:NAME"). "0.0.0.0", "[::]", host names and other addresses
// are false. Accepts gRPC's forms: "HOST:PORT", "[V6]:PORT", "ipv4:…",
// "ipv6:…".
bool IsLoopbackAddress(std::string_view listen);

// True for "unix:" and "unix-abstract:" addresses.
bool IsUnixAddress(std::string_view listen);

struct HostPort {
  std::string host;  // without the brackets of "[V6]"
  int port = 0;      // 0: any free port
};

// "HOST:PORT" or "[V6]:PORT" with PORT in [0, 65535]. INVALID_ARGUMENT
// naming `flag` and the value otherwise, e.g. "--listen x: expected
// HOST:PORT, e.g. 127.0.0.1:8080".
absl::StatusOr<HostPort> ParseHostPort(std::string_view listen,
                                       std::string_view flag,
                                       std::string_view example);

}  // namespace garden

#endif  // GARDEN_COMMON_NET_LISTEN_ADDRESS_H_

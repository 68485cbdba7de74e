// What a gRPC listening address reaches: loopback only, or a network.
#ifndef GARDEN_SERVER_SECURITY_LISTEN_ADDRESS_H_
#define GARDEN_SERVER_SECURITY_LISTEN_ADDRESS_H_

#include <string_view>

namespace garden {

// True for addresses only this host can reach: 127.0.0.0/8, ::1 (and
// ::ffff:127.x), "localhost", and unix sockets ("unix:PATH",
// "unix-abstract:NAME"). "0.0.0.0", "[::]", host names and other addresses
// are false. Accepts gRPC's forms: "HOST:PORT", "[V6]:PORT", "ipv4:…",
// "ipv6:…".
bool IsLoopbackAddress(std::string_view listen);

// True for "unix:" and "unix-abstract:" addresses.
bool IsUnixAddress(std::string_view listen);

}  // namespace garden

#endif  // GARDEN_SERVER_SECURITY_LISTEN_ADDRESS_H_

// How gardend listens: the credentials for its --listen address, checked
// before the server starts so that every mistake is a start-up error naming
// the file (and why) rather than a failed handshake later.
//
//   TLS (--tls-cert/--tls-key)   SslServerCredentials; with --tls-client-ca,
//                                clients must present a certificate it signed.
//   loopback, no TLS             plaintext that only this host can reach
//                                (gRPC's local credentials when tokens are
//                                checked, which also refuse peers that are
//                                not loopback; plain insecure ones otherwise).
//   network, no TLS              refused unless --insecure; tokens are then
//                                refused too (they would cross the network in
//                                clear).
#ifndef GARDEN_SERVER_SECURITY_SERVER_CREDENTIALS_H_
#define GARDEN_SERVER_SECURITY_SERVER_CREDENTIALS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/security/server_credentials.h"
#include "server/security/token_auth.h"

namespace garden {

struct ListenSecurity {
  std::string address;                // --listen
  std::string tls_cert, tls_key;      // PEM files; both or neither
  std::string tls_client_ca;          // PEM; needs tls_cert
  bool insecure = false;              // plaintext off loopback allowed
  std::shared_ptr<TokenAuth> tokens;  // null: no token check
};

// INVALID_ARGUMENT for a combination refused above or a certificate and key
// that do not match; NOT_FOUND / PERMISSION_DENIED naming an unreadable
// file; INVALID_ARGUMENT naming a file that holds no PEM certificate or key.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ListenSecurity& security);

// "TLS", "mutual TLS", "plaintext (loopback)", "plaintext (--insecure)":
// for the start-up log line.
std::string DescribeSecurity(const ListenSecurity& security);

}  // namespace garden

#endif  // GARDEN_SERVER_SECURITY_SERVER_CREDENTIALS_H_

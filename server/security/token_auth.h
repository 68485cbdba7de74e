// The token check on every call gardend takes (health and reflection
// included): `authorization: Bearer <token>` must name a token of the
// --auth-tokens file. Missing or unknown tokens are UNAUTHENTICATED with a
// message saying how to send one, never which tokens exist. The header is
// consumed here, so no handler (or log) sees the token; the caller's name
// is put in the call's auth context, where UserOf finds it.
//
// Reload() re-reads the file (gardend does on SIGHUP); until it succeeds
// the previous table stays in force.
#ifndef GARDEN_SERVER_SECURITY_TOKEN_AUTH_H_
#define GARDEN_SERVER_SECURITY_TOKEN_AUTH_H_

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "common/auth/token_table.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/security/auth_metadata_processor.h"

namespace garden {

class TokenAuth : public grpc::AuthMetadataProcessor {
 public:
  // Loads `path` (TokenTable::Load's errors).
  static absl::StatusOr<std::shared_ptr<TokenAuth>> Open(std::string path);

  // The number of entries now in force, or the error that left the old
  // table in force.
  absl::StatusOr<size_t> Reload();
  const std::string& path() const { return path_; }
  // Calls refused for a missing or unknown token (for metrics).
  uint64_t refused() const { return refused_.load(); }

  // Cheap: gRPC may run it on its own threads.
  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& auth_metadata,
                       grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override;

 private:
  TokenAuth(std::string path, TokenTable table)
      : path_(std::move(path)),
        table_(std::make_shared<const TokenTable>(std::move(table))) {}

  std::shared_ptr<const TokenTable> table() const;

  grpc::Status Refuse(std::string message);

  const std::string path_;
  std::atomic<uint64_t> refused_{0};
  mutable std::mutex mu_;
  std::shared_ptr<const TokenTable> table_;
};

// The name of the token the call came with; "" on a server without tokens.
std::string UserOf(const grpc::ServerContext& context);

}  // namespace garden

#endif  // GARDEN_SERVER_SECURITY_TOKEN_AUTH_H_

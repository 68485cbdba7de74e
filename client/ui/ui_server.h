// garden ui's local web server: the dashboard's page (static files built
// from client/ui/web) and the JSON bridge to gardend (rpc_bridge.h), on
// the researcher's own machine.
//
//   GET  /                      the page (index.html and its files)
//   GET  /api/info              {"server", "tls", "token"}
//   POST /api/call/METHOD       a unary RPC: the response as JSON
//   POST /api/stream/METHOD     a streaming RPC: application/x-ndjson, one
//                               {"message": ...} line per message as it
//                               comes, then one {"status": {"code", ...}}
//   POST /api/cancel/ID         cancels the stream sent with
//                               "X-Garden-Request: ID"
// Errors before a stream starts, and of unary calls, are an HTTP status
// (400, 401, 403, 404, 429, 499, 503, 504, 500 by gRPC code) with
// {"status": {"code", "message"}}. A stream whose page goes away is
// cancelled at its next line.
//
// Guards, since the page acts with the user's token: POSTs must be
// `Content-Type: application/json` (a cross-site form cannot send it
// without a CORS preflight, which is never granted: 415 otherwise); the
// Host header must name this server (403 otherwise: DNS rebinding) and an
// Origin, if sent, must be this server's; the page may load nothing but its
// own files (Content-Security-Policy).
#ifndef GARDEN_CLIENT_UI_UI_SERVER_H_
#define GARDEN_CLIENT_UI_UI_SERVER_H_

#include <string>

#include "absl/status/status.h"
#include "client/commands/connection.h"

namespace garden::client {

struct UiOptions {
  std::string listen = "127.0.0.1:8080";
  // Without it, only a loopback --listen is accepted (the page is served
  // with the user's token); with it, any Host header is too.
  bool allow_remote = false;
  // The page's files; "" for <garden's folder>/../ui, where the build puts
  // them.
  std::string assets_dir;
  // Written with the port once listening (for --listen HOST:0); "" for none.
  std::string port_file;
  // Threads serving HTTP: each running stream holds one.
  int threads = 32;
};

// Serves until the process ends. INVALID_ARGUMENT for a --listen that is not
// HOST:PORT, or not loopback without allow_remote; NOT_FOUND for an assets
// folder without index.html; UNAVAILABLE when the address cannot be bound.
absl::Status ServeUi(const UiOptions& options, Connection& connection);

}  // namespace garden::client

#endif  // GARDEN_CLIENT_UI_UI_SERVER_H_

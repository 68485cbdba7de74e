#include "client/ui/ui_server.h"

#include <filesystem>
#include <iostream>
#include <memory>
#include <set>
#include <string_view>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/ui/rpc_bridge.h"
#include "common/base/absl_compat.h"
#include "common/base/files.h"
#include "common/base/status.h"
#include "common/net/listen_address.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace garden::client {
namespace {

// The HTTP status a gRPC code is shown as (499: nginx's "client closed").
int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange: return 400;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted: return 409;
    case absl::StatusCode::kResourceExhausted: return 429;
    case absl::StatusCode::kCancelled: return 499;
    case absl::StatusCode::kUnavailable: return 503;
    case absl::StatusCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

void SendStatus(httplib::Response& response, const absl::Status& status) {
  response.status = HttpStatusOf(status.code());
  response.set_content(StatusToJson(status), "application/json");
}

// "host:port" as a Host header names it ("[::1]:8080" for IPv6).
std::string Authority(std::string_view host, int port) {
  const bool v6 = host.find(':') != std::string_view::npos;
  return absl::StrCat(v6 ? "[" : "", ToAbsl(host), v6 ? "]" : "", ":", port);
}

// The Host headers this server answers to: its own address, and the
// loopback names when it listens on loopback.
std::set<std::string> OwnAuthorities(const HostPort& address, int port) {
  std::set<std::string> own{absl::AsciiStrToLower(Authority(address.host, port))};
  if (IsLoopbackAddress(Authority(address.host, port))) {
    for (const char* name : {"localhost", "127.0.0.1", "::1"}) {
      own.insert(Authority(name, port));
    }
  }
  return own;
}

absl::StatusOr<std::string> AssetsDir(const std::string& given) {
  std::filesystem::path dir = given;
  if (dir.empty()) {
    std::error_code error;
    const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
    dir = self.parent_path().parent_path() / "ui";
  }
  if (!std::filesystem::is_regular_file(dir / "index.html")) {
    return absl::NotFoundError(absl::StrCat(
        "--assets ", dir.string(), ": no index.html there (the build puts the page in "
        "build/ui; it needs node and npm to fetch its chart library)"));
  }
  return dir.string();
}

}  // namespace

absl::Status ServeUi(const UiOptions& options, Connection& connection) {
  ASSIGN_OR_RETURN(const HostPort address,
                   ParseHostPort(options.listen, "--listen", "127.0.0.1:8080"));
  if (!options.allow_remote && !IsLoopbackAddress(options.listen)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen ", options.listen,
        ": not a loopback address; the page acts with your token, so other "
        "machines may reach it only with --allow-remote"));
  }
  ASSIGN_OR_RETURN(const std::string assets, AssetsDir(options.assets_dir));

  RpcBridge bridge(connection);
  httplib::Server http;
  const int threads = options.threads;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  std::set<std::string> own;  // filled once the port is known

  http.set_pre_routing_handler([&](const httplib::Request& request,
                                   httplib::Response& response) {
    const std::string host = absl::AsciiStrToLower(request.get_header_value("Host"));
    const std::string origin = request.get_header_value("Origin");
    if (!options.allow_remote &&
        (!own.contains(host) || (!origin.empty() && origin != "http://" + host))) {
      SendStatus(response, absl::PermissionDeniedError(absl::StrCat(
                               "Host ", host, origin.empty() ? "" : ", Origin ", origin,
                               ": not this server's address (garden ui answers only "
                               "requests addressed to it)")));
      return httplib::Server::HandlerResponse::Handled;
    }
    if (request.method == "POST" &&
        !absl::StartsWith(request.get_header_value("Content-Type"), "application/json")) {
      SendStatus(response, absl::InvalidArgumentError(
                               "POST requests to garden ui must be Content-Type: "
                               "application/json"));
      response.status = 415;
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http.set_post_routing_handler([](const httplib::Request&, httplib::Response& response) {
    response.set_header("X-Content-Type-Options", "nosniff");
    response.set_header("Cache-Control", "no-store");
    response.set_header("Content-Security-Policy",
                        "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                        "img-src 'self' data: blob:; frame-ancestors 'none'");
  });

  http.Get("/api/info", [&](const httplib::Request&, httplib::Response& response) {
    response.set_content(nlohmann::json{{"server", connection.server()},
                                        {"tls", connection.uses_tls()},
                                        {"token", connection.has_token()}}
                             .dump(),
                         "application/json");
  });
  http.Post(R"(/api/call/([A-Za-z]+))", [&](const httplib::Request& request,
                                            httplib::Response& response) {
    absl::StatusOr<std::string> answer = bridge.CallUnary(request.matches[1].str(), request.body);
    if (!answer.ok()) return SendStatus(response, answer.status());
    response.set_content(*answer, "application/json");
  });
  http.Post(R"(/api/stream/([A-Za-z]+))", [&](const httplib::Request& request,
                                              httplib::Response& response) {
    absl::StatusOr<std::unique_ptr<StreamCall>> opened = bridge.OpenStream(
        request.matches[1].str(), request.body, request.get_header_value("X-Garden-Request"));
    if (!opened.ok()) return SendStatus(response, opened.status());
    // httplib copies the provider: the call is shared, and released (with
    // its id) when the response is done.
    auto call = std::make_shared<std::unique_ptr<StreamCall>>(*std::move(opened));
    response.set_chunked_content_provider(
        "application/x-ndjson",
        [call](size_t, httplib::DataSink& sink) {
          StreamCall& stream = **call;
          std::string json;
          while (stream.Next(&json)) {
            const std::string line = absl::StrCat("{\"message\":", json, "}\n");
            if (!sink.write(line.data(), line.size())) {
              // The page has gone: stop gardend's work.
              stream.Cancel();
              while (stream.Next(&json)) {
              }
              (void)stream.Finish();
              return false;
            }
          }
          const std::string last = StatusToJson(stream.Finish()) + "\n";
          sink.write(last.data(), last.size());
          sink.done();
          return true;
        },
        [call](bool) { call->reset(); });
  });
  http.Post(R"(/api/cancel/([A-Za-z0-9_-]{1,64}))", [&](const httplib::Request& request,
                                                       httplib::Response& response) {
    const std::string id = request.matches[1].str();
    if (!bridge.Cancel(id)) {
      return SendStatus(response, absl::NotFoundError(absl::StrCat(
                                      "no request named ", id, " is running")));
    }
    response.set_content(R"({"cancelled":true})", "application/json");
  });
  if (!http.set_mount_point("/", assets)) {
    return absl::NotFoundError(absl::StrCat("--assets ", assets, ": not a folder"));
  }

  const int port = address.port == 0 ? http.bind_to_any_port(address.host)
                                     : (http.bind_to_port(address.host, address.port)
                                            ? address.port
                                            : -1);
  if (port <= 0) {
    return absl::UnavailableError(absl::StrCat(
        "--listen ", options.listen,
        ": cannot listen there (in use, or not an address of this host)"));
  }
  own = OwnAuthorities(address, port);
  if (!options.port_file.empty()) {
    RETURN_IF_ERROR(WriteFileAtomic(options.port_file, absl::StrCat(port, "\n")));
  }
  std::cout << "garden ui: http://" << Authority(address.host, port) << "/ (gardend at "
            << connection.server() << "; Ctrl-C stops)" << std::endl;
  if (!http.listen_after_bind()) {
    return absl::UnavailableError(absl::StrCat("--listen ", options.listen, ": serving stopped"));
  }
  return absl::OkStatus();
}

}  // namespace garden::client

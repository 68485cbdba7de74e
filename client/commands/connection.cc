#include "client/commands/connection.h"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"
#include "common/base/files.h"
#include "common/base/status.h"
#include "common/base/utf8.h"
#include "common/naming/names.h"

namespace garden::client {

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

int Fail(const absl::Status& status) {
  std::cerr << "garden: " << absl::StatusCodeToString(status.code()) << ": "
            << status.message() << std::endl;
  return 1;
}

void Connection::AddTo(CLI::App& app) {
  const char* env_server = std::getenv("GARDEN_SERVER");
  server_ = env_server ? env_server : "127.0.0.1:50051";
  app.add_option("--server", server_, "gardend address (env GARDEN_SERVER)")
      ->capture_default_str();
  app.add_option("--timeout", timeout_s_, "deadline in seconds (0: none)");
  app.add_option("--token-file", token_file_,
                 "file holding this user's token for a server that checks "
                 "them (default: the token in env GARDEN_TOKEN)");
  app.add_option("--tls-ca", tls_ca_,
                 "speak TLS, trusting the server's certificate if this PEM CA "
                 "signed it");
  app.add_option("--tls-cert", tls_cert_,
                 "mutual TLS: this client's PEM certificate (with --tls-key)");
  app.add_option("--tls-key", tls_key_,
                 "mutual TLS: the PEM private key of --tls-cert");
}

namespace {

// Tokens and PEM files are small; a wrong path is not read whole.
constexpr uint64_t kMaxFlagFileBytes = 1 << 20;

absl::StatusOr<std::string> ReadFlagFile(std::string_view flag, const std::string& path) {
  return garden::ReadFlagFile(flag, path, kMaxFlagFileBytes);
}

}  // namespace

absl::Status Connection::Prepare() {
  if (!token_file_.empty()) {
    ASSIGN_OR_RETURN(const std::string text, ReadFlagFile("--token-file", token_file_));
    token_ = std::string(absl::StripAsciiWhitespace(text));
    if (token_.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--token-file ", token_file_, ": the file is empty"));
    }
  } else if (const char* env = std::getenv("GARDEN_TOKEN")) {
    token_ = std::string(absl::StripAsciiWhitespace(env));
  }
  // A token goes into a header: no line breaks or other control bytes.
  for (const char c : token_) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          "the token holds a control character; it is not one `garden token "
          "new` made");
    }
  }
  if (tls_cert_.empty() != tls_key_.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert and --tls-key go together: give both, or neither");
  }
  if (!tls_cert_.empty() && tls_ca_.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert is for mutual TLS: give --tls-ca too");
  }
  if (tls_ca_.empty()) {
    credentials_ = grpc::InsecureChannelCredentials();
    return absl::OkStatus();
  }
  grpc::SslCredentialsOptions options;
  ASSIGN_OR_RETURN(options.pem_root_certs, ReadFlagFile("--tls-ca", tls_ca_));
  if (!tls_cert_.empty()) {
    ASSIGN_OR_RETURN(options.pem_cert_chain, ReadFlagFile("--tls-cert", tls_cert_));
    ASSIGN_OR_RETURN(options.pem_private_key, ReadFlagFile("--tls-key", tls_key_));
  }
  credentials_ = grpc::SslCredentials(options);
  return absl::OkStatus();
}

std::shared_ptr<grpc::Channel> Connection::channel() {
  if (channel_ == nullptr) {
    grpc::ChannelArguments channel_args;
    channel_args.SetMaxReceiveMessageSize(64 << 20);  // attention matrices
    // Every Garden call only reads, so one that failed UNAVAILABLE before any
    // answer came (a replica killed under it behind the proxy, a server
    // restarting) is tried again; gRPC never retries a stream once a message
    // has arrived, so nothing is printed twice.
    channel_args.SetServiceConfigJSON(R"({"methodConfig": [{
        "name": [{"service": "garden.v1.Garden"}, {"service": "grpc.health.v1.Health"}],
        "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.2s", "maxBackoff": "2s",
                        "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]})");
    channel_ = grpc::CreateCustomChannel(
        server_,
        credentials_ ? credentials_ : grpc::InsecureChannelCredentials(),
        channel_args);
  }
  return channel_;
}

Connection::Stub& Connection::stub() {
  if (stub_ == nullptr) stub_ = garden::v1::Garden::NewStub(channel());
  return *stub_;
}

bool ReplaceInvalidUtf8Fields(google::protobuf::Message* message) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection* r = message->GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(*message, &fields);
  bool changed = false;
  for (const FieldDescriptor* f : fields) {
    if (f->type() == FieldDescriptor::TYPE_STRING) {
      const int n = f->is_repeated() ? r->FieldSize(*message, f) : 1;
      for (int i = 0; i < n; ++i) {
        const std::string value = f->is_repeated()
                                      ? r->GetRepeatedString(*message, f, i)
                                      : r->GetString(*message, f);
        if (IsValidUtf8(value)) continue;
        changed = true;
        if (f->is_repeated()) {
          r->SetRepeatedString(message, f, i, ReplaceInvalidUtf8(value));
        } else {
          r->SetString(message, f, ReplaceInvalidUtf8(value));
        }
      }
    } else if (f->type() == FieldDescriptor::TYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(*message, f); ++i) {
          changed |= ReplaceInvalidUtf8Fields(r->MutableRepeatedMessage(message, f, i));
        }
      } else {
        changed |= ReplaceInvalidUtf8Fields(r->MutableMessage(message, f));
      }
    }
  }
  return changed;
}

std::string ModelHeader(const google::protobuf::Message& request) {
  const google::protobuf::Message* message = &request;
  // A checkpoint's model is one level down.
  for (const char* field : {"checkpoint", "model"}) {
    const google::protobuf::FieldDescriptor* f =
        message->GetDescriptor()->FindFieldByName(field);
    if (f == nullptr || f->type() != google::protobuf::FieldDescriptor::TYPE_MESSAGE ||
        f->is_repeated() || !message->GetReflection()->HasField(*message, f)) {
      continue;
    }
    message = &message->GetReflection()->GetMessage(*message, f);
  }
  const auto* ref = dynamic_cast<const garden::v1::ModelRef*>(message);
  if (ref == nullptr) return "";
  // What the server will make of it; none for a name it will refuse.
  absl::StatusOr<ModelKey> key =
      MakeModelKey(ref->suite(), ref->size(), ref->variant(), ref->run());
  if (!key.ok()) return "";
  return absl::StrCat(key->suite, "/", key->size, "/", key->variant,
                      key->run.empty() ? "" : "/", key->run);
}

std::unique_ptr<grpc::ClientContext> Connection::NewContext(
    const google::protobuf::Message* request) const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (timeout_s_ > 0) {
    context->set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::milliseconds(static_cast<int64_t>(timeout_s_ * 1000)));
  }
  if (!token_.empty()) context->AddMetadata("authorization", "Bearer " + token_);
  if (request != nullptr) {
    if (const std::string model = ModelHeader(*request); !model.empty()) {
      context->AddMetadata("x-garden-model", model);
    }
  }
  return context;
}

}  // namespace garden::client

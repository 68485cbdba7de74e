#include "server/security/token_auth.h"

#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"
#include "common/base/status.h"

namespace garden {
namespace {

constexpr char kUserProperty[] = "garden.user";
constexpr char kHowToSend[] =
    "send one as `authorization: Bearer <token>` (garden --token-file F, "
    "or GARDEN_TOKEN)";

}  // namespace

absl::StatusOr<std::shared_ptr<TokenAuth>> TokenAuth::Open(std::string path) {
  ASSIGN_OR_RETURN(TokenTable table, TokenTable::Load(path));
  return std::shared_ptr<TokenAuth>(new TokenAuth(std::move(path), std::move(table)));
}

absl::StatusOr<size_t> TokenAuth::Reload() {
  ASSIGN_OR_RETURN(TokenTable table, TokenTable::Load(path_));
  const size_t n = table.size();
  std::lock_guard lock(mu_);
  table_ = std::make_shared<const TokenTable>(std::move(table));
  return n;
}

std::shared_ptr<const TokenTable> TokenAuth::table() const {
  std::lock_guard lock(mu_);
  return table_;
}

grpc::Status TokenAuth::Refuse(std::string message) {
  refused_.fetch_add(1, std::memory_order_relaxed);
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::move(message));
}

grpc::Status TokenAuth::Process(const InputMetadata& auth_metadata,
                                grpc::AuthContext* context,
                                OutputMetadata* consumed_auth_metadata,
                                OutputMetadata* /*response_metadata*/) {
  const auto it = auth_metadata.find("authorization");
  if (it == auth_metadata.end()) {
    return Refuse(absl::StrCat("this server needs a token: ", kHowToSend));
  }
  const std::string_view value(it->second.data(), it->second.size());
  consumed_auth_metadata->emplace("authorization", std::string(value));
  constexpr std::string_view kBearer = "bearer ";
  if (value.size() <= kBearer.size() ||
      !absl::EqualsIgnoreCase(ToAbsl(value.substr(0, kBearer.size())),
                              ToAbsl(kBearer))) {
    return Refuse(absl::StrCat("the authorization header is not a bearer token: ",
                               kHowToSend));
  }
  const absl::string_view token =
      absl::StripAsciiWhitespace(ToAbsl(value.substr(kBearer.size())));
  const std::optional<std::string> user =
      table()->Find(std::string_view(token.data(), token.size()));
  if (!user) {
    return Refuse(
        "the token is not one this server accepts (ask its administrator for "
        "one: `garden token new NAME`)");
  }
  context->AddProperty(kUserProperty, *user);
  return grpc::Status::OK;
}

std::string UserOf(const grpc::ServerContext& context) {
  const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr) return "";
  const std::vector<grpc::string_ref> values =
      auth->FindPropertyValues(kUserProperty);
  if (values.empty()) return "";
  return std::string(values.front().data(), values.front().size());
}

}  // namespace garden

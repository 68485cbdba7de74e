#include "server/security/server_credentials.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"
#include "common/base/files.h"
#include "common/base/status.h"
#include "common/net/listen_address.h"

namespace garden {
namespace {

// PEM files are small; a cap keeps a wrong path (a checkpoint, say) from
// being read whole.
constexpr size_t kMaxPemBytes = 1 << 20;

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

std::unique_ptr<BIO, BioFree> Bio(const std::string& pem) {
  return std::unique_ptr<BIO, BioFree>(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

absl::StatusOr<std::string> ReadPem(std::string_view flag, const std::string& path) {
  return ReadFlagFile(flag, path, kMaxPemBytes);
}

// The first certificate of a PEM text; INVALID_ARGUMENT if there is none.
absl::StatusOr<std::unique_ptr<X509, X509Free>> FirstCertificate(
    std::string_view flag, const std::string& path, const std::string& pem) {
  auto bio = Bio(pem);
  std::unique_ptr<X509, X509Free> cert(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (cert == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        ToAbsl(flag), " ", path, ": no PEM certificate in it (\"-----BEGIN "
        "CERTIFICATE-----\")"));
  }
  return cert;
}

absl::Status CheckTls(const ListenSecurity& s, std::string* cert_pem,
                      std::string* key_pem, std::string* ca_pem) {
  ASSIGN_OR_RETURN(*cert_pem, ReadPem("--tls-cert", s.tls_cert));
  ASSIGN_OR_RETURN(*key_pem, ReadPem("--tls-key", s.tls_key));
  ASSIGN_OR_RETURN(auto cert, FirstCertificate("--tls-cert", s.tls_cert, *cert_pem));
  auto bio = Bio(*key_pem);
  std::unique_ptr<EVP_PKEY, KeyFree> key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls-key ", s.tls_key,
        ": no unencrypted PEM private key in it (\"-----BEGIN PRIVATE "
        "KEY-----\")"));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-key ", s.tls_key, " does not match the certificate in --tls-cert ",
                     s.tls_cert));
  }
  if (!s.tls_client_ca.empty()) {
    ASSIGN_OR_RETURN(*ca_pem, ReadPem("--tls-client-ca", s.tls_client_ca));
    RETURN_IF_ERROR(FirstCertificate("--tls-client-ca", s.tls_client_ca, *ca_pem).status());
  }
  return absl::OkStatus();
}

bool HasTls(const ListenSecurity& s) { return !s.tls_cert.empty() || !s.tls_key.empty(); }

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ListenSecurity& s) {
  if (s.tls_cert.empty() != s.tls_key.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert and --tls-key go together: give both, or neither");
  }
  if (!s.tls_client_ca.empty() && !HasTls(s)) {
    return absl::InvalidArgumentError(
        "--tls-client-ca checks clients' certificates over TLS: give "
        "--tls-cert and --tls-key too");
  }
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (HasTls(s)) {
    std::string cert, key, ca;
    RETURN_IF_ERROR(CheckTls(s, &cert, &key, &ca));
    grpc::SslServerCredentialsOptions options(
        ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                   : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    options.pem_root_certs = ca;
    options.pem_key_cert_pairs.push_back({key, cert});
    credentials = grpc::SslServerCredentials(options);
  } else if (IsLoopbackAddress(s.address)) {
    credentials = s.tokens == nullptr
                      ? grpc::InsecureServerCredentials()
                      : grpc::experimental::LocalServerCredentials(
                            IsUnixAddress(s.address) ? UDS : LOCAL_TCP);
  } else if (!s.insecure) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen ", s.address,
        " is reachable from other hosts: serve it over TLS (--tls-cert F "
        "--tls-key F), or give --insecure to serve plaintext anyway"));
  } else if (s.tokens != nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--auth-tokens with --insecure on ", s.address,
        ": tokens would cross the network in clear; serve over TLS "
        "(--tls-cert F --tls-key F) or listen on loopback"));
  } else {
    credentials = grpc::InsecureServerCredentials();
  }
  if (s.tokens != nullptr) credentials->SetAuthMetadataProcessor(s.tokens);
  return credentials;
}

std::string DescribeSecurity(const ListenSecurity& s) {
  std::string out = HasTls(s) ? (s.tls_client_ca.empty() ? "TLS" : "mutual TLS")
                    : IsLoopbackAddress(s.address) ? "plaintext (loopback)"
                                                   : "plaintext (--insecure)";
  absl::StrAppend(&out, s.tokens ? absl::StrCat(", tokens from ", s.tokens->path())
                                 : ", no tokens");
  return out;
}

}  // namespace garden

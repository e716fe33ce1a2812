#include "server/tls.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "absl/strings/str_cat.h"
#include "server/config_file.h"

namespace lepton::server {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* x509) const { X509_free(x509); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};

std::unique_ptr<BIO, BioFree> MemoryBio(const std::string& pem) {
  return std::unique_ptr<BIO, BioFree>(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::unique_ptr<X509, X509Free> FirstCertificate(const std::string& pem) {
  auto bio = MemoryBio(pem);
  return std::unique_ptr<X509, X509Free>(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

// Checked here because gRPC, given a bad certificate or key, only fails to
// bind the port ("cannot listen"), which does not say which file is wrong.
absl::Status CheckCertAndKey(const TlsOptions& options,
                             const std::string& cert_pem,
                             const std::string& key_pem) {
  std::unique_ptr<X509, X509Free> cert = FirstCertificate(cert_pem);
  if (cert == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls_cert: ", options.cert_file, " holds no PEM certificate"));
  }
  auto key_bio = MemoryBio(key_pem);
  std::unique_ptr<EVP_PKEY, KeyFree> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls_key: ", options.key_file,
                     " holds no unencrypted PEM private key"));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls_key: ", options.key_file, " is not the key of the certificate in ",
        options.cert_file));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateTlsOptions(const TlsOptions& options) {
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError(
        options.cert_file.empty()
            ? "tls_cert: required with --tls_key (both or neither)"
            : "tls_key: required with --tls_cert (both or neither)");
  }
  if (!options.client_ca_file.empty() && !options.enabled()) {
    return absl::InvalidArgumentError(
        "tls_client_ca: needs --tls_cert and --tls_key (mutual TLS is TLS)");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsOptions& options) {
  if (absl::Status s = ValidateTlsOptions(options); !s.ok()) return s;
  if (!options.enabled()) return grpc::InsecureServerCredentials();
  absl::StatusOr<std::string> cert =
      ReadConfigFile(options.cert_file, "--tls_cert");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key =
      ReadConfigFile(options.key_file, "--tls_key");
  if (!key.ok()) return key.status();
  if (absl::Status s = CheckCertAndKey(options, *cert, *key); !s.ok()) {
    return s;
  }
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({*std::move(key), *std::move(cert)});
  if (!options.client_ca_file.empty()) {
    absl::StatusOr<std::string> ca =
        ReadConfigFile(options.client_ca_file, "--tls_client_ca");
    if (!ca.ok()) return ca.status();
    if (FirstCertificate(*ca) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("tls_client_ca: ", options.client_ca_file,
                       " holds no PEM certificate"));
    }
    ssl.pem_root_certs = *std::move(ca);
    ssl.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  } else {
    ssl.client_certificate_request = GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace lepton::server

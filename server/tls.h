// TLS for the server's listening port: the --tls_cert, --tls_key and
// --tls_client_ca files turned into gRPC server credentials.
//
//   TlsOptions tls{.cert_file = "server.pem", .key_file = "server.key"};
//   absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> creds =
//       MakeServerCredentials(tls);
//
// No cert and no key: plaintext (grpc::InsecureServerCredentials()). Cert and
// key: TLS. With a client CA as well: mutual TLS, where the server requests
// and REQUIRES a client certificate signed by that CA and refuses the
// handshake otherwise. The files are read once, here (a certificate renewal
// needs a restart).
//
// Thread safety: free functions.
#ifndef LEPTON_SERVER_TLS_H_
#define LEPTON_SERVER_TLS_H_

#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lepton::server {

struct TlsOptions {
  // PEM: the server's certificate chain (leaf first) and its private key.
  // Both or neither.
  std::string cert_file;
  std::string key_file;
  // PEM: the CA(s) client certificates must be signed by; empty: clients
  // need no certificate. Needs cert_file and key_file.
  std::string client_ca_file;

  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
};

// INVALID_ARGUMENT (starting with the flag's name) for a combination that
// makes no sense: a cert without a key or the reverse, a client CA without
// TLS.
absl::Status ValidateTlsOptions(const TlsOptions& options);

// The credentials for the listening port. Errors name the file: one that
// cannot be read (as the OS says), or INVALID_ARGUMENT for one that holds no
// PEM certificate or key, or a key that does not match the certificate.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsOptions& options);

}  // namespace lepton::server

#endif  // LEPTON_SERVER_TLS_H_

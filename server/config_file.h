// ReadConfigFile: reads a small file the server is configured with (a TLS
// certificate or key, the --auth_tokens file) whole, with an error that
// names the file and says what the OS said, for start-up messages such as
// "cannot read --tls_key file /etc/lepton/key.pem: No such file or directory".
//
// Thread safety: a free function.
#ifndef LEPTON_SERVER_CONFIG_FILE_H_
#define LEPTON_SERVER_CONFIG_FILE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lepton::server {

// `what` names the setting ("--tls_cert"). NOT_FOUND for a missing file,
// PERMISSION_DENIED for an unreadable one, FAILED_PRECONDITION for a file
// over 1 MiB (no certificate or token file is that large; a wrong path such
// as a device should not be read forever), UNKNOWN for other errors.
absl::StatusOr<std::string> ReadConfigFile(const std::string& path,
                                           absl::string_view what);

}  // namespace lepton::server

#endif  // LEPTON_SERVER_CONFIG_FILE_H_

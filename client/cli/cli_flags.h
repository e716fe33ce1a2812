// FlagSet: the command-line flags of one lepton_client command, parsed by
// hand so that each subcommand has its own flags and its own --help (Abseil's
// flags are process-wide, one set for the whole program).
//
//   FlagSet flags("lepton_client train MODEL FILE [flags]", "Streams ...");
//   int64_t batch = 256;
//   flags.Int("batch", &batch, "examples per request");
//   absl::StatusOr<std::vector<std::string>> args = flags.Parse(argv_rest);
//   if (flags.help()) { std::fputs(flags.Usage().c_str(), stdout); ... }
//
// Syntax: --name=value or --name value; a bool flag is --name, --name=true
// or --name=false. "--" ends the flags; -h and --help ask for help. Every
// other argument is positional, and positional arguments and flags may be
// interleaved (or, with Parse(..., /*stop_at_positional=*/true), flags end at
// the first positional, for the options before a subcommand).
//
// Ownership and thread safety: the FlagSet borrows the variables it sets,
// which must outlive Parse(). One thread uses it.
#ifndef LEPTON_CLIENT_CLI_CLI_FLAGS_H_
#define LEPTON_CLIENT_CLI_CLI_FLAGS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace lepton::client {

class FlagSet {
 public:
  // `usage` is the synopsis line, `description` the paragraph under it.
  FlagSet(std::string usage, std::string description);

  // Each declares --name, setting *value; the value it holds now is the
  // default shown in Usage().
  void String(std::string name, std::string* value, std::string help);
  void Int(std::string name, int64_t* value, std::string help);
  void Double(std::string name, double* value, std::string help);
  void Bool(std::string name, bool* value, std::string help);
  // Abseil's duration syntax: "30s", "500ms", "1m30s", "inf".
  void Duration(std::string name, absl::Duration* value, std::string help);

  // Parses `args` (without the program or command name) and returns the
  // positional arguments. INVALID_ARGUMENT naming the flag for an unknown
  // flag, a missing value or one that does not parse. Stops at -h/--help.
  absl::StatusOr<std::vector<std::string>> Parse(
      const std::vector<std::string>& args, bool stop_at_positional = false);

  bool help() const { return help_; }
  // Whether --name was on the command line.
  bool IsSet(absl::string_view name) const;
  // The synopsis, description, and every flag with its help and default.
  std::string Usage() const;

 private:
  struct Flag {
    std::string name;
    std::string help;
    std::string default_text;
    bool is_bool = false;
    std::function<absl::Status(absl::string_view)> set;
    bool seen = false;
  };
  void Add(std::string name, std::string help, std::string default_text,
           bool is_bool, std::function<absl::Status(absl::string_view)> set);
  Flag* Find(absl::string_view name);

  const std::string usage_;
  const std::string description_;
  std::vector<Flag> flags_;
  bool help_ = false;
};

}  // namespace lepton::client

#endif  // LEPTON_CLIENT_CLI_CLI_FLAGS_H_

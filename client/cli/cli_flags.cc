#include "client/cli/cli_flags.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace lepton::client {

FlagSet::FlagSet(std::string usage, std::string description)
    : usage_(std::move(usage)), description_(std::move(description)) {}

void FlagSet::Add(std::string name, std::string help, std::string default_text,
                  bool is_bool,
                  std::function<absl::Status(absl::string_view)> set) {
  flags_.push_back({std::move(name), std::move(help), std::move(default_text),
                    is_bool, std::move(set)});
}

void FlagSet::String(std::string name, std::string* value, std::string help) {
  Add(std::move(name), std::move(help),
      value->empty() ? "" : absl::StrCat("\"", *value, "\""), false,
      [value](absl::string_view text) {
        *value = std::string(text);
        return absl::OkStatus();
      });
}

void FlagSet::Int(std::string name, int64_t* value, std::string help) {
  Add(std::move(name), std::move(help), absl::StrCat(*value), false,
      [value](absl::string_view text) {
        if (!absl::SimpleAtoi(text, value)) {
          return absl::InvalidArgumentError(
              absl::StrCat("\"", text, "\" is not an integer"));
        }
        return absl::OkStatus();
      });
}

void FlagSet::Double(std::string name, double* value, std::string help) {
  Add(std::move(name), std::move(help), absl::StrCat(*value), false,
      [value](absl::string_view text) {
        if (!absl::SimpleAtod(text, value)) {
          return absl::InvalidArgumentError(
              absl::StrCat("\"", text, "\" is not a number"));
        }
        return absl::OkStatus();
      });
}

void FlagSet::Bool(std::string name, bool* value, std::string help) {
  Add(std::move(name), std::move(help), *value ? "true" : "false", true,
      [value](absl::string_view text) {
        if (!absl::SimpleAtob(text, value)) {
          return absl::InvalidArgumentError(
              absl::StrCat("\"", text, "\" is not true or false"));
        }
        return absl::OkStatus();
      });
}

void FlagSet::Duration(std::string name, absl::Duration* value,
                       std::string help) {
  Add(std::move(name), std::move(help), absl::FormatDuration(*value), false,
      [value](absl::string_view text) {
        if (!absl::ParseDuration(text, value)) {
          return absl::InvalidArgumentError(absl::StrCat(
              "\"", text, "\" is not a duration (e.g. 30s, 500ms, inf)"));
        }
        return absl::OkStatus();
      });
}

FlagSet::Flag* FlagSet::Find(absl::string_view name) {
  for (Flag& flag : flags_) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

bool FlagSet::IsSet(absl::string_view name) const {
  for (const Flag& flag : flags_) {
    if (flag.name == name) return flag.seen;
  }
  return false;
}

absl::StatusOr<std::vector<std::string>> FlagSet::Parse(
    const std::vector<std::string>& args, bool stop_at_positional) {
  std::vector<std::string> positional;
  bool flags_ended = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const absl::string_view arg = args[i];
    const bool is_flag = !flags_ended && arg.size() > 1 && arg[0] == '-';
    if (!is_flag) {
      if (stop_at_positional) {
        positional.insert(positional.end(), args.begin() + i, args.end());
        return positional;
      }
      positional.emplace_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_ended = true;
      continue;
    }
    if (arg == "-h" || arg == "--help" || arg == "-help") {
      help_ = true;
      return positional;
    }
    absl::string_view name = arg.substr(arg[1] == '-' ? 2 : 1);
    absl::string_view value;
    bool has_value = false;
    if (const size_t eq = name.find('='); eq != absl::string_view::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    Flag* flag = Find(name);
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    if (!has_value) {
      if (flag->is_bool) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " needs a value"));
      }
    }
    if (absl::Status s = flag->set(value); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, ": ", s.message()));
    }
    flag->seen = true;
  }
  return positional;
}

std::string FlagSet::Usage() const {
  std::string out = absl::StrCat("Usage: ", usage_, "\n");
  if (!description_.empty()) absl::StrAppend(&out, "\n", description_, "\n");
  if (!flags_.empty()) absl::StrAppend(&out, "\nFlags:\n");
  for (const Flag& flag : flags_) {
    absl::StrAppend(&out, "  --", flag.name, flag.is_bool ? "" : "=...",
                    "\n      ", flag.help);
    if (!flag.default_text.empty()) {
      absl::StrAppend(&out, " (default ", flag.default_text, ")");
    }
    absl::StrAppend(&out, "\n");
  }
  return out;
}

}  // namespace lepton::client

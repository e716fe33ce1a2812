// create, list, info, delete and health: the commands about models and the
// server rather than data.
#include <algorithm>
#include <cstdio>
#include <limits>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "client/cli/commands.h"

namespace lepton::client {
namespace {

std::string FormatTimestamp(const google::protobuf::Timestamp& t) {
  const absl::Time time =
      absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
  return absl::FormatTime(absl::RFC3339_full, time, absl::UTCTimeZone());
}

// *value as an int32, or a usage error naming --flag.
bool ToInt32(absl::string_view command, absl::string_view flag, int64_t value,
             int32_t* out) {
  if (value < 0 || value > std::numeric_limits<int32_t>::max()) {
    PrintError(command,
               absl::StrCat("--", flag, ": ", value, " is out of range"));
    return false;
  }
  *out = static_cast<int32_t>(value);
  return true;
}

}  // namespace

void PrintModelInfo(const v1::ModelInfo& info) {
  const v1::ModelSpec& spec = info.spec();
  const v1::Optimizer& optimizer = spec.optimizer();
  std::string out;
  auto line = [&out](absl::string_view key, const auto& value) {
    absl::StrAppend(&out, key, ": ", value, "\n");
  };
  line("name", info.name());
  line("type", v1::ModelType_Name(spec.type()));
  line("num_features", spec.num_features());
  line("num_classes", spec.num_classes());
  line("optimizer", v1::OptimizerKind_Name(optimizer.kind()));
  line("learning_rate", optimizer.learning_rate());
  line("power_t", optimizer.power_t());
  line("epsilon", optimizer.epsilon());
  line("initial_accumulator", optimizer.initial_accumulator());
  line("beta", optimizer.beta());
  line("l1", optimizer.l1());
  line("beta1", optimizer.beta1());
  line("beta2", optimizer.beta2());
  line("l2", spec.l2());
  line("minibatch_size", spec.minibatch_size());
  line("max_gradient_norm", spec.max_gradient_norm());
  line("max_step", spec.max_step());
  // Named features: shown when used, so that other models print as before.
  if (spec.hash_seed() != 0) line("hash_seed", spec.hash_seed());
  if (spec.interactions_size() > 0) {
    line("interactions", absl::StrJoin(spec.interactions(), ","));
  }
  line("version", info.version());
  line("retained_versions", absl::StrJoin(info.retained_versions(), ","));
  line("checkpointed_versions",
       absl::StrJoin(info.checkpointed_versions(), ","));
  line("examples_seen", info.examples_seen());
  line("weight_seen", info.weight_seen());
  line("progressive_loss", absl::StrFormat("%.6f", info.progressive_loss()));
  line("progressive_accuracy",
       absl::StrFormat("%.6f", info.progressive_accuracy()));
  line("updates", info.updates());
  line("steps", info.steps());
  line("memory_bytes", info.memory_bytes());
  line("nonzero_weights", info.nonzero_weights());
  line("create_time", FormatTimestamp(info.create_time()));
  line("update_time", FormatTimestamp(info.update_time()));
  // Drift detection and the guardrail come last, so that scripts reading
  // the lines above by position still work.
  const v1::DriftConfig& drift = spec.drift();
  line("drift_detector", v1::DriftDetectorKind_Name(drift.detector()));
  line("drift_policy", v1::DriftPolicy_Name(drift.policy()));
  // A policy's own numbers only under it: the others do nothing.
  if (drift.policy() == v1::BOOST) {
    line("boost_factor", drift.boost_factor());
    line("boost_examples", drift.boost_examples());
  }
  if (drift.policy() == v1::CHALLENGER) {
    line("challenger_window", drift.challenger_window());
    line("challenger_max_examples", drift.challenger_max_examples());
  }
  const v1::GuardrailConfig& guardrail = spec.guardrail();
  line("guardrail", v1::GuardrailPolicy_Name(guardrail.policy()));
  line("guardrail_tolerance", guardrail.tolerance());
  line("holdout_capacity", guardrail.holdout_capacity());
  line("min_holdout", guardrail.min_holdout());
  line("quarantine_capacity", guardrail.quarantine_capacity());
  line("recheck_holdout", guardrail.recheck_holdout());
  const v1::DriftStatus& d = info.drift();
  line("drift_state", v1::DriftState_Name(d.state()));
  line("drifts", d.drifts());
  line("change_example", d.change_example());
  line("mean_loss_before", absl::StrFormat("%.6f", d.mean_loss_before()));
  line("mean_loss_after", absl::StrFormat("%.6f", d.mean_loss_after()));
  line("boost_remaining", d.boost_remaining());
  line("challenger_active", d.challenger_active() ? "true" : "false");
  line("challenger_started_at", d.challenger_started_at());
  line("challenger_examples", d.challenger_examples());
  line("promotions", d.promotions());
  const v1::ValidationStatus& v = info.validation();
  line("holdout_examples", v.holdout_examples());
  line("validation_loss", absl::StrFormat("%.6f", v.validation_loss()));
  line("validation_accuracy", absl::StrFormat("%.6f", v.validation_accuracy()));
  line("refused_updates", v.refused_updates());
  line("quarantine_held", v.quarantine_held());
  line("quarantined_updates", v.quarantined_updates());
  line("quarantine_released", v.quarantine_released());
  line("quarantine_dropped", v.quarantine_dropped());
  if (!info.update_log_error().empty()) {
    line("update_log_error", info.update_log_error());
  }
  // A node of a cluster: where it stands in the model's log.
  if (!info.log_position().empty()) {
    line("log_position", info.log_position());
    line("lag_entries", info.lag_entries());
    line("lag_seconds", absl::StrFormat("%.3f", info.lag_seconds()));
  }
  std::fputs(out.c_str(), stdout);
}

int RunCreate(const CommandArgs& args, const GlobalOptions& defaults) {
  constexpr char kCommand[] = "create";
  GlobalOptions global = defaults;
  std::string type;
  std::string optimizer = "adagrad";
  int64_t num_features = 0;
  int64_t num_classes = 0;
  int64_t minibatch_size = 0;
  double learning_rate = 0;
  double l2 = 0;
  double power_t = 0;
  double epsilon = 0;
  double initial_accumulator = 0;
  double beta = 0;
  double l1 = 0;
  double beta1 = 0;
  double beta2 = 0;
  double max_gradient_norm = 0;
  double max_step = 0;
  std::string interactions;
  int64_t hash_seed = 0;
  // Drift and guardrail: an unset flag leaves its wire field unset, so that
  // the server's defaults apply.
  std::string drift_detector;
  std::string drift_policy;
  double boost_factor = 0;
  int64_t boost_examples = 0;
  int64_t challenger_window = 0;
  int64_t challenger_max_examples = 0;
  std::string guardrail;
  double guardrail_tolerance = 0;
  int64_t holdout_capacity = 0;
  int64_t min_holdout = 0;
  int64_t quarantine_capacity = 0;
  int64_t recheck_holdout = 0;
  FlagSet flags(
      "lepton_client create MODEL --type=TYPE --num_features=D [flags]",
      "Creates the model MODEL at version 1, all weights zero, and prints it "
      "as `info` does.\nNumbers left at 0 take the server's defaults, which "
      "`info` shows.");
  flags.String("type", &type, "linear, logistic or softmax (required)");
  flags.Int("num_features", &num_features,
            "D: the length of a dense instance (required)");
  flags.Int("num_classes", &num_classes, "K: softmax only, 2 or more");
  flags.String("optimizer", &optimizer, "adagrad, sgd, ftrl or adam");
  flags.Double("learning_rate", &learning_rate,
               "base learning rate; 0: the default (0.05)");
  flags.Double("l2", &l2, "L2 strength, >= 0");
  flags.Int("minibatch_size", &minibatch_size,
            "examples per optimizer step; 0: the default (16)");
  flags.Double("power_t", &power_t, "sgd: decay exponent of the rate");
  flags.Double("epsilon", &epsilon, "adagrad: 0: the default (1e-6)");
  flags.Double("initial_accumulator", &initial_accumulator,
               "adagrad: the accumulators' starting value");
  flags.Double("beta", &beta, "ftrl: > 0; 0: the default (1)");
  flags.Double("l1", &l1, "ftrl: L1 strength, >= 0 (exact zeros)");
  flags.Double("beta1", &beta1, "adam: in [0, 1); 0: the default (0.9)");
  flags.Double("beta2", &beta2, "adam: in [0, 1); 0: the default (0.999)");
  flags.Double("max_gradient_norm", &max_gradient_norm,
               "clip each step's gradient to this L2 norm; 0: off");
  flags.Double("max_step", &max_step,
               "no weight moves more than this per step; 0: off");
  flags.String("interactions", &interactions,
               "named features: comma-separated pairs of namespace initials "
               "to cross, e.g. ua,uu");
  flags.Int("hash_seed", &hash_seed,
            "named features: seed of the name hash, 0 .. 4294967295");
  flags.String("drift_detector", &drift_detector,
               "adwin, page_hinkley or none; unset: adwin");
  flags.String("drift_policy", &drift_policy,
               "on a drift: alert (report it), boost (raise the learning "
               "rate for a while) or challenger (train a fresh model in "
               "shadow, promote it if better); unset: challenger");
  flags.Double("boost_factor", &boost_factor,
               "boost: learning-rate multiplier, in [1, 1000]; 0: the "
               "server's default");
  flags.Int("boost_examples", &boost_examples,
            "boost: examples learned at the boosted rate; 0: the server's "
            "default");
  flags.Int("challenger_window", &challenger_window,
            "challenger: examples over which the two models' losses are "
            "compared; 0: the server's default");
  flags.Int("challenger_max_examples", &challenger_max_examples,
            "challenger: dropped if not better after this many examples; 0: "
            "the server's default");
  flags.String("guardrail", &guardrail,
               "off (holdout examples are only scored), reject (refuse an "
               "update that raises the validation loss) or quarantine (hold "
               "it back and check it again once newer holdout examples have "
               "arrived); unset: off");
  flags.Double("guardrail_tolerance", &guardrail_tolerance,
               "reject: relative rise of the validation loss tolerated; "
               "unset: 0.02");
  flags.Int("holdout_capacity", &holdout_capacity,
            "holdout examples kept, the newest; 0 refuses them; unset: "
            "10000");
  flags.Int("min_holdout", &min_holdout,
            "reject: holdout examples needed before the check runs; 0: the "
            "server's default (50)");
  flags.Int("quarantine_capacity", &quarantine_capacity,
            "quarantine: updates held back at once; 0: the server's default "
            "(8)");
  flags.Int("recheck_holdout", &recheck_holdout,
            "quarantine: newer holdout examples needed before a held update "
            "is checked again; 0: the server's default (50)");
  AddGlobalFlags(&flags, &global);
  int exit_code = kExitOk;
  std::optional<CommandArgs> positional =
      ParseCommandArgs(kCommand, &flags, args, 1, 1, &exit_code);
  if (!positional) return exit_code;

  if (hash_seed < 0 || hash_seed > std::numeric_limits<uint32_t>::max()) {
    PrintError(kCommand,
               absl::StrCat("--hash_seed: ", hash_seed, " is out of range"));
    return kExitUsage;
  }
  if (type.empty()) {
    PrintError(kCommand, "--type is required (linear, logistic or softmax)");
    return kExitUsage;
  }
  v1::ModelSpec spec;
  absl::StatusOr<v1::ModelType> model_type = ParseModelType(type);
  absl::StatusOr<v1::OptimizerKind> kind = ParseOptimizerKind(optimizer);
  if (!model_type.ok() || !kind.ok()) {
    PrintError(kCommand, !model_type.ok() ? model_type.status().message()
                                          : kind.status().message());
    return kExitUsage;
  }
  int32_t classes = 0;
  int32_t minibatch = 0;
  int32_t window = 0;
  int32_t capacity = 0;
  int32_t holdout_minimum = 0;
  int32_t held_capacity = 0;
  int32_t recheck = 0;
  if (!ToInt32(kCommand, "num_classes", num_classes, &classes) ||
      !ToInt32(kCommand, "minibatch_size", minibatch_size, &minibatch) ||
      !ToInt32(kCommand, "challenger_window", challenger_window, &window) ||
      !ToInt32(kCommand, "holdout_capacity", holdout_capacity, &capacity) ||
      !ToInt32(kCommand, "min_holdout", min_holdout, &holdout_minimum) ||
      !ToInt32(kCommand, "quarantine_capacity", quarantine_capacity,
               &held_capacity) ||
      !ToInt32(kCommand, "recheck_holdout", recheck_holdout, &recheck)) {
    return kExitUsage;
  }
  // The enum flags, parsed only when given (unset: the server's default).
  std::optional<v1::DriftDetectorKind> detector;
  std::optional<v1::DriftPolicy> policy;
  std::optional<v1::GuardrailPolicy> guardrail_policy;
  if (flags.IsSet("drift_detector")) {
    absl::StatusOr<v1::DriftDetectorKind> d =
        ParseDriftDetector(drift_detector);
    if (!d.ok()) {
      PrintError(kCommand,
                 absl::StrCat("--drift_detector: ", d.status().message()));
      return kExitUsage;
    }
    detector = *d;
  }
  if (flags.IsSet("drift_policy")) {
    absl::StatusOr<v1::DriftPolicy> p = ParseDriftPolicy(drift_policy);
    if (!p.ok()) {
      PrintError(kCommand,
                 absl::StrCat("--drift_policy: ", p.status().message()));
      return kExitUsage;
    }
    policy = *p;
  }
  if (flags.IsSet("guardrail")) {
    absl::StatusOr<v1::GuardrailPolicy> g = ParseGuardrailPolicy(guardrail);
    if (!g.ok()) {
      PrintError(kCommand, absl::StrCat("--guardrail: ", g.status().message()));
      return kExitUsage;
    }
    guardrail_policy = *g;
  }
  spec.set_type(*model_type);
  spec.set_num_features(num_features);
  spec.set_num_classes(classes);
  spec.set_l2(static_cast<float>(l2));
  spec.set_minibatch_size(minibatch);
  v1::Optimizer* o = spec.mutable_optimizer();
  o->set_kind(*kind);
  o->set_learning_rate(static_cast<float>(learning_rate));
  o->set_power_t(static_cast<float>(power_t));
  o->set_epsilon(static_cast<float>(epsilon));
  o->set_initial_accumulator(static_cast<float>(initial_accumulator));
  o->set_beta(static_cast<float>(beta));
  o->set_l1(static_cast<float>(l1));
  o->set_beta1(static_cast<float>(beta1));
  o->set_beta2(static_cast<float>(beta2));
  spec.set_max_gradient_norm(static_cast<float>(max_gradient_norm));
  spec.set_max_step(static_cast<float>(max_step));
  spec.set_hash_seed(static_cast<uint32_t>(hash_seed));
  // Pairs are checked by the server ("spec.interactions[1]: ...").
  for (absl::string_view pair :
       absl::StrSplit(interactions, ',', absl::SkipEmpty())) {
    spec.add_interactions(std::string(pair));
  }

  // The submessages are only created for flags given: a create without
  // them sends the spec it sent before they existed. Numbers are checked by
  // the server ("spec.drift.boost_factor: ...").
  if (detector || policy || flags.IsSet("boost_factor") ||
      flags.IsSet("boost_examples") || flags.IsSet("challenger_window") ||
      flags.IsSet("challenger_max_examples")) {
    v1::DriftConfig* d = spec.mutable_drift();
    if (detector) d->set_detector(*detector);
    if (policy) d->set_policy(*policy);
    d->set_boost_factor(static_cast<float>(boost_factor));
    d->set_boost_examples(boost_examples);
    d->set_challenger_window(window);
    d->set_challenger_max_examples(challenger_max_examples);
  }
  if (guardrail_policy || flags.IsSet("guardrail_tolerance") ||
      flags.IsSet("holdout_capacity") || flags.IsSet("min_holdout") ||
      held_capacity != 0 || recheck != 0) {
    v1::GuardrailConfig* g = spec.mutable_guardrail();
    if (guardrail_policy) g->set_policy(*guardrail_policy);
    // Optional on the wire: 0 is a value here (no tolerance, no holdout).
    if (flags.IsSet("guardrail_tolerance")) {
      g->set_tolerance(static_cast<float>(guardrail_tolerance));
    }
    if (flags.IsSet("holdout_capacity")) g->set_holdout_capacity(capacity);
    g->set_min_holdout(holdout_minimum);
    if (held_capacity != 0) g->set_quarantine_capacity(held_capacity);
    if (recheck != 0) g->set_recheck_holdout(recheck);
  }

  std::unique_ptr<Client> client = MakeClient(kCommand, global, &exit_code);
  if (client == nullptr) return exit_code;
  absl::StatusOr<v1::ModelInfo> info =
      client->CreateModel((*positional)[0], spec);
  if (!info.ok()) {
    PrintError(kCommand, DescribeRpcError(info.status(), global));
    return kExitFailure;
  }
  PrintModelInfo(*info);
  return kExitOk;
}

int RunList(const CommandArgs& args, const GlobalOptions& defaults) {
  constexpr char kCommand[] = "list";
  GlobalOptions global = defaults;
  FlagSet flags("lepton_client list",
                "Lists every model, by name, one per line under a header: "
                "name, type, num_features, num_classes, version, "
                "examples_seen.");
  AddGlobalFlags(&flags, &global);
  int exit_code = kExitOk;
  if (!ParseCommandArgs(kCommand, &flags, args, 0, 0, &exit_code)) {
    return exit_code;
  }
  std::unique_ptr<Client> client = MakeClient(kCommand, global, &exit_code);
  if (client == nullptr) return exit_code;
  absl::StatusOr<std::vector<v1::ModelInfo>> models = client->ListModels();
  if (!models.ok()) {
    PrintError(kCommand, DescribeRpcError(models.status(), global));
    return kExitFailure;
  }
  // Names are [A-Za-z0-9._-]: columns separated by spaces stay parseable.
  int width = 4;
  for (const v1::ModelInfo& m : *models) {
    width = std::max(width, static_cast<int>(m.name().size()));
  }
  std::string out = absl::StrFormat("%-*s %-19s %12s %11s %10s %13s\n", width,
                                    "name", "type", "num_features",
                                    "num_classes", "version", "examples_seen");
  for (const v1::ModelInfo& m : *models) {
    absl::StrAppendFormat(&out, "%-*s %-19s %12d %11d %10d %13d\n", width,
                          m.name(), v1::ModelType_Name(m.spec().type()),
                          m.spec().num_features(), m.spec().num_classes(),
                          m.version(), m.examples_seen());
  }
  std::fputs(out.c_str(), stdout);
  return kExitOk;
}

int RunInfo(const CommandArgs& args, const GlobalOptions& defaults) {
  constexpr char kCommand[] = "info";
  GlobalOptions global = defaults;
  FlagSet flags("lepton_client info MODEL",
                "Prints MODEL's spec (every default filled in), its newest "
                "version, the versions that can be pinned, its running "
                "progressive metrics, then its drift detection (detector, "
                "policy, state, drifts, challenger, promotions) and its "
                "holdout set (holdout_examples, validation_loss and "
                "accuracy, refused_updates), as key: value lines.");
  AddGlobalFlags(&flags, &global);
  int exit_code = kExitOk;
  std::optional<CommandArgs> positional =
      ParseCommandArgs(kCommand, &flags, args, 1, 1, &exit_code);
  if (!positional) return exit_code;
  v1::ModelInfo info;
  if (ConnectToModel(kCommand, global, (*positional)[0], &info, &exit_code) ==
      nullptr) {
    return exit_code;
  }
  PrintModelInfo(info);
  return kExitOk;
}

int RunDelete(const CommandArgs& args, const GlobalOptions& defaults) {
  constexpr char kCommand[] = "delete";
  GlobalOptions global = defaults;
  FlagSet flags("lepton_client delete MODEL",
                "Deletes MODEL. Calls already running on it finish normally.");
  AddGlobalFlags(&flags, &global);
  int exit_code = kExitOk;
  std::optional<CommandArgs> positional =
      ParseCommandArgs(kCommand, &flags, args, 1, 1, &exit_code);
  if (!positional) return exit_code;
  std::unique_ptr<Client> client = MakeClient(kCommand, global, &exit_code);
  if (client == nullptr) return exit_code;
  if (absl::Status s = client->DeleteModel((*positional)[0]); !s.ok()) {
    PrintError(kCommand, DescribeRpcError(s, global));
    return kExitFailure;
  }
  std::printf("deleted: %s\n", (*positional)[0].c_str());
  return kExitOk;
}

int RunHealth(const CommandArgs& args, const GlobalOptions& defaults) {
  constexpr char kCommand[] = "health";
  GlobalOptions global = defaults;
  std::string service;
  FlagSet flags(
      "lepton_client health [--service=NAME]",
      "Asks the server's grpc.health.v1 service and prints the answer "
      "(SERVING, NOT_SERVING, ...).\nExit status 0 if and only if SERVING "
      "(for scripts and the Docker HEALTHCHECK).");
  flags.String("service", &service,
               "the service to ask about; empty: the server as a whole "
               "(lepton.v1.ModelService is the other one it knows)");
  AddGlobalFlags(&flags, &global);
  int exit_code = kExitOk;
  if (!ParseCommandArgs(kCommand, &flags, args, 0, 0, &exit_code)) {
    return exit_code;
  }
  std::unique_ptr<Client> client = MakeClient(kCommand, global, &exit_code);
  if (client == nullptr) return exit_code;
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> status =
      client->Health(service);
  if (!status.ok()) {
    PrintError(kCommand, DescribeRpcError(status.status(), global));
    return kExitFailure;
  }
  std::printf("%s\n",
              grpc::health::v1::HealthCheckResponse::ServingStatus_Name(*status)
                  .c_str());
  return *status == grpc::health::v1::HealthCheckResponse::SERVING
             ? kExitOk
             : kExitFailure;
}

}  // namespace lepton::client

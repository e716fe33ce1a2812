#include "server/log_events.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "server/log.h"

namespace lepton::server {
namespace {

void LogEvent(const std::string& model, const ModelEvent& event) {
  LogLevel level = LogLevel::kInfo;
  switch (event.kind) {
    case ModelEvent::Kind::kVersion:
    case ModelEvent::Kind::kDeleted:
      return;  // the calls' own lines say these
    case ModelEvent::Kind::kDrift:
    case ModelEvent::Kind::kUpdateRefused:
    case ModelEvent::Kind::kUpdateQuarantined:
    case ModelEvent::Kind::kQuarantineDropped:
      level = LogLevel::kWarn;
      break;
    default:
      break;
  }
  if (!LogEnabled(level)) return;
  // `detail` is the core's description (numbers, no example data).
  Log(level, absl::AsciiStrToLower(ModelEventKindName(event.kind)),
      {{"model", model},
       {"version", event.version},
       {"example", event.example},
       {"detail", event.detail}});
}

}  // namespace

void ModelEventLogger::Follow(const std::string& name) {
  MutexLock lock(&mu_);
  if (followed_.contains(name)) return;
  absl::StatusOr<std::unique_ptr<EventSubscription>> subscription =
      store_->Watch(name, [name](const ModelEvent& e) { LogEvent(name, e); });
  if (!subscription.ok()) return;
  followed_.emplace(name, *std::move(subscription));
}

void ModelEventLogger::Unfollow(const std::string& name) {
  std::unique_ptr<EventSubscription> doomed;  // released outside mu_
  MutexLock lock(&mu_);
  auto it = followed_.find(name);
  if (it == followed_.end()) return;
  doomed = std::move(it->second);
  followed_.erase(it);
}

}  // namespace lepton::server

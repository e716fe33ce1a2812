// ReplicatedStore's snapshots in the log, checkpoints on disk, the snapshot
// lease and the weight digests (replicated_store.h), all on the follower
// thread.
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/replication/replicated_store.h"
#include "core/storage/model_state.h"
#include "core/util/crc32c.h"

namespace lepton {
namespace {

// The digest of a version: its number and its parameters, bit for bit.
std::string Digest(const ModelState& state) {
  const uint32_t crc =
      Crc32cExtend(Crc32cExtend(0, &state.version, sizeof(state.version)),
                   state.params.data(), state.params.size() * sizeof(float));
  return absl::StrFormat("%08x", crc);
}

}  // namespace

void ReplicatedStore::CheckDigest(const std::string& stream,
                                  const std::string& id,
                                  const std::string& name,
                                  absl::string_view model_state) {
  absl::StatusOr<ModelState> state = DecodeModelState(model_state);
  if (!state.ok()) return;
  const std::string mine = Digest(*state);
  absl::StatusOr<std::string> first = log_->PutIfAbsent(
      absl::StrCat("digest:", stream, ":", id), mine, options_.digest_ttl);
  if (!first.ok() || *first == mine) return;
  MutexLock lock(&mu_);
  if (state_ == State::kDiverged) return;
  SetStateLocked(State::kDiverged);
  diverged_ = absl::StrCat("this node's model \"", name,
                           "\" differs from the cluster's after log "
                           "entry ",
                           id, " (version and weights digest ", mine,
                           ", the cluster's ", *first,
                           "): the node stopped serving; restart it");
}

std::string ReplicatedStore::CheckpointPath(const std::string& stream) const {
  return JoinPath(options_.checkpoint_dir, absl::StrCat(stream, ".snapshot"));
}

std::optional<ModelSnapshot> ReplicatedStore::LoadSnapshot(
    const std::string& stream) {
  std::optional<ModelSnapshot> best;
  const auto consider = [&best](absl::string_view bytes) {
    absl::StatusOr<ModelSnapshot> s = DecodeModelSnapshot(bytes);
    if (!s.ok()) return;  // a torn or foreign file: the other one, or none
    const std::optional<LogPosition> at = LogPosition::Parse(s->position);
    if (!at.has_value()) return;
    if (!best.has_value() || *LogPosition::Parse(best->position) < *at) {
      best = *std::move(s);
    }
  };
  if (options_.snapshot_every > 0) {
    absl::StatusOr<std::optional<std::string>> in_log =
        log_->Get(absl::StrCat("snapshot:", stream));
    if (in_log.ok() && in_log->has_value()) consider(**in_log);
  }
  if (!options_.checkpoint_dir.empty()) {
    // A model state in a little framing (its log position and counts).
    absl::StatusOr<std::string> on_disk = options_.fs->ReadFile(
        CheckpointPath(stream), kMaxModelStateBytes + (uint64_t{1} << 20));
    if (on_disk.ok()) consider(*on_disk);
  }
  return best;
}

void ReplicatedStore::SaveSnapshots(const std::string& stream,
                                    const std::string& id, uint64_t entries,
                                    std::string model_state, bool to_log,
                                    bool to_disk) {
  ModelSnapshot snapshot;
  snapshot.position = id;
  snapshot.entries = entries;
  snapshot.model_state = std::move(model_state);
  const std::string bytes = EncodeModelSnapshot(snapshot);
  if (to_disk) {
    WriteFileAtomically(*options_.fs, CheckpointPath(stream), bytes)
        .IgnoreError();  // the previous checkpoint stays, or none
  }
  if (!to_log) return;
  // The stream is trimmed below the previous snapshot, not this one, so
  // that a node lagging behind this one still finds its next entries.
  const std::string at_key = absl::StrCat("snapshot-at:", stream);
  absl::StatusOr<std::optional<std::string>> previous = log_->Get(at_key);
  if (!log_->Put(absl::StrCat("snapshot:", stream), bytes,
                 absl::InfiniteDuration())
           .ok() ||
      !log_->Put(at_key, id, absl::InfiniteDuration()).ok()) {
    return;
  }
  if (previous.ok() && previous->has_value()) {
    log_->TrimBefore(stream, **previous).IgnoreError();
  }
}

void ReplicatedStore::DropSnapshots(const std::string& stream) {
  if (!options_.checkpoint_dir.empty()) {
    options_.fs->RemoveFile(CheckpointPath(stream)).IgnoreError();
  }
  if (!holds_lease_) return;
  for (const std::string& key :
       {absl::StrCat("snapshot:", stream), absl::StrCat("snapshot-at:", stream),
        stream}) {
    log_->Remove(key).IgnoreError();
  }
}

void ReplicatedStore::DropOtherCheckpoints(
    const std::vector<std::string>& streams) {
  if (options_.checkpoint_dir.empty()) return;
  absl::flat_hash_set<std::string> kept;
  for (const std::string& stream : streams) {
    kept.insert(absl::StrCat(stream, ".snapshot"));
  }
  absl::StatusOr<std::vector<std::string>> files =
      options_.fs->ListDirectory(options_.checkpoint_dir);
  if (!files.ok()) return;
  for (const std::string& file : *files) {
    if (absl::EndsWith(file, ".snapshot") && !kept.contains(file)) {
      options_.fs->RemoveFile(JoinPath(options_.checkpoint_dir, file))
          .IgnoreError();
    }
  }
}

void ReplicatedStore::RenewLease() {
  if (options_.snapshot_every <= 0) return;
  const absl::Time now = absl::Now();
  if (now - lease_renewed_at_ < options_.lease_ttl / 3) return;
  absl::StatusOr<bool> held =
      log_->Lease("snapshot-lease", node_id_, options_.lease_ttl);
  holds_lease_ = held.ok() && *held;
  if (held.ok()) lease_renewed_at_ = now;
}

}  // namespace lepton

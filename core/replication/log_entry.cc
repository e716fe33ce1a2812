#include "core/replication/log_entry.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/learning/example_codec.h"
#include "core/storage/model_state.h"
#include "core/util/byte_io.h"
#include "core/util/crc32c.h"

namespace lepton {
namespace {

constexpr absl::string_view kMagic = "LEPTNENT";
constexpr absl::string_view kSnapshotMagic = "LEPTNSNP";
constexpr absl::string_view kPredictionMagic = "LEPTNPRD";
constexpr size_t kChecksumBytes = 4;

absl::Status Corrupt(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("log entry: ", what));
}

// The bytes between `magic` + format version and the checksum, if `bytes`
// has both intact; `what` names the kind in errors.
absl::StatusOr<absl::string_view> Body(absl::string_view bytes,
                                       absl::string_view magic,
                                       absl::string_view what) {
  const auto corrupt = [what](absl::string_view why) {
    return absl::DataLossError(absl::StrCat(what, ": ", why));
  };
  if (bytes.size() < magic.size() + 4 + kChecksumBytes ||
      bytes.substr(0, magic.size()) != magic) {
    return corrupt("bad magic or too short");
  }
  const size_t body_end = bytes.size() - kChecksumBytes;
  uint32_t checksum = 0;
  std::memcpy(&checksum, bytes.data() + body_end, kChecksumBytes);
  if (checksum != Crc32c(bytes.substr(0, body_end))) {
    return corrupt("checksum mismatch");
  }
  uint32_t format_version = 0;
  std::memcpy(&format_version, bytes.data() + magic.size(), 4);
  if (format_version != kLogEntryFormatVersion) {
    return corrupt(absl::StrCat("format version ", format_version,
                                "; this server reads ",
                                kLogEntryFormatVersion));
  }
  return bytes.substr(magic.size() + 4, body_end - magic.size() - 4);
}

}  // namespace

std::string EncodeModelSnapshot(const ModelSnapshot& snapshot) {
  std::string out;
  out.reserve(64 + snapshot.model_state.size());
  ByteWriter w(&out);
  w.Raw(kSnapshotMagic.data(), kSnapshotMagic.size());
  w.U32(kLogEntryFormatVersion);
  w.Bytes(snapshot.position);
  w.U64(snapshot.entries);
  w.Bytes(snapshot.model_state);
  w.U32(Crc32c(out));
  return out;
}

absl::StatusOr<ModelSnapshot> DecodeModelSnapshot(absl::string_view bytes) {
  absl::StatusOr<absl::string_view> body =
      Body(bytes, kSnapshotMagic, "snapshot");
  if (!body.ok()) return body.status();
  ByteReader r(*body);
  ModelSnapshot snapshot;
  absl::string_view position, state;
  if (!r.Bytes(&position) || !r.U64(&snapshot.entries) || !r.Bytes(&state) ||
      r.remaining() > 0) {
    return absl::DataLossError("snapshot: truncated or trailing bytes");
  }
  snapshot.position = std::string(position);
  snapshot.model_state = std::string(state);
  return snapshot;
}

std::string EncodeSharedPrediction(const RememberedPrediction& prediction,
                                   absl::Time expires) {
  std::string out;
  ByteWriter w(&out);
  w.Raw(kPredictionMagic.data(), kPredictionMagic.size());
  w.U32(kLogEntryFormatVersion);
  w.I64(absl::ToUnixMicros(expires));
  w.U64(prediction.version);
  ExampleView features;
  features.features = prediction.features.view();
  features.label = 0;
  features.weight = 0;
  EncodeExample(features, w);
  w.U32(static_cast<uint32_t>(prediction.outputs.size()));
  w.Floats(prediction.outputs);
  w.U32(Crc32c(out));
  return out;
}

absl::StatusOr<RememberedPrediction> DecodeSharedPrediction(
    absl::string_view bytes, absl::Time* expires) {
  absl::StatusOr<absl::string_view> body =
      Body(bytes, kPredictionMagic, "prediction");
  if (!body.ok()) return body.status();
  ByteReader r(*body);
  int64_t micros = 0;
  RememberedPrediction p;
  Example features;
  uint32_t n = 0;
  if (!r.I64(&micros) || !r.U64(&p.version) ||
      DecodeExample(r, &features).has_value() || !r.U32(&n) ||
      n > r.remaining() / sizeof(float)) {
    return absl::DataLossError("prediction: truncated");
  }
  p.outputs.resize(n);
  if (!r.Floats(n, p.outputs.data()) || r.remaining() > 0) {
    return absl::DataLossError("prediction: truncated or trailing bytes");
  }
  p.features = std::move(features.features);
  *expires = absl::FromUnixMicros(micros);
  return p;
}

std::string EncodeLogEntry(const LogEntry& entry) {
  std::string out;
  out.reserve(64 + entry.model.size() + entry.origin.size() +
              entry.update_record.size() + entry.model_state.size());
  ByteWriter w(&out);
  w.Raw(kMagic.data(), kMagic.size());
  w.U32(kLogEntryFormatVersion);
  w.U8(static_cast<uint8_t>(entry.kind));
  w.Bytes(entry.model);
  w.Bytes(entry.origin);
  w.U64(entry.sequence);
  switch (entry.kind) {
    case LogEntryKind::kCreate:
      w.Bytes(EncodeModelSpec(entry.spec));
      break;
    case LogEntryKind::kDelete:
      break;
    case LogEntryKind::kUpdate:
      w.Bytes(entry.update_record);
      break;
    case LogEntryKind::kRollback:
      w.U64(entry.version);
      break;
    case LogEntryKind::kAddClasses:
      w.I32(entry.num_classes);
      break;
    case LogEntryKind::kImport:
      w.Bytes(entry.model_state);
      break;
  }
  w.U32(Crc32c(out));
  return out;
}

absl::StatusOr<LogEntry> DecodeLogEntry(absl::string_view bytes) {
  absl::StatusOr<absl::string_view> all = Body(bytes, kMagic, "log entry");
  if (!all.ok()) return all.status();
  ByteReader r(*all);
  LogEntry entry;
  uint8_t kind = 0;
  absl::string_view model, origin, body;
  if (!r.U8(&kind) || !r.Bytes(&model) || !r.Bytes(&origin) ||
      !r.U64(&entry.sequence)) {
    return Corrupt("truncated header");
  }
  entry.kind = static_cast<LogEntryKind>(kind);
  entry.model = std::string(model);
  entry.origin = std::string(origin);
  bool complete = true;
  switch (entry.kind) {
    case LogEntryKind::kCreate: {
      complete = r.Bytes(&body);
      if (!complete) break;
      absl::StatusOr<ModelSpec> spec = DecodeModelSpec(body);
      if (!spec.ok()) return Corrupt(spec.status().message());
      entry.spec = *std::move(spec);
      break;
    }
    case LogEntryKind::kDelete:
      break;
    case LogEntryKind::kUpdate:
      complete = r.Bytes(&body);
      entry.update_record = std::string(body);
      break;
    case LogEntryKind::kRollback:
      complete = r.U64(&entry.version);
      break;
    case LogEntryKind::kAddClasses:
      complete = r.I32(&entry.num_classes);
      break;
    case LogEntryKind::kImport:
      complete = r.Bytes(&body);
      entry.model_state = std::string(body);
      break;
    default:
      return Corrupt(absl::StrCat("unknown kind ", int{kind}));
  }
  if (!complete) return Corrupt("truncated body");
  if (r.remaining() > 0) {
    return Corrupt(absl::StrCat(r.remaining(), " trailing bytes"));
  }
  return entry;
}

}  // namespace lepton

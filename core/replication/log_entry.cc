#include "core/replication/log_entry.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/storage/model_state.h"
#include "core/util/byte_io.h"
#include "core/util/crc32c.h"

namespace lepton {
namespace {

constexpr absl::string_view kMagic = "LEPTNENT";
constexpr size_t kChecksumBytes = 4;

absl::Status Corrupt(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("log entry: ", what));
}

}  // namespace

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
  if (bytes.size() < kMagic.size() + 4 + kChecksumBytes ||
      bytes.substr(0, kMagic.size()) != kMagic) {
    return Corrupt("not a Lepton log entry (bad magic or too short)");
  }
  const size_t body_end = bytes.size() - kChecksumBytes;
  uint32_t checksum = 0;
  std::memcpy(&checksum, bytes.data() + body_end, kChecksumBytes);
  if (checksum != Crc32c(bytes.substr(0, body_end))) {
    return Corrupt("checksum mismatch");
  }
  ByteReader r(bytes.substr(kMagic.size(), body_end - kMagic.size()));
  uint32_t format_version = 0;
  r.U32(&format_version);
  if (format_version != kLogEntryFormatVersion) {
    return Corrupt(absl::StrCat("format version ", format_version,
                                "; this server reads ",
                                kLogEntryFormatVersion));
  }
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

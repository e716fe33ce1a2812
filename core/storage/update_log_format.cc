#include "core/storage/update_log_format.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/learning/example_codec.h"
#include "core/util/byte_io.h"
#include "core/util/crc32c.h"
#include "core/util/status_macros.h"

namespace lepton {
namespace {

constexpr absl::string_view kMagic = "LEPTNWAL";
constexpr size_t kFormatVersionOffset = 8;
constexpr size_t kFirstVersionOffset = 12;
constexpr size_t kHeaderChecksumOffset = 20;
constexpr uint8_t kUpdateRecordKind = 1;
// An example with no features (label, weight, d = 0, s = 0; version 2: o = 0
// and holdout too): the least room one can take, so
// `remaining / MinExampleBytes` bounds a count read from the input before
// anything is allocated for it.
size_t MinExampleBytes(uint32_t format_version) {
  return format_version >= 2 ? 21 : 16;
}

absl::Status Corrupt(absl::string_view file_name, uint64_t offset,
                     absl::string_view what) {
  return absl::DataLossError(
      absl::StrCat(file_name, ": offset ", offset, ": ", what));
}

uint32_t LoadU32(absl::string_view bytes, size_t offset) {
  uint32_t v = 0;
  std::memcpy(&v, bytes.data() + offset, sizeof(v));
  return v;
}

// Reads one update payload, whose checksum has matched: anything wrong here
// was written wrong, so every failure is DATA_LOSS at the offset (in the
// file) of the field at fault.
class PayloadDecoder {
 public:
  PayloadDecoder(absl::string_view payload, absl::string_view file_name,
                 uint64_t record_offset, uint32_t format_version)
      : format_version_(format_version),
        reader_(payload),
        file_name_(file_name),
        record_offset_(record_offset),
        payload_offset_(record_offset + kRecordHeaderBytes) {}

  absl::Status Decode(LoggedUpdate* update) {
    uint8_t kind = 0;
    LEPTON_RETURN_IF_ERROR(Fixed(&kind, "the record kind"));
    if (kind != kUpdateRecordKind) {
      return Error(offset() - 1,
                   absl::StrCat("unknown record kind ", int{kind}));
    }
    LEPTON_RETURN_IF_ERROR(Fixed(&update->version, "the version"));
    const uint64_t id_offset = offset();  // Bytes() may consume the length
    absl::string_view update_id;
    if (!reader_.Bytes(&update_id)) {
      return Error(id_offset, "the payload ends inside the update id");
    }
    update->update_id.assign(update_id.data(), update_id.size());
    uint8_t has_learning_rate = 0;
    float learning_rate = 0;
    LEPTON_RETURN_IF_ERROR(Fixed(&has_learning_rate, "has_learning_rate"));
    if (has_learning_rate > 1) {
      return Error(offset() - 1,
                   absl::StrCat("has_learning_rate must be 0 or 1, got ",
                                int{has_learning_rate}));
    }
    LEPTON_RETURN_IF_ERROR(Fixed(&learning_rate, "the learning rate"));
    if (has_learning_rate) update->options.learning_rate = learning_rate;
    LEPTON_RETURN_IF_ERROR(Fixed(&update->options.epochs, "epochs"));

    uint32_t n = 0;
    LEPTON_RETURN_IF_ERROR(Fixed(&n, "the example count"));
    if (n > reader_.remaining() / MinExampleBytes(format_version_)) {
      return Truncated(absl::StrCat(n, " examples"));
    }
    update->examples.resize(n);
    for (Example& e : update->examples) {
      LEPTON_RETURN_IF_ERROR(DecodeExample(&e));
    }
    if (reader_.remaining() > 0) {
      return Error(offset(), absl::StrCat(reader_.remaining(),
                                          " unexpected bytes after the last "
                                          "example"));
    }
    return absl::OkStatus();
  }

 private:
  // Only the framing is checked here: whether the features suit the model
  // (dense length, index bounds, both dense and sparse) is the model's call
  // when the update is replayed.
  absl::Status DecodeExample(Example* e) {
    if (std::optional<std::string> what = lepton::DecodeExample(reader_, e)) {
      return Truncated(*what);
    }
    if (format_version_ < 2) return absl::OkStatus();
    uint32_t o = 0;
    LEPTON_RETURN_IF_ERROR(Fixed(&o, "an example's served output count"));
    if (o > reader_.remaining() / sizeof(float)) {
      return Truncated(absl::StrCat(o, " served outputs"));
    }
    e->served_outputs.resize(o);
    if (o > 0 && !reader_.Floats(o, e->served_outputs.data())) {
      return Truncated("the served outputs");
    }
    const uint64_t holdout_offset = offset();
    uint8_t holdout = 0;
    LEPTON_RETURN_IF_ERROR(Fixed(&holdout, "an example's holdout flag"));
    if (holdout > 1) {
      return Error(holdout_offset,
                   absl::StrCat("holdout must be 0 or 1, got ", int{holdout}));
    }
    e->holdout = holdout == 1;
    return absl::OkStatus();
  }

  template <typename T>
  absl::Status Fixed(T* v, absl::string_view what) {
    if (!reader_.Raw(v, sizeof(T))) return Truncated(what);
    return absl::OkStatus();
  }

  uint64_t offset() const { return payload_offset_ + reader_.position(); }

  absl::Status Error(uint64_t offset, absl::string_view what) const {
    return Corrupt(
        file_name_, offset,
        absl::StrCat("record at offset ", record_offset_, ": ", what));
  }
  absl::Status Truncated(absl::string_view what) const {
    return Error(offset(), absl::StrCat("the payload ends inside ", what));
  }

  const uint32_t format_version_;
  ByteReader reader_;
  const absl::string_view file_name_;
  const uint64_t record_offset_;
  const uint64_t payload_offset_;
};

}  // namespace

std::string EncodeSegmentHeader(uint64_t first_version,
                                uint32_t format_version) {
  std::string out;
  out.reserve(kSegmentHeaderBytes);
  ByteWriter w(&out);
  w.Raw(kMagic.data(), kMagic.size());
  w.U32(format_version);
  w.U64(first_version);
  w.U32(Crc32c(out));
  return out;
}

// The examples have passed ValidateExamples (the log holds only updates the
// model accepted), so a sparse instance has as many values as indices.
void AppendUpdateRecord(uint64_t version, absl::string_view update_id,
                        const UpdateOptions& options,
                        absl::Span<const ExampleView> examples,
                        std::string* out, uint32_t format_version) {
  const size_t start = out->size();
  // The frame is filled in once the payload, and so its size, is written.
  out->append(kRecordHeaderBytes, '\0');
  ByteWriter w(out);
  w.U8(kUpdateRecordKind);
  w.U64(version);
  w.Bytes(update_id);
  w.U8(options.learning_rate.has_value() ? 1 : 0);
  w.F32(options.learning_rate.value_or(0.0f));
  w.I32(options.epochs);
  w.U32(static_cast<uint32_t>(examples.size()));
  for (const ExampleView& e : examples) {
    EncodeExample(e, w);
    if (format_version >= 2) {
      w.U32(static_cast<uint32_t>(e.served_outputs.size()));
      w.Floats(e.served_outputs);
      w.U8(e.holdout ? 1 : 0);
    }
  }
  const uint32_t payload_size =
      static_cast<uint32_t>(out->size() - start - kRecordHeaderBytes);
  const uint32_t frame[3] = {
      payload_size, Crc32cExtend(0, &payload_size, sizeof(payload_size)),
      Crc32cExtend(0, out->data() + start + kRecordHeaderBytes, payload_size)};
  static_assert(sizeof(frame) == kRecordHeaderBytes);
  std::memcpy(out->data() + start, frame, sizeof(frame));
}

absl::StatusOr<LogSegment> ReadLogSegment(absl::string_view contents,
                                          absl::string_view file_name,
                                          bool newest) {
  LogSegment segment;
  // A torn tail at `offset`: the newest segment stops there (the caller
  // truncates it away); any other segment was complete once, so it is
  // corrupt.
  const auto torn = [&](uint64_t offset,
                        std::string reason) -> absl::StatusOr<LogSegment> {
    if (!newest) {
      return Corrupt(file_name, offset,
                     absl::StrCat(reason,
                                  "; only the newest segment may end in a "
                                  "torn write"));
    }
    segment.valid_bytes = offset;
    segment.torn = true;
    segment.torn_reason = std::move(reason);
    return std::move(segment);
  };

  if (contents.size() < kSegmentHeaderBytes) {
    // A crash right after the file was created, before its header was all
    // written (valid_bytes 0).
    return torn(0, absl::StrCat("the file is ", contents.size(),
                                " bytes, shorter than the ",
                                kSegmentHeaderBytes, "-byte segment header"));
  }
  if (contents.find_first_not_of('\0') == absl::string_view::npos) {
    // Space allocated for the file but never written before the crash.
    return torn(0, absl::StrCat("the file is ", contents.size(),
                                " zero bytes (its header was never written)"));
  }
  if (contents.substr(0, kMagic.size()) != kMagic) {
    return Corrupt(file_name, 0, "not a Lepton update log segment (bad magic)");
  }
  // The version before the checksum: another version's header may be laid
  // out differently, and "format version 2" says what to do about it.
  const uint32_t format_version = LoadU32(contents, kFormatVersionOffset);
  if (format_version < kOldestReadableLogFormatVersion ||
      format_version > kUpdateLogFormatVersion) {
    return Corrupt(
        file_name, kFormatVersionOffset,
        absl::StrCat("format version ", format_version, "; this server reads ",
                     kOldestReadableLogFormatVersion, " to ",
                     kUpdateLogFormatVersion));
  }
  segment.format_version = format_version;
  if (LoadU32(contents, kHeaderChecksumOffset) !=
      Crc32c(contents.substr(0, kHeaderChecksumOffset))) {
    return Corrupt(file_name, kHeaderChecksumOffset,
                   "segment header checksum mismatch");
  }
  std::memcpy(&segment.first_version, contents.data() + kFirstVersionOffset,
              sizeof(segment.first_version));

  uint64_t offset = kSegmentHeaderBytes;
  while (offset < contents.size()) {
    const absl::string_view rest = contents.substr(offset);
    // Before the header checksum, which zeros fail (the CRC-32C of four zero
    // bytes is not zero) and would otherwise be called corruption. The scan
    // stops at the first nonzero byte, early in any real record.
    if (std::all_of(rest.begin(), rest.end(),
                    [](char c) { return c == '\0'; })) {
      return torn(offset, absl::StrCat(rest.size(), " zero bytes at offset ",
                                       offset, " (allocated, never written)"));
    }
    if (rest.size() < kRecordHeaderBytes) {
      return torn(offset,
                  absl::StrCat("record at offset ", offset,
                               " is incomplete (needs ", kRecordHeaderBytes,
                               " bytes, ", rest.size(), " remain)"));
    }
    const uint32_t payload_size = LoadU32(rest, 0);
    if (LoadU32(rest, 4) != Crc32c(rest.substr(0, 4))) {
      return Corrupt(file_name, offset, "record header checksum mismatch");
    }
    // The size's checksum matched, so a size this large was written so.
    if (payload_size > kMaxRecordPayloadBytes) {
      return Corrupt(
          file_name, offset,
          absl::StrCat("record payload size ", payload_size,
                       " exceeds the maximum, ", kMaxRecordPayloadBytes));
    }
    const uint64_t record_size = kRecordHeaderBytes + uint64_t{payload_size};
    if (record_size > rest.size()) {
      return torn(offset, absl::StrCat("record at offset ", offset,
                                       " is incomplete (needs ", record_size,
                                       " bytes, ", rest.size(), " remain)"));
    }
    const absl::string_view payload =
        rest.substr(kRecordHeaderBytes, payload_size);
    if (LoadU32(rest, 8) != Crc32c(payload)) {
      // Only the last record can have been cut short by a crash; one with
      // bytes after it was complete once, so it has been damaged since.
      if (record_size == rest.size()) {
        return torn(offset, absl::StrCat("record at offset ", offset,
                                         " fails its payload checksum and "
                                         "ends the file (a write cut "
                                         "short)"));
      }
      return Corrupt(file_name, offset, "record payload checksum mismatch");
    }
    LoggedUpdate update;
    update.offset = offset;
    LEPTON_RETURN_IF_ERROR(
        PayloadDecoder(payload, file_name, offset, format_version)
            .Decode(&update));
    segment.records.push_back(std::move(update));
    offset += record_size;
  }
  segment.valid_bytes = contents.size();
  return segment;
}

absl::StatusOr<LoggedUpdate> DecodeUpdateRecord(absl::string_view record,
                                                absl::string_view what) {
  // Read as the one record of a segment, so that it gets every check a
  // record in a file gets (offsets then count the 24-byte header).
  std::string segment = EncodeSegmentHeader(0);
  segment.append(record.data(), record.size());
  absl::StatusOr<LogSegment> read =
      ReadLogSegment(segment, what, /*newest=*/false);
  if (!read.ok()) return read.status();
  if (read->records.size() != 1) {
    return absl::DataLossError(absl::StrCat(
        what, ": holds ", read->records.size(), " update records, not 1"));
  }
  return std::move(read->records[0]);
}

}  // namespace lepton

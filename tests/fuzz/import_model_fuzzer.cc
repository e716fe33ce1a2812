// Fuzz target: ImportModel's blob reader, DecodeModelState
// (core/storage/model_state.h) behind ModelStore::ImportModel, and what an
// imported model then does.
//
// Input: u8 flags, then the blob.
//   flags & 1: payload_size and checksum rewritten to match the bytes
//              (fuzz_support.h), so that mutations reach the payload's fields
//   flags & 2: imported under the blob's own name instead of "m"
//
// Properties, beyond no crash, no sanitizer report and no allocation over
// libFuzzer's -malloc_limit_mb:
//   - ImportModel answers OK or INVALID_ARGUMENT;
//   - a blob that decodes has a canonical encoding: encoding the decoded
//     state and decoding that gives the same encoding again;
//   - an imported model predicts, takes an update (or refuses it with a
//     client error) and exports a blob that decodes.
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "core/storage/model_state.h"
#include "core/store/model_store.h"
#include "tests/fuzz/fuzz_support.h"

namespace lepton::fuzz {
namespace {

ModelStore& Store() {
  static ModelStore* store = [] {
    StoreOptions options;
    options.prediction_cache_bytes = 1 << 20;
    return new ModelStore(options);
  }();
  return *store;
}

void CheckCanonical(absl::string_view blob) {
  absl::StatusOr<ModelState> state = DecodeModelState(blob);
  if (!state.ok()) return;
  const std::string once = EncodeModelState(*state);
  absl::StatusOr<ModelState> again = DecodeModelState(once);
  FUZZ_CHECK(again.ok(), "%s", again.status().ToString().c_str());
  FUZZ_CHECK(EncodeModelState(*again) == once);
}

void OneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const uint8_t flags = in.U8();
  std::string blob(in.Rest());
  if (flags & 1) FixModelStateChecksum(&blob);
  CheckCanonical(blob);

  ModelStore& store = Store();
  absl::StatusOr<ModelInfo> info =
      store.ImportModel((flags & 2) ? "" : "m", blob);
  if (!info.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(info.status()), "%s",
               info.status().ToString().c_str());
    return;
  }
  const std::string name = info->name;
  // Index 0 suits every model; label 0 every type.
  const uint32_t index = 0;
  const float one = 1;
  const FeaturesView instance{{}, {&index, 1}, {&one, 1}};
  absl::StatusOr<Predictions> p = store.Predict(name, {&instance, 1});
  FUZZ_CHECK(p.ok(), "%s", p.status().ToString().c_str());

  ExampleView example;
  example.features = instance;
  absl::StatusOr<UpdateResult> u = store.Update(name, {&example, 1});
  FUZZ_CHECK(u.ok() || absl::IsInvalidArgument(u.status()) ||
                 absl::IsFailedPrecondition(u.status()),
             "%s", u.status().ToString().c_str());

  absl::StatusOr<std::string> exported = store.ExportModel(name, 0);
  FUZZ_CHECK(exported.ok(), "%s", exported.status().ToString().c_str());
  absl::StatusOr<ModelState> decoded = DecodeModelState(*exported);
  FUZZ_CHECK(decoded.ok(), "%s", decoded.status().ToString().c_str());
  FUZZ_CHECK(store.DeleteModel(name).ok());
}

}  // namespace
}  // namespace lepton::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lepton::fuzz::OneInput(data, size);
  return 0;
}

// The errors a model's log failures produce, shared by its update and
// checkpoint paths (model.cc, model_checkpoints.cc).
#ifndef LEPTON_CORE_STORE_MODEL_ERRORS_H_
#define LEPTON_CORE_STORE_MODEL_ERRORS_H_

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace lepton {

// A change that failed before anything of it reached the model's files.
// A full disk (ENOSPC, EDQUOT: RESOURCE_EXHAUSTED from the file system) is
// RESOURCE_EXHAUSTED naming the file, for an operator to free space; the
// same change succeeds once there is room. Anything else is UNAVAILABLE.
inline absl::Status NotApplied(absl::string_view model, absl::string_view what,
                               const absl::Status& error) {
  if (absl::IsResourceExhausted(error)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "model \"", model, "\": the disk of the update log is full (",
        error.message(), "); ", what,
        " was not applied: free space in the data directory and send it "
        "again"));
  }
  return absl::UnavailableError(
      absl::StrCat("model \"", model, "\": the update log failed (",
                   error.message(), "); ", what, " was not applied"));
}

// A change refused because the model's update log failed earlier (a failed
// fsync, a write that could not be undone): what the disk holds is unknown
// until the server restarts and recovers from it, so retrying cannot help.
inline absl::Status LogBroken(absl::string_view model, absl::string_view what,
                              const absl::Status& error) {
  return absl::FailedPreconditionError(
      absl::StrCat("model \"", model, "\": the update log failed (",
                   error.message(), "); ", what, " was not applied"));
}

// An update whose record was written but could not be made durable: what
// the disk holds is unknown, so is whether a restart will find it.
inline absl::Status OutcomeUnknown(absl::string_view model,
                                   const absl::Status& error) {
  return absl::UnavailableError(absl::StrCat(
      "model \"", model, "\": the update log could not be synced (",
      error.message(),
      "); this update may or may not be applied once the server has "
      "restarted: retry it then with the same update_id"));
}

}  // namespace lepton

#endif  // LEPTON_CORE_STORE_MODEL_ERRORS_H_

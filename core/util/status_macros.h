// Early-return helpers for absl::Status and absl::StatusOr<T>, which Debian's
// Abseil 20220623 does not ship.
//
//   LEPTON_RETURN_IF_ERROR(ValidateSpec(spec));
//   LEPTON_ASSIGN_OR_RETURN(auto model, store.Find(name));
#ifndef LEPTON_CORE_UTIL_STATUS_MACROS_H_
#define LEPTON_CORE_UTIL_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define LEPTON_RETURN_IF_ERROR(expr)                                  \
  do {                                                                \
    if (absl::Status lepton_status_ = (expr); !lepton_status_.ok()) { \
      return lepton_status_;                                          \
    }                                                                 \
  } while (false)

#define LEPTON_STATUS_CONCAT_INNER_(a, b) a##b
#define LEPTON_STATUS_CONCAT_(a, b) LEPTON_STATUS_CONCAT_INNER_(a, b)

#define LEPTON_ASSIGN_OR_RETURN(lhs, expr) \
  LEPTON_ASSIGN_OR_RETURN_IMPL_(           \
      LEPTON_STATUS_CONCAT_(lepton_statusor_, __LINE__), lhs, expr)

#define LEPTON_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = *std::move(statusor)

#endif  // LEPTON_CORE_UTIL_STATUS_MACROS_H_

// Early-return helpers for absl::Status / absl::StatusOr, in the style of
// Abseil's internal status_macros (not shipped by Debian's Abseil 20220623).
#ifndef SUPRA_ENGINE_UTIL_STATUS_MACROS_H_
#define SUPRA_ENGINE_UTIL_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SUPRA_STATUS_CONCAT_INNER_(a, b) a##b
#define SUPRA_STATUS_CONCAT_(a, b) SUPRA_STATUS_CONCAT_INNER_(a, b)

// RETURN_IF_ERROR(expr): returns the status of `expr` when it is not OK.
#define RETURN_IF_ERROR(expr)                                  \
  do {                                                         \
    if (absl::Status supra_status_ = (expr); !supra_status_.ok()) \
      return supra_status_;                                    \
  } while (0)

// ASSIGN_OR_RETURN(lhs, expr): evaluates the StatusOr `expr`; on error returns
// its status, otherwise moves the value into `lhs` (which may declare a variable).
#define ASSIGN_OR_RETURN(lhs, expr) \
  SUPRA_ASSIGN_OR_RETURN_IMPL_(SUPRA_STATUS_CONCAT_(supra_statusor_, __LINE__), lhs, expr)

// `statusor` is a generated name and `lhs` may be a declaration, so neither
// can be parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define SUPRA_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr)  \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()
// NOLINTEND(bugprone-macro-parentheses)

#endif  // SUPRA_ENGINE_UTIL_STATUS_MACROS_H_

// The machine-readable cause of an engine error, carried inside absl::Status
// as a payload so that it crosses every layer unchanged. The server turns it
// into a supra.v1.ErrorInfo (server/status_conversion.h); nothing in the
// engine knows about protobuf. Reasons are the stable UPPER_SNAKE_CASE names
// listed in proto/supra/v1/errors.proto.
#ifndef SUPRA_ENGINE_UTIL_ERROR_DETAIL_H_
#define SUPRA_ENGINE_UTIL_ERROR_DETAIL_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace supra {

struct ErrorDetail {
  std::string reason;  // e.g. "SESSION_BUSY"
  std::string field;   // the offending request field as a path ("sampling.top_p"), or empty
  std::vector<std::pair<std::string, std::string>> metadata;  // lower_snake_case keys
  std::optional<absl::Duration> retry_after;                   // a retry hint for retryable errors
};

// `status` with `detail` attached (replacing an earlier one). OK stays OK.
absl::Status WithErrorDetail(absl::Status status, const ErrorDetail& detail);

// The detail attached by WithErrorDetail, if any.
std::optional<ErrorDetail> GetErrorDetail(const absl::Status& status);

// Shorthand for the common case: a status with code, message, reason and field.
absl::Status MakeError(absl::StatusCode code, std::string_view message, std::string_view reason,
                       std::string_view field = {});

}  // namespace supra

#endif  // SUPRA_ENGINE_UTIL_ERROR_DETAIL_H_

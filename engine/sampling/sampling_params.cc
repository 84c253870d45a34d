#include "engine/sampling/sampling_params.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "engine/util/error_detail.h"

namespace supra {
namespace {

absl::Status FieldError(const char* field, double value, const char* range) {
  return MakeError(absl::StatusCode::kInvalidArgument,
                   absl::StrCat("sampling.", field, " must be ", range, ", got ", value), "INVALID_SAMPLING",
                   absl::StrCat("sampling.", field));
}

}  // namespace

absl::Status ValidateSamplingParams(const SamplingParams& params) {
  // Written as !(in range) so that NaN is out of range everywhere.
  if (!(params.temperature >= 0 && std::isfinite(params.temperature))) {
    return FieldError("temperature", params.temperature, "a finite number >= 0");
  }
  if (params.top_k < 0) return FieldError("top_k", params.top_k, ">= 0");
  if (!(params.top_p > 0 && params.top_p <= 1)) return FieldError("top_p", params.top_p, "in (0, 1]");
  if (!(params.min_p >= 0 && params.min_p <= 1)) return FieldError("min_p", params.min_p, "in [0, 1]");
  if (!(params.repetition_penalty > 0 && std::isfinite(params.repetition_penalty))) {
    return FieldError("repetition_penalty", params.repetition_penalty, "a finite number > 0");
  }
  if (!(params.presence_penalty >= -2 && params.presence_penalty <= 2)) {
    return FieldError("presence_penalty", params.presence_penalty, "in [-2, 2]");
  }
  if (!(params.frequency_penalty >= -2 && params.frequency_penalty <= 2)) {
    return FieldError("frequency_penalty", params.frequency_penalty, "in [-2, 2]");
  }
  if (params.penalty_window < 0) return FieldError("penalty_window", params.penalty_window, ">= 0");
  return absl::OkStatus();
}

}  // namespace supra

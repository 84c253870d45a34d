#include "engine/util/error_detail.h"

#include <cstdint>

#include "absl/strings/cord.h"
#include "absl/types/optional.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "engine/util/absl_compat.h"

namespace supra {
namespace {

constexpr char kPayloadUrl[] = "type.supra.dev/supra.ErrorDetail";

// Encoding: a sequence of length-prefixed strings, "<decimal length>:<bytes>".
void Put(std::string& out, std::string_view s) {
  out += std::to_string(s.size());
  out += ':';
  out.append(s.data(), s.size());
}

bool Take(std::string_view& in, std::string& out) {
  const size_t colon = in.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 10) return false;
  uint64_t n = 0;
  if (!absl::SimpleAtoi(ToAbsl(in.substr(0, colon)), &n) || n > in.size() - colon - 1) return false;
  out.assign(in.substr(colon + 1, n));
  in.remove_prefix(colon + 1 + n);
  return true;
}

}  // namespace

absl::Status WithErrorDetail(absl::Status status, const ErrorDetail& detail) {
  if (status.ok()) return status;
  std::string encoded;
  Put(encoded, detail.reason);
  Put(encoded, detail.field);
  Put(encoded, detail.retry_after ? std::to_string(absl::ToInt64Nanoseconds(*detail.retry_after)) : std::string());
  for (const auto& [key, value] : detail.metadata) {
    Put(encoded, key);
    Put(encoded, value);
  }
  status.SetPayload(kPayloadUrl, absl::Cord(std::move(encoded)));
  return status;
}

std::optional<ErrorDetail> GetErrorDetail(const absl::Status& status) {
  const absl::optional<absl::Cord> payload = status.GetPayload(kPayloadUrl);  // Debian: not std::optional
  if (!payload) return std::nullopt;
  const std::string flat(*payload);
  std::string_view in(flat);
  ErrorDetail detail;
  std::string retry;
  if (!Take(in, detail.reason) || !Take(in, detail.field) || !Take(in, retry)) return std::nullopt;
  if (!retry.empty()) {
    int64_t ns = 0;
    if (!absl::SimpleAtoi(retry, &ns)) return std::nullopt;
    detail.retry_after = absl::Nanoseconds(ns);
  }
  while (!in.empty()) {
    std::string key, value;
    if (!Take(in, key) || !Take(in, value)) return std::nullopt;
    detail.metadata.emplace_back(std::move(key), std::move(value));
  }
  return detail;
}

absl::Status MakeError(absl::StatusCode code, std::string_view message, std::string_view reason,
                       std::string_view field) {
  return WithErrorDetail(absl::Status(code, ToAbsl(message)),
                         ErrorDetail{std::string(reason), std::string(field), {}, std::nullopt});
}

}  // namespace supra

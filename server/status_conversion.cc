#include "server/status_conversion.h"

#include <string>

#include "engine/util/error_detail.h"
#include "supra/v1/errors.pb.h"

namespace supra::server {
namespace {

// Reason for an error that carries none: what the code says.
std::string DefaultReason(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnimplemented:
      return "NOT_IMPLEMENTED";
    case absl::StatusCode::kUnauthenticated:
      return "UNAUTHENTICATED";
    case absl::StatusCode::kDataLoss:
      return "SNAPSHOT_CORRUPT";
    case absl::StatusCode::kResourceExhausted:
      return "OVERLOADED";
    default:
      return "INTERNAL";
  }
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const auto code = static_cast<grpc::StatusCode>(static_cast<int>(status.code()));
  const std::string message(status.message());
  v1::ErrorInfo info;
  if (const std::optional<ErrorDetail> detail = GetErrorDetail(status)) {
    info.set_reason(detail->reason);
    info.set_field(detail->field);
    for (const auto& [key, value] : detail->metadata) (*info.mutable_metadata())[key] = value;
    if (detail->retry_after) {
      const int64_t ns = absl::ToInt64Nanoseconds(*detail->retry_after);
      info.mutable_retry_after()->set_seconds(ns / 1000000000);
      info.mutable_retry_after()->set_nanos(static_cast<int32_t>(ns % 1000000000));
    }
  } else {
    info.set_reason(DefaultReason(status.code()));
  }
  v1::RpcStatus rpc;
  rpc.set_code(static_cast<int32_t>(code));
  rpc.set_message(message);
  rpc.add_details()->PackFrom(info);
  return grpc::Status(code, message, rpc.SerializeAsString());
}

grpc::Status GrpcError(grpc::StatusCode code, std::string_view message, std::string_view reason,
                       std::string_view field) {
  return ToGrpcStatus(
      MakeError(static_cast<absl::StatusCode>(static_cast<int>(code)), message, reason, field));
}

}  // namespace supra::server

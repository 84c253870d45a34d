// The one place where engine errors (absl::Status with an ErrorDetail
// payload, engine/util/error_detail.h) become gRPC statuses: same code and
// message, plus a supra.v1.RpcStatus holding one supra.v1.ErrorInfo in the
// status details (grpc-status-details-bin), as errors.proto describes.
#ifndef SUPRA_SERVER_STATUS_CONVERSION_H_
#define SUPRA_SERVER_STATUS_CONVERSION_H_

#include <grpcpp/support/status.h>

#include <string_view>

#include "absl/status/status.h"

namespace supra::server {

grpc::Status ToGrpcStatus(const absl::Status& status);

// A gRPC error with a reason and field, for checks made in server/ itself.
grpc::Status GrpcError(grpc::StatusCode code, std::string_view message, std::string_view reason,
                       std::string_view field = {});

}  // namespace supra::server

#endif  // SUPRA_SERVER_STATUS_CONVERSION_H_

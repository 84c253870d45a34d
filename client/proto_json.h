// The --json form of a protobuf message: the standard proto3 JSON mapping
// (field names as in the .proto, enums by name, 64-bit integers as strings,
// fields at their default value included), on one line.
#ifndef SUPRA_CLIENT_PROTO_JSON_H_
#define SUPRA_CLIENT_PROTO_JSON_H_

#include <string>

#include "google/protobuf/message.h"

namespace supra::client {

std::string ToJsonLine(const google::protobuf::Message& message);

}  // namespace supra::client

#endif  // SUPRA_CLIENT_PROTO_JSON_H_

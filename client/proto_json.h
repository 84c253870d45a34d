// The --json form of a protobuf message: the standard proto3 JSON mapping
// (field names as in the .proto, enums by name, 64-bit integers as strings,
// fields at their default value included), on one line. And the same for
// the objects supra-cli builds itself (errors, health).
#ifndef SUPRA_CLIENT_PROTO_JSON_H_
#define SUPRA_CLIENT_PROTO_JSON_H_

#include <string>

#include "google/protobuf/message.h"
#include "nlohmann/json.hpp"

namespace supra::client {

std::string ToJsonLine(const google::protobuf::Message& message);

// A JSON value on one line; invalid UTF-8 (e.g. in a transport error
// message) becomes U+FFFD instead of throwing.
std::string ToJsonLine(const nlohmann::json& value);

}  // namespace supra::client

#endif  // SUPRA_CLIENT_PROTO_JSON_H_

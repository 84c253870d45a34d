// Optional bearer-token authentication. A token file maps tokens to tenants,
// one "<token> <tenant>" pair per line ('#' starts a comment, blank lines
// are skipped). Requests carry "authorization: Bearer <token>"; the tenant
// owns the sessions the request creates and is the only one that sees them.
// Without a token file every request belongs to the anonymous tenant "".
#ifndef SUPRA_SERVER_AUTH_H_
#define SUPRA_SERVER_AUTH_H_

#include <grpcpp/server_context.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace supra::server {

class TokenAuth {
 public:
  // Authentication off: everyone is the anonymous tenant.
  TokenAuth() = default;
  // INVALID_ARGUMENT naming the file and line for a malformed file or a
  // duplicate token; NOT_FOUND for a missing file.
  static absl::StatusOr<TokenAuth> Load(const std::string& path);

  bool enabled() const { return enabled_; }
  int size() const { return static_cast<int>(entries_.size()); }

  // The caller's tenant, or UNAUTHENTICATED (reason UNAUTHENTICATED) for a
  // missing, malformed or unknown token. Compares in constant time per token.
  absl::StatusOr<std::string> TenantOf(const grpc::CallbackServerContext& context) const;
  absl::StatusOr<std::string> TenantOfHeader(std::string_view authorization) const;

 private:
  bool enabled_ = false;
  std::vector<std::pair<std::string, std::string>> entries_;  // token, tenant
};

}  // namespace supra::server

#endif  // SUPRA_SERVER_AUTH_H_

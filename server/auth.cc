#include "server/auth.h"

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/util/absl_compat.h"
#include "engine/util/error_detail.h"

namespace supra::server {
namespace {

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

absl::Status Unauthenticated(std::string_view why) {
  return MakeError(absl::StatusCode::kUnauthenticated, why, "UNAUTHENTICATED");
}

}  // namespace

absl::StatusOr<TokenAuth> TokenAuth::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read the token file ", path));
  TokenAuth auth;
  auth.enabled_ = true;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    const std::vector<std::string> fields = absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (fields.empty()) continue;
    if (fields.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", number, ": expected \"<token> <tenant>\", got ", fields.size(), " fields"));
    }
    if (fields[0].size() < 16) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", number, ": token shorter than 16 characters"));
    }
    for (const auto& [token, tenant] : auth.entries_) {
      if (token == fields[0]) return absl::InvalidArgumentError(absl::StrCat(path, ":", number, ": duplicate token"));
    }
    auth.entries_.emplace_back(fields[0], fields[1]);
  }
  if (auth.entries_.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no tokens"));
  return auth;
}

absl::StatusOr<std::string> TokenAuth::TenantOfHeader(std::string_view authorization) const {
  if (!enabled_) return std::string();
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.empty()) return Unauthenticated("missing bearer token (metadata \"authorization: Bearer <token>\")");
  if (authorization.size() <= kBearer.size() || authorization.substr(0, kBearer.size()) != kBearer) {
    return Unauthenticated("the authorization metadata must be \"Bearer <token>\"");
  }
  const std::string_view token = authorization.substr(kBearer.size());
  const std::string* tenant = nullptr;
  for (const auto& entry : entries_) {
    if (ConstantTimeEquals(entry.first, token)) tenant = &entry.second;  // no early exit
  }
  if (tenant == nullptr) return Unauthenticated("unknown bearer token");
  return *tenant;
}

absl::StatusOr<std::string> TokenAuth::TenantOf(const grpc::CallbackServerContext& context) const {
  if (!enabled_) return std::string();
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return TenantOfHeader({});
  return TenantOfHeader(std::string_view(it->second.data(), it->second.size()));
}

}  // namespace supra::server

#include "engine/model/generation_config.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace supra {
namespace {

absl::Status ReadId(const nlohmann::json& j, const char* field, std::optional<int32_t>* out) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  const nlohmann::json* value = &*it;
  if (value->is_array() && !value->empty()) value = &value->front();
  if (!value->is_number_integer() || value->get<int64_t>() < 0 || value->get<int64_t>() > INT32_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("generation_config.json: field '", field, "' must be a non-negative integer, got ", it->dump()));
  }
  *out = static_cast<int32_t>(value->get<int64_t>());
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<GenerationConfig> ParseGenerationConfig(std::string_view json_text) {
  nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("generation_config.json: not a JSON object");
  }
  GenerationConfig config;
  if (auto s = ReadId(j, "bos_token_id", &config.bos_token_id); !s.ok()) return s;
  if (auto s = ReadId(j, "eos_token_id", &config.eos_token_id); !s.ok()) return s;
  return config;
}

absl::StatusOr<GenerationConfig> LoadGenerationConfig(const std::string& path) {
  if (!std::filesystem::exists(path)) return GenerationConfig{};
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::PermissionDeniedError(absl::StrCat("cannot read ", path));
  std::ostringstream text;
  text << in.rdbuf();
  return ParseGenerationConfig(text.str());
}

}  // namespace supra

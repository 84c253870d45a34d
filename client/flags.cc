#include "client/flags.h"

#include <charconv>
#include <cmath>
#include <system_error>
#include <type_traits>

namespace supra::client {
namespace {

const FlagSpec* FindSpec(const std::vector<const std::vector<FlagSpec>*>& specs, const std::string& name) {
  for (const std::vector<FlagSpec>* list : specs) {
    for (const FlagSpec& spec : *list) {
      if (spec.name == name) return &spec;
    }
  }
  return nullptr;
}

template <typename T>
std::optional<T> ParseNumber(const std::string& text) {
  T value{};
  const char* first = text.data();
  const char* last = text.data() + text.size();
  if (first != last && *first == '+') ++first;  // from_chars refuses a leading '+'
  const auto [ptr, ec] = std::from_chars(first, last, value);
  if (text.empty() || ec != std::errc() || ptr != last) return std::nullopt;
  if constexpr (std::is_floating_point_v<T>) {
    if (!std::isfinite(value)) return std::nullopt;
  }
  return value;
}

std::string Trim(const std::string& text) {
  const size_t first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  const size_t last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

}  // namespace

const std::string* ParsedFlags::Get(const std::string& name) const {
  const auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return nullptr;
  return &it->second.back();
}

std::vector<std::string> ParsedFlags::GetAll(const std::string& name) const {
  const auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::optional<std::string> ParseFlags(const std::vector<const std::vector<FlagSpec>*>& specs,
                                      const std::vector<std::string>& args, size_t begin, bool stop_at_positional,
                                      ParsedFlags* parsed, size_t* end) {
  size_t i = begin;
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      if (stop_at_positional) break;
      for (++i; i < args.size(); ++i) parsed->positional_.push_back(args[i]);
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      if (stop_at_positional) break;
      parsed->positional_.push_back(arg);
      continue;
    }
    if (arg[1] != '-') return "unknown flag '" + arg + "' (flags are spelled --name)";
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    if (name == "token") {
      return "--token is refused: a token on the command line is visible to other users (ps, "
             "/proc) and kept in shell history. Use --token-file FILE or the SUPRA_TOKEN "
             "environment variable";
    }
    const FlagSpec* spec = FindSpec(specs, name);
    if (spec == nullptr) return "unknown flag '--" + name + "'";
    std::string value;
    if (spec->value_name.empty()) {
      if (eq != std::string::npos) return "--" + name + " takes no value";
    } else if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else {
      if (i + 1 >= args.size()) return "--" + name + " needs a value (" + spec->value_name + ")";
      value = args[++i];
    }
    std::vector<std::string>& values = parsed->values_[name];
    if (!spec->repeated && !spec->value_name.empty() && !values.empty()) return "--" + name + " given more than once";
    values.push_back(std::move(value));
  }
  if (end != nullptr) *end = i;
  return std::nullopt;
}

std::string FormatFlagHelp(const std::vector<FlagSpec>& specs) {
  std::string text;
  for (const FlagSpec& spec : specs) {
    std::string left = "  --" + spec.name;
    if (!spec.value_name.empty()) left += " " + spec.value_name;
    if (spec.repeated) left += " (repeatable)";
    if (left.size() < 34)
      left.resize(34, ' ');
    else
      left += "\n" + std::string(34, ' ');
    text += left + spec.help + "\n";
  }
  return text;
}

std::optional<int32_t> ParseInt32(const std::string& text) { return ParseNumber<int32_t>(text); }
std::optional<int64_t> ParseInt64(const std::string& text) { return ParseNumber<int64_t>(text); }
std::optional<uint64_t> ParseUint64(const std::string& text) {
  if (!text.empty() && text[0] == '-') return std::nullopt;
  return ParseNumber<uint64_t>(text);
}
std::optional<float> ParseFloat(const std::string& text) { return ParseNumber<float>(text); }
std::optional<double> ParseDouble(const std::string& text) { return ParseNumber<double>(text); }

std::optional<std::vector<int32_t>> ParseTokenList(const std::string& text) {
  std::vector<int32_t> ids;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::optional<int32_t> id =
        ParseInt32(Trim(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
    if (!id.has_value()) return std::nullopt;
    ids.push_back(*id);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return ids;
}

}  // namespace supra::client

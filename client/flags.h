// A small GNU-style flag parser for supra-cli: `--name value`, `--name=value`,
// boolean `--name`, repeatable flags, `--` ends the flags. Subcommands declare
// their flags as FlagSpecs, from which their --help is made too.
#ifndef SUPRA_CLIENT_FLAGS_H_
#define SUPRA_CLIENT_FLAGS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace supra::client {

struct FlagSpec {
  std::string name;        // without the leading "--"
  std::string value_name;  // e.g. "N"; empty for a boolean flag
  std::string help;
  bool repeated = false;  // may be given several times; all values kept
};

class ParsedFlags {
 public:
  bool Has(const std::string& name) const { return values_.count(name) != 0; }
  // The last value of a flag, or null when it was not given.
  const std::string* Get(const std::string& name) const;
  // Every value of a repeated flag, in order (empty when not given).
  std::vector<std::string> GetAll(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  friend std::optional<std::string> ParseFlags(const std::vector<const std::vector<FlagSpec>*>& specs,
                                               const std::vector<std::string>& args, size_t begin,
                                               bool stop_at_positional, ParsedFlags* parsed, size_t* end);
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
};

// Parses args[begin...] against the union of `specs`, adding to `parsed`.
// With stop_at_positional, stops at the first positional argument and sets
// *end to its index (args.size() if none). Returns an error message for an
// unknown flag, a missing value, a repeated non-repeatable flag, or --token
// (a secret on argv is visible to every user through ps and shell history).
// "-" is a positional argument.
std::optional<std::string> ParseFlags(const std::vector<const std::vector<FlagSpec>*>& specs,
                                      const std::vector<std::string>& args, size_t begin, bool stop_at_positional,
                                      ParsedFlags* parsed, size_t* end);

// "  --name VALUE   help" lines for --help.
std::string FormatFlagHelp(const std::vector<FlagSpec>& specs);

// Strict number parsing: the whole string must be the number, in range.
std::optional<int32_t> ParseInt32(const std::string& text);
std::optional<int64_t> ParseInt64(const std::string& text);
std::optional<uint64_t> ParseUint64(const std::string& text);
std::optional<float> ParseFloat(const std::string& text);    // finite only
std::optional<double> ParseDouble(const std::string& text);  // finite only
// "1,2,3" (spaces around commas allowed) to ids; null on anything else.
std::optional<std::vector<int32_t>> ParseTokenList(const std::string& text);

}  // namespace supra::client

#endif  // SUPRA_CLIENT_FLAGS_H_

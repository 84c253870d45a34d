// Stop strings over streamed text: holds back text that could still be the
// start of a stop string, so that matched stop text is never sent.
#ifndef SUPRA_ENGINE_SERVING_STOP_MATCHER_H_
#define SUPRA_ENGINE_SERVING_STOP_MATCHER_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace supra {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}

  // Adds decoded text; returns the text that can be sent now. Once a stop
  // string matched, returns the text before it and drops everything after.
  std::string Push(std::string_view text);
  // The stream ended without a match: returns the text held back.
  std::string Flush();

  // Index into the stop strings of the one that matched (the earliest match
  // in the text; among equal starts, the first listed).
  std::optional<size_t> matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;  // text not sent yet
  std::optional<size_t> matched_;
};

}  // namespace supra

#endif  // SUPRA_ENGINE_SERVING_STOP_MATCHER_H_

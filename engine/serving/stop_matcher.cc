#include "engine/serving/stop_matcher.h"

#include <algorithm>

namespace supra {

std::string StopMatcher::Push(std::string_view text) {
  if (matched_) return "";
  held_.append(text);
  // Text already sent never ends with a possible stop prefix (it was held),
  // so a match can only start inside held_.
  size_t best = std::string::npos;
  for (size_t i = 0; i < stops_.size(); ++i) {
    if (stops_[i].empty()) continue;
    const size_t at = held_.find(stops_[i]);
    if (at < best) {
      best = at;
      matched_ = i;
    }
  }
  if (matched_) {
    std::string out = held_.substr(0, best);
    held_.clear();
    return out;
  }
  // Hold the longest suffix that is a proper prefix of some stop string.
  size_t keep = 0;
  for (const std::string& stop : stops_) {
    const size_t max_len = std::min(stop.size() - (stop.empty() ? 0 : 1), held_.size());
    for (size_t len = max_len; len > keep; --len) {
      if (std::string_view(held_).substr(held_.size() - len) == std::string_view(stop).substr(0, len)) {
        keep = len;
        break;
      }
    }
  }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopMatcher::Flush() {
  std::string out;
  out.swap(held_);
  return out;
}

}  // namespace supra

#include "engine/sampling/penalties.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"

namespace supra {

absl::Status ApplyPenalties(const SamplingParams& params, absl::Span<const int32_t> history, absl::Span<float> logits) {
  if (params.repetition_penalty == 1.0f && params.presence_penalty == 0.0f && params.frequency_penalty == 0.0f) {
    return absl::OkStatus();
  }
  const size_t window_size = std::min(history.size(), static_cast<size_t>(params.penalty_window));
  // Sorting a copy groups equal ids; the window is short (hundreds), so this
  // beats a vocabulary-sized count table.
  std::vector<int32_t> window(history.end() - static_cast<std::ptrdiff_t>(window_size), history.end());
  std::sort(window.begin(), window.end());
  const auto vocab = static_cast<int64_t>(logits.size());
  if (!window.empty() && (window.front() < 0 || window.back() >= vocab)) {
    const int32_t bad = window.front() < 0 ? window.front() : window.back();
    return absl::InvalidArgumentError(
        absl::StrCat("penalty window holds token id ", bad, ", outside the vocabulary [0, ", vocab, ")"));
  }
  constexpr float kMax = std::numeric_limits<float>::max();
  for (size_t i = 0; i < window.size();) {
    const int32_t id = window[i];
    size_t j = i;
    while (j < window.size() && window[j] == id) ++j;
    const auto count = static_cast<double>(j - i);
    i = j;

    float& l = logits[id];
    if (std::isinf(l)) continue;  // -inf stays excluded (+inf is the caller's to reject)
    double v =
        l > 0 ? static_cast<double>(l) / params.repetition_penalty : static_cast<double>(l) * params.repetition_penalty;
    v -= params.presence_penalty + params.frequency_penalty * count;
    l = static_cast<float>(std::clamp(v, -static_cast<double>(kMax), static_cast<double>(kMax)));
  }
  return absl::OkStatus();
}

}  // namespace supra

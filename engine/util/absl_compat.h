// Debian's Abseil 20220623 is built with its own absl::string_view and
// absl::optional (ABSL_OPTION_USE_STD_STRING_VIEW 0), so std::string_view does
// not convert to absl::AlphaNum or to the absl::Status constructors. Project
// code keeps std::string_view in its interfaces and crosses into Abseil here.
#ifndef SUPRA_ENGINE_UTIL_ABSL_COMPAT_H_
#define SUPRA_ENGINE_UTIL_ABSL_COMPAT_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace supra {

inline absl::string_view ToAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace supra

#endif  // SUPRA_ENGINE_UTIL_ABSL_COMPAT_H_

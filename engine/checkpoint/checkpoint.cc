#include "engine/checkpoint/checkpoint.h"

#include "absl/strings/str_cat.h"

namespace supra {

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

const TensorView* Checkpoint::Find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

absl::Status Checkpoint::Add(std::string name, TensorView view) {
  if (tensors_.contains(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "' appears twice (in ", tensors_[name].source, " and ", view.source, ")"));
  }
  tensors_.emplace(std::move(name), std::move(view));
  return absl::OkStatus();
}

}  // namespace supra

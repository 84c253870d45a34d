#include "client/interrupter.h"

#include "grpcpp/client_context.h"

namespace supra::client {

void Interrupter::Interrupt() {
  std::lock_guard<std::mutex> lock(mu_);
  interrupted_.store(true, std::memory_order_release);
  if (context_ != nullptr) context_->TryCancel();
}

void Interrupter::Attach(grpc::ClientContext* context) {
  std::lock_guard<std::mutex> lock(mu_);
  context_ = context;
  // An interrupt that came before the call started cancels it right away.
  if (interrupted_.load(std::memory_order_acquire)) context_->TryCancel();
}

void Interrupter::Detach() {
  std::lock_guard<std::mutex> lock(mu_);
  context_ = nullptr;
}

ScopedCancellation::ScopedCancellation(Interrupter* interrupter, grpc::ClientContext* context)
    : interrupter_(interrupter) {
  if (interrupter_ != nullptr) interrupter_->Attach(context);
}

ScopedCancellation::~ScopedCancellation() {
  if (interrupter_ != nullptr) interrupter_->Detach();
}

}  // namespace supra::client

#include "server/engine/compute_gate.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/engine/thread_pool.h"

namespace garden {

absl::StatusOr<ComputeGate::Hold> ComputeGate::Enter(
    const std::function<bool()>& cancelled) {
  if (absl::Status s = Acquire(cancelled); !s.ok()) return s;
  return Hold(this);
}

void ComputeGate::Hold::Pause() {
  if (gate_ != nullptr && held_) {
    gate_->Release();
    held_ = false;
  }
}

absl::Status ComputeGate::Hold::Resume(const std::function<bool()>& cancelled) {
  if (gate_ == nullptr || held_) return absl::OkStatus();
  absl::Status status = gate_->Acquire(cancelled);
  held_ = status.ok();
  return status;
}

absl::Status ComputeGate::Hold::Reserve(uint64_t bytes,
                                       const std::function<bool()>& cancelled) {
  ComputeGate& gate = *gate_;
  if (gate.budget_ == 0 || bytes == 0) return absl::OkStatus();
  if (bytes > gate.budget_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the request needs about ", bytes, " bytes of working memory, more than "
        "this server's --request-memory-bytes ", gate.budget_,
        " for all requests together; ask for less (a shorter text, fewer tokens)"));
  }
  const bool had_slot = held_;
  Pause();
  {
    std::unique_lock lock(gate.mu_);
    while (gate.reserved_ + bytes > gate.budget_) {
      gate.changed_.wait_for(lock, std::chrono::milliseconds(50));
      if (gate.reserved_ + bytes <= gate.budget_) break;
      if (cancelled && cancelled()) {
        return absl::CancelledError("cancelled while waiting for working memory");
      }
    }
    gate.reserved_ += bytes;
    bytes_ += bytes;
  }
  return had_slot ? Resume(cancelled) : absl::OkStatus();
}

void ComputeGate::Unreserve(uint64_t bytes) {
  {
    std::lock_guard lock(mu_);
    reserved_ -= bytes;
  }
  changed_.notify_all();
}

uint64_t ComputeGate::reserved() const {
  std::lock_guard lock(mu_);
  return reserved_;
}

absl::Status ComputeGate::Acquire(const std::function<bool()>& cancelled) {
  std::unique_lock lock(mu_);
  if (slots_ == 0) {
    ++running_;
    return absl::OkStatus();
  }
  const uint64_t ticket = next_ticket_++;
  waiting_.Push(CurrentPoolLane(), ticket);
  granted_[ticket] = false;
  GrantLocked();
  // Polled: the cancellation is a gRPC context's, which cannot notify us.
  while (!granted_[ticket]) {
    changed_.wait_for(lock, std::chrono::milliseconds(50));
    if (granted_[ticket]) break;
    if (cancelled && cancelled()) {
      waiting_.Erase(ticket);
      granted_.erase(ticket);
      return absl::CancelledError("cancelled while waiting for a compute slot");
    }
  }
  granted_.erase(ticket);
  return absl::OkStatus();
}

void ComputeGate::Release() {
  {
    std::lock_guard lock(mu_);
    --running_;
    GrantLocked();
  }
  changed_.notify_all();
}

void ComputeGate::GrantLocked() {
  bool granted = false;
  while (running_ < slots_ && !waiting_.empty()) {
    const uint64_t ticket = waiting_.Take();
    granted_[ticket] = true;
    ++running_;
    granted = true;
  }
  if (granted) changed_.notify_all();
}

uint32_t ComputeGate::running() const {
  std::lock_guard lock(mu_);
  return running_;
}

size_t ComputeGate::waiting() const {
  std::lock_guard lock(mu_);
  return waiting_.size();
}

}  // namespace garden

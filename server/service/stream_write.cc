#include "server/service/stream_write.h"

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "spdlog/spdlog.h"

namespace garden {
namespace {

// Writes in progress and when each must be done; one thread cancels the
// late ones.
class Watchdog {
 public:
  void SetTimeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }
  std::chrono::milliseconds timeout() const { return timeout_.load(); }

  void Watch(grpc::ServerContext* context) {
    std::lock_guard lock(mu_);
    if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
    writes_[context] = std::chrono::steady_clock::now() + timeout_.load();
  }
  void Unwatch(grpc::ServerContext* context) {
    std::lock_guard lock(mu_);
    writes_.erase(context);
  }

 private:
  void Run() {
    std::unique_lock lock(mu_);
    for (;;) {
      wake_.wait_for(lock, std::chrono::milliseconds(100));
      const auto now = std::chrono::steady_clock::now();
      for (auto it = writes_.begin(); it != writes_.end();) {
        if (it->second > now) {
          ++it;
          continue;
        }
        // Under mu_: the handler's Unwatch (before its context goes away)
        // waits for this.
        spdlog::warn("a stream to {} is cancelled: its client read nothing for {} ms "
                     "(--stream-idle-timeout)",
                     it->first->peer(), timeout_.load().count());
        it->first->TryCancel();
        it = writes_.erase(it);
      }
    }
  }

  std::atomic<std::chrono::milliseconds> timeout_{std::chrono::milliseconds(0)};
  std::mutex mu_;
  std::condition_variable wake_;
  std::map<grpc::ServerContext*, std::chrono::steady_clock::time_point> writes_;
  std::thread thread_;
};

Watchdog& TheWatchdog() {
  static auto* watchdog = new Watchdog();  // never destroyed: its thread runs to exit
  return *watchdog;
}

}  // namespace

void SetStreamIdleTimeout(std::chrono::milliseconds timeout) {
  TheWatchdog().SetTimeout(timeout);
}

ScopedStreamWrite::ScopedStreamWrite(grpc::ServerContext* context)
    : context_(context),
      watched_(TheWatchdog().timeout().count() > 0) {
  if (watched_) TheWatchdog().Watch(context_);
}

ScopedStreamWrite::~ScopedStreamWrite() {
  if (watched_) TheWatchdog().Unwatch(context_);
}

}  // namespace garden

// gardend's metrics, served at http://ADDR/metrics (--metrics-listen ADDR) in
// Prometheus text format:
//
//   garden_requests_total{method,code}          RPCs that ended, by outcome
//   garden_request_duration_seconds{method}     their latency (histogram)
//   garden_active_streams{user}                 RPCs in flight per token name
//                                               ("anonymous" without tokens)
//   garden_disk_bytes_read_total                bytes read from checkpoint and
//                                               cache files
//   garden_hub_bytes_received_total             bytes received from the Hub
//   garden_cache_{hits,misses}_total{cache}     per cache: "models" (loaded
//   garden_cache_bytes{cache}                   models), "hub_extracts" (tensor
//   garden_cache_entries{cache}                 ranges fetched from the Hub)
//   garden_cache_evictions_total{cache}
//   garden_pool_queue_length                    tasks waiting for a worker
//   garden_pool_threads                         the pool's workers
//   garden_auth_refused_total                   calls refused for a missing
//                                               or unknown token
//
// Request metrics come from the service (it is the RpcObserver); the rest
// is read from the stores, caches and pool when /metrics is scraped.
#ifndef GARDEN_SERVER_METRICS_SERVER_METRICS_H_
#define GARDEN_SERVER_METRICS_SERVER_METRICS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/engine/thread_pool.h"
#include "server/security/token_auth.h"
#include "server/service/rpc_log.h"
#include "server/store/hub_checkpoints.h"
#include "server/store/model_cache.h"

namespace garden {

class ServerMetrics {
 public:
  // What is read at each scrape; each must outlive the metrics. `hub` may
  // be null.
  struct Sources {
    const ModelCache* models = nullptr;
    const ThreadPool* pool = nullptr;
    std::shared_ptr<const HubCheckpoints> hub;
    std::shared_ptr<const TokenAuth> tokens;  // null without --auth-tokens
  };

  // Serves /metrics on `listen` ("127.0.0.1:9464", "[::1]:9464"; port 0
  // picks one). INVALID_ARGUMENT for an address without a port,
  // UNAVAILABLE naming it if it cannot be bound.
  static absl::StatusOr<std::unique_ptr<ServerMetrics>> Serve(
      const std::string& listen, Sources sources);
  ~ServerMetrics();

  // The port /metrics is served on.
  int port() const;
  // Counts the service's RPCs (SetRpcObserver(metrics.observer())).
  RpcObserver* observer();

 private:
  struct Impl;
  explicit ServerMetrics(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace garden

#endif  // GARDEN_SERVER_METRICS_SERVER_METRICS_H_

#include "server/metrics/server_metrics.h"

#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/formats/byte_source.h"
#include "common/net/listen_address.h"
#include "httplib.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace garden {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;

// Seconds: a cached one-step answer takes a millisecond, a 154-step sweep
// over the Hub minutes.
const prometheus::Histogram::BucketBoundaries kLatencyBuckets = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1,     2.5,    5,     10,   30,    60,   120, 300, 600};

std::string UserLabel(std::string_view user) {
  return user.empty() ? "anonymous" : std::string(user);
}

// A counter that follows a running total read from elsewhere.
void Follow(Counter& counter, double total) {
  const double delta = total - counter.Value();
  if (delta > 0) counter.Increment(delta);
}

}  // namespace

struct ServerMetrics::Impl : public RpcObserver {
  explicit Impl(Sources s)
      : sources(std::move(s)),
        registry(std::make_shared<prometheus::Registry>()),
        requests(BuildCounter()
                     .Name("garden_requests_total")
                     .Help("RPCs of the Garden service that ended, by method and status code")
                     .Register(*registry)),
        latency(BuildHistogram()
                    .Name("garden_request_duration_seconds")
                    .Help("how long RPCs of the Garden service took, by method")
                    .Register(*registry)),
        active(BuildGauge()
                   .Name("garden_active_streams")
                   .Help("RPCs in flight (streams and unary calls), by the caller's token name")
                   .Register(*registry)),
        disk_bytes(BuildCounter()
                       .Name("garden_disk_bytes_read_total")
                       .Help("bytes read from checkpoint and cache files")
                       .Register(*registry)
                       .Add({})),
        hub_bytes(BuildCounter()
                      .Name("garden_hub_bytes_received_total")
                      .Help("body bytes received from the Hugging Face Hub")
                      .Register(*registry)
                      .Add({})),
        hits(BuildCounter()
                 .Name("garden_cache_hits_total")
                 .Help("lookups a cache answered")
                 .Register(*registry)),
        misses(BuildCounter()
                   .Name("garden_cache_misses_total")
                   .Help("lookups a cache had to load or fetch for")
                   .Register(*registry)),
        evictions(BuildCounter()
                      .Name("garden_cache_evictions_total")
                      .Help("entries dropped to stay within a cache's budget")
                      .Register(*registry)),
        cache_bytes(BuildGauge()
                        .Name("garden_cache_bytes")
                        .Help("bytes a cache holds")
                        .Register(*registry)),
        cache_entries(BuildGauge()
                          .Name("garden_cache_entries")
                          .Help("entries a cache holds")
                          .Register(*registry)),
        queue(BuildGauge()
                  .Name("garden_pool_queue_length")
                  .Help("tasks waiting for one of the pool's workers")
                  .Register(*registry)
                  .Add({})),
        threads(BuildGauge()
                    .Name("garden_pool_threads")
                    .Help("the worker threads all requests share")
                    .Register(*registry)
                    .Add({})),
        refused(BuildCounter()
                    .Name("garden_auth_refused_total")
                    .Help("calls refused for a missing or unknown token")
                    .Register(*registry)
                    .Add({})) {}

  void Started(std::string_view /*method*/, std::string_view user) override {
    std::lock_guard lock(mu);
    active.Add({{"user", UserLabel(user)}}).Increment();
  }

  void Finished(std::string_view method, std::string_view user,
                absl::StatusCode code, double seconds) override {
    std::lock_guard lock(mu);
    const std::string m(method);
    requests.Add({{"method", m}, {"code", absl::StatusCodeToString(code)}}).Increment();
    latency.Add({{"method", m}}, kLatencyBuckets).Observe(seconds);
    active.Add({{"user", UserLabel(user)}}).Decrement();
  }

  // Reads what the stores, caches and pool hold, then hands out the lot.
  std::vector<prometheus::MetricFamily> Collect() const {
    std::lock_guard lock(mu);
    Follow(disk_bytes, static_cast<double>(LocalFileSource::TotalBytesRead()));
    if (sources.models != nullptr) {
      const ModelCache::Stats s = sources.models->stats();
      Cache("models", s.hits, s.misses, s.bytes, s.models);
      Follow(evictions.Add({{"cache", "models"}}), static_cast<double>(s.evictions));
    }
    if (sources.hub != nullptr) {
      Follow(hub_bytes, static_cast<double>(sources.hub->bytes_received()));
      const ExtractCache::Stats s = sources.hub->extract_stats();
      Cache("hub_extracts", s.hits, s.misses, s.bytes, s.entries);
    }
    if (sources.pool != nullptr) {
      queue.Set(static_cast<double>(sources.pool->queued()));
      threads.Set(static_cast<double>(sources.pool->size()));
    }
    if (sources.tokens != nullptr) {
      Follow(refused, static_cast<double>(sources.tokens->refused()));
    }
    return registry->Collect();
  }

  void Cache(const std::string& name, uint64_t h, uint64_t m, uint64_t bytes,
             uint64_t entries) const {
    Follow(hits.Add({{"cache", name}}), static_cast<double>(h));
    Follow(misses.Add({{"cache", name}}), static_cast<double>(m));
    cache_bytes.Add({{"cache", name}}).Set(static_cast<double>(bytes));
    cache_entries.Add({{"cache", name}}).Set(static_cast<double>(entries));
  }

  const Sources sources;
  mutable std::mutex mu;  // families' Add and the followers' read-then-add
  std::shared_ptr<prometheus::Registry> registry;
  Family<Counter>& requests;
  Family<prometheus::Histogram>& latency;
  Family<Gauge>& active;
  Counter& disk_bytes;
  Counter& hub_bytes;
  Family<Counter>& hits;
  Family<Counter>& misses;
  Family<Counter>& evictions;
  Family<Gauge>& cache_bytes;
  Family<Gauge>& cache_entries;
  Gauge& queue;
  Gauge& threads;
  Counter& refused;
  httplib::Server http;
  int port = 0;
  std::thread serving;  // http's accept loop
};

ServerMetrics::ServerMetrics(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

ServerMetrics::~ServerMetrics() {
  impl_->http.stop();
  if (impl_->serving.joinable()) impl_->serving.join();
}

absl::StatusOr<std::unique_ptr<ServerMetrics>> ServerMetrics::Serve(
    const std::string& listen, Sources sources) {
  auto impl = std::make_shared<Impl>(std::move(sources));
  ASSIGN_OR_RETURN(const HostPort address,
                   ParseHostPort(listen, "--metrics-listen", "127.0.0.1:9464"));
  impl->http.Get("/metrics", [weak = std::weak_ptr<Impl>(impl)](
                                 const httplib::Request&, httplib::Response& response) {
    const std::shared_ptr<Impl> self = weak.lock();
    if (self == nullptr) return;
    response.set_content(prometheus::TextSerializer().Serialize(self->Collect()),
                         "text/plain; version=0.0.4; charset=utf-8");
  });
  impl->port = address.port == 0
                   ? impl->http.bind_to_any_port(address.host)
                   : (impl->http.bind_to_port(address.host, address.port) ? address.port
                                                                          : -1);
  if (impl->port <= 0) {
    return absl::UnavailableError(absl::StrCat(
        "--metrics-listen ", listen, ": cannot listen there (in use, or not "
        "an address of this host)"));
  }
  impl->serving = std::thread([raw = impl.get()] { raw->http.listen_after_bind(); });
  return std::unique_ptr<ServerMetrics>(new ServerMetrics(std::move(impl)));
}

int ServerMetrics::port() const { return impl_->port; }

RpcObserver* ServerMetrics::observer() { return impl_.get(); }

}  // namespace garden

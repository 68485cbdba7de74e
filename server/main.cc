// gardend: serves parameter statistics of checkpoint suites over gRPC.
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"
#include "common/base/process.h"
#include "common/base/status.h"
#include "common/hub/hf_env.h"
#include "common/model/gpt_neox.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "server/engine/thread_pool.h"
#include "server/metrics/server_metrics.h"
#include "common/net/listen_address.h"
#include "server/security/server_credentials.h"
#include "server/service/log_format.h"
#include "server/service/stream_write.h"
#include "server/service/garden_service.h"
#include "server/store/checkpoint_store.h"
#include "server/store/dataset_registry.h"
#include "server/store/model_cache.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace {

constexpr char kUsage[] =
    "gardend --listen 127.0.0.1:0 --port-file F --checkpoints DIR "
    "[--checkpoints DIR2] [--threads N] [--tokenizer FILE] [--device auto] "
    "[--model-cache-bytes N] [--max-new-tokens N] [--dataset NAME=FILE] "
    "[--hub-repo ORG/NAME] [--hub-endpoint URL] [--hf-token-file F] "
    "[--hub-cache DIR] [--hub-cache-bytes N] [--hub-connections N] [--offline] "
    "[--auth-tokens FILE] [--tls-cert F --tls-key F [--tls-client-ca F]] "
    "[--insecure] [--metrics-listen ADDR] [--log-format text|json] "
    "[--max-streams-per-user N] [--max-rpc-threads N] [--max-steps-per-request N] "
    "[--compute-slots N] [--stream-idle-timeout S] [--request-memory-bytes N] [--drain-seconds S]";

struct Flags {
  std::string listen = "127.0.0.1:50051";
  std::string port_file;
  std::vector<std::string> checkpoints;  // repeatable
  int threads = 0;
  std::string log_level = "info";
  std::string tokenizer;
  std::string device = "auto";
  std::string dtype = "float32";
  uint64_t model_cache_bytes = uint64_t{8} << 30;
  uint32_t max_new_tokens = 1024;
  std::vector<std::string> datasets;  // repeatable
  std::vector<std::string> hub_repos;  // repeatable
  std::string hub_endpoint, hf_token_file, hub_cache;
  uint64_t hub_cache_bytes = uint64_t{64} << 30;
  int hub_connections = 8;
  bool offline = false;
  std::string auth_tokens, tls_cert, tls_key, tls_client_ca;
  bool insecure = false;
  std::string metrics_listen;
  uint32_t max_streams_per_user = 0;
  uint32_t max_rpc_threads = 256;
  uint32_t compute_slots = 1;
  uint64_t request_memory_bytes = 0;
  uint32_t max_steps_per_request = 0;
  uint32_t stream_idle_timeout_s = 300;
  uint32_t drain_seconds = 0;
  std::string log_format = "text";
};

// Integers as gardend always read them: surrounding ASCII whitespace
// ignored, decimal, or hexadecimal after "0x", within the type's range.
template <typename T>
bool ParseInteger(const std::string& text, T* out) {
  const absl::string_view t = absl::StripAsciiWhitespace(text);
  const bool hex = t.size() >= 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X');
  return hex ? absl::SimpleHexAtoi(t, out) : absl::SimpleAtoi(t, out);
}

// An integer flag, read with ParseInteger; `name` as error messages spell it.
template <typename T>
void AddInteger(CLI::App& app, const std::string& names,
                const std::string& name, T* value, const std::string& help) {
  app.add_option_function<std::string>(
         names,
         [value, name](const std::string& text) {
           if (!ParseInteger(text, value)) {
             throw CLI::ValidationError(absl::StrCat(
                 "Illegal value '", text, "' specified for flag '", name,
                 "'"));
           }
         },
         help)
      ->type_name("INT")
      ->default_str(std::to_string(*value));
}

// Hub repositories as checkpoint sources; the environment variables of the
// Hugging Face tools apply (common/hub/hf_env.h), these flags override them.
void AddHubFlags(CLI::App& app, Flags& f) {
  app.add_option("--hub-repo,--hub_repo", f.hub_repos,
                 "a Hugging Face Hub model repository to serve, ORG/NAME "
                 "(e.g. EleutherAI/pythia-70m-deduped); repeatable")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->allow_extra_args(false);
  app.add_option("--hub-endpoint,--hub_endpoint", f.hub_endpoint,
                 "the Hub's URL (default $HF_ENDPOINT, else "
                 "https://huggingface.co)");
  app.add_option("--hf-token-file,--hf_token_file", f.hf_token_file,
                 "file holding the Hub token (default $HF_TOKEN, else "
                 "$HF_TOKEN_PATH, else $HF_HOME/token)");
  app.add_option("--hub-cache,--hub_cache", f.hub_cache,
                 "the Hugging Face cache (default $HF_HUB_CACHE, else "
                 "$HF_HOME/hub)");
  AddInteger(app, "--hub-cache-bytes,--hub_cache_bytes", "hub_cache_bytes",
             &f.hub_cache_bytes,
             "cap on Garden's tensor extracts in the cache, in bytes (LRU)");
  AddInteger(app, "--hub-connections,--hub_connections", "hub_connections",
             &f.hub_connections,
             "transfers from the Hub in flight at once (1..1024)");
  app.add_flag("--offline", f.offline,
               "never touch the network (also HF_HUB_OFFLINE=1): serve what "
               "the caches hold");
}

// Who may call, and over what (server/security).
void AddSecurityFlags(CLI::App& app, Flags& f) {
  app.add_option("--auth-tokens,--auth_tokens", f.auth_tokens,
                 "admit only callers with a token of this file (one "
                 "NAME:SHA256-OF-TOKEN per line, from `garden token new "
                 "NAME`); re-read on SIGHUP");
  app.add_option("--tls-cert,--tls_cert", f.tls_cert,
                 "serve TLS with this PEM certificate (chain)");
  app.add_option("--tls-key,--tls_key", f.tls_key,
                 "the PEM private key of --tls-cert");
  app.add_option("--tls-client-ca,--tls_client_ca", f.tls_client_ca,
                 "mutual TLS: clients must present a certificate this PEM CA "
                 "signed");
  app.add_flag("--insecure", f.insecure,
               "allow plaintext on an address other hosts can reach (for "
               "--listen and --metrics-listen)");
  app.add_option("--metrics-listen,--metrics_listen", f.metrics_listen,
                 "serve Prometheus metrics at http://ADDR/metrics (port 0 "
                 "picks one; the log says which)");
  AddInteger(app, "--max-streams-per-user,--max_streams_per_user",
             "max_streams_per_user", &f.max_streams_per_user,
             "RPCs one caller (token name, else address) may have in flight; "
             "0: no limit");
  AddInteger(app, "--max-rpc-threads,--max_rpc_threads", "max_rpc_threads",
             &f.max_rpc_threads,
             "threads gRPC may run handlers and polling in (a call in flight "
             "holds one); calls past it are RESOURCE_EXHAUSTED \"Server "
             "Threadpool Exhausted\"; at least 4, or 0: no limit");
  app.add_option("--log-format,--log_format", f.log_format,
                 "text, or json: one JSON object per line")
      ->capture_default_str();
}

void AddFlags(CLI::App& app, Flags& f) {
  // A repeated flag takes its last value; --checkpoints and --dataset
  // collect every value, one per occurrence.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--listen", f.listen,
                 "address to serve on; port 0 picks a free one")
      ->capture_default_str();
  app.add_option("--port-file,--port_file", f.port_file,
                 "write the bound port here once serving (atomically)");
  app.add_option("--checkpoints", f.checkpoints,
                 "a checkpoint root (plain layout or Hugging Face hub cache); "
                 "repeat the flag for several roots")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->allow_extra_args(false);
  AddInteger(app, "--threads", "threads", &f.threads,
             "worker threads shared by all requests (0: one per core)");
  app.add_option("--log-level,--log_level", f.log_level,
                 "trace, debug, info, warn, error")
      ->capture_default_str();
  app.add_option("--tokenizer", f.tokenizer,
                 "tokenizer.json for checkpoints that have none beside their "
                 "weights");
  app.add_option("--device", f.device,
                 "where models run: auto, cpu, cuda, cuda:N")
      ->capture_default_str();
  app.add_option("--dtype", f.dtype,
                 "model compute dtype: float32; float16 or bfloat16 on CUDA")
      ->capture_default_str();
  AddInteger(app, "--model-cache-bytes,--model_cache_bytes",
             "model_cache_bytes", &f.model_cache_bytes,
             "budget for cached models' parameters, in bytes (LRU)");
  AddInteger(app, "--max-new-tokens,--max_new_tokens", "max_new_tokens",
             &f.max_new_tokens, "limit of Generate's max_new_tokens");
  AddInteger(app, "--max-steps-per-request,--max_steps_per_request",
             "max_steps_per_request", &f.max_steps_per_request,
             "steps one request may select; 0: no limit");
  AddInteger(app, "--drain-seconds,--drain_seconds", "drain_seconds",
             &f.drain_seconds,
             "on SIGTERM, seconds open streams get to finish before they are "
             "cancelled (new calls are refused at once); 0: cancel them now");
  AddInteger(app, "--stream-idle-timeout,--stream_idle_timeout",
             "stream_idle_timeout", &f.stream_idle_timeout_s,
             "seconds a stream may wait on a client that reads nothing "
             "before it is cancelled; 0: forever");
  AddInteger(app, "--request-memory-bytes,--request_memory_bytes",
             "request_memory_bytes", &f.request_memory_bytes,
             "working memory generate, logits and attention may reserve, all "
             "requests together (estimated; more waits, or is refused when one "
             "request alone needs more); 0: no budget");
  AddInteger(app, "--compute-slots,--compute_slots", "compute_slots",
             &f.compute_slots,
             "model computations at once (each uses every --threads core; "
             "callers take turns); 0: no limit");
  app.add_option("--dataset", f.datasets,
                 "an evaluation dataset, NAME=FILE.jsonl (one {\"text\": ...} "
                 "per line, as lambada_openai); repeat the flag for several")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->allow_extra_args(false);
  AddHubFlags(app, f);
  AddSecurityFlags(app, f);
}

// The flags, or the exit status: 1 for a bad flag (or --help), as gardend
// has always exited. Words that are not flags are ignored, and so is
// everything after "--"; "--flag=" gives the flag an empty value.
std::variant<Flags, int> ParseFlags(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc && std::string_view(argv[i]) != "--"; ++i) {
    const std::string_view arg = argv[i];
    // CLI11 reads "--flag=" as "--flag" taking the next word: split it.
    if (arg.size() > 3 && arg.substr(0, 2) == "--" && arg.back() == '=') {
      args.emplace_back(arg.substr(0, arg.size() - 1));
      args.emplace_back();
    } else {
      args.emplace_back(arg);
    }
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes them last first
  Flags flags;
  const std::string program = std::filesystem::path(argv[0]).filename();
  CLI::App app{absl::StrCat(program, ": ", kUsage), program};
  app.set_help_flag("--help", "print this help and exit");
  bool version = false;
  app.add_flag("--version", version, "print the program's name and exit");
  app.allow_extras();
  AddFlags(app, flags);
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 1;
  } catch (const CLI::ArgumentMismatch& e) {
    // "--listen: 1 required TEXT missing"
    const std::string what = e.what();
    std::cerr << "ERROR: Missing the value for the flag '"
              << what.substr(2, what.find(':') - 2) << "'\n";
    return 1;
  } catch (const CLI::ParseError& e) {
    std::cerr << "ERROR: " << e.what() << "\n";
    return 1;
  }
  if (version) {
    std::cout << program << "\n";
    return 0;
  }
  for (const std::string& extra : app.remaining()) {
    if (extra.size() > 1 && extra[0] == '-') {
      // Named as Abseil's flags named it: no dashes, '_' for '-' within.
      const size_t dashes = extra[1] == '-' ? 2 : 1;
      std::string name = extra.substr(dashes, extra.find('=') - dashes);
      std::replace(name.begin(), name.end(), '-', '_');
      std::cerr << "ERROR: Unknown command line flag '" << name << "'\n";
      return 1;
    }
  }
  return flags;
}

bool WritePortFile(const std::string& path, int port) {
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  {
    std::ofstream out(tmp);
    out << port << "\n";
    if (!out.flush()) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

int g_signal_pipe[2] = {-1, -1};

void OnStopSignal(int sig) {
  const unsigned char byte = static_cast<unsigned char>(sig);
  [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &byte, 1);
}

// SIGTERM, SIGINT, SIGHUP and SIGUSR1 go through a handler that writes to a
// pipe, which a waiting thread reads: libraries (OpenBLAS) start threads
// before main, so blocking the signals for sigwait cannot cover every
// thread. SIGPIPE never kills the server.
bool InstallSignals() {
  if (pipe(g_signal_pipe) != 0) return false;
  struct sigaction action = {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  for (const int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) {
    sigaction(sig, &action, nullptr);
  }
  signal(SIGPIPE, SIG_IGN);
  return true;
}

// The next signal from the pipe; SIGTERM if the pipe fails (it never
// should: the server then stops rather than spin).
int NextSignal() {
  unsigned char sig = 0;
  ssize_t n = 0;
  do {
    n = read(g_signal_pipe[0], &sig, 1);
  } while (n < 0 && errno == EINTR);
  return n == 1 ? sig : SIGTERM;
}

// Until SIGTERM or SIGINT: SIGHUP re-reads the token file, SIGUSR1 is
// logged. Returns the stopping signal.
int HandleSignalsUntilStop(garden::TokenAuth* tokens) {
  for (;;) {
    const int sig = NextSignal();
    if (sig == SIGTERM || sig == SIGINT) return sig;
    if (sig == SIGHUP && tokens != nullptr) {
      absl::StatusOr<size_t> n = tokens->Reload();
      if (n.ok()) {
        spdlog::info("SIGHUP: {} tokens from {}", *n, tokens->path());
      } else {
        spdlog::error("SIGHUP: {}; the previous tokens stay in force",
                      n.status().ToString());
      }
    } else {
      spdlog::info("signal {} ignored (SIGHUP re-reads --auth-tokens, SIGTERM "
                   "stops)",
                   sig);
    }
  }
}

// Serves until SIGTERM or SIGINT; the exit status. Besides the Garden
// service: the standard health service (SERVING while serving, NOT_SERVING
// once stopping) and server reflection, behind the same credentials.
int Serve(const Flags& flags, const garden::ListenSecurity& security,
          std::shared_ptr<grpc::ServerCredentials> credentials,
          garden::GardenService& service, int threads) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  int port = 0;
  grpc::ServerBuilder builder;
  if (flags.max_rpc_threads > 0) {
    // The synchronous server takes a thread per call in flight; the quota
    // bounds them (and refuses calls past it) rather than the kernel.
    grpc::ResourceQuota quota("gardend");
    quota.SetMaxThreads(static_cast<int>(flags.max_rpc_threads));
    builder.SetResourceQuota(quota);
  }
  builder.AddListeningPort(flags.listen, std::move(credentials), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    spdlog::error("cannot listen on {}", flags.listen);
    return 1;
  }
  spdlog::info("serving on port {} with {} threads, {}, roots: {}", port,
               threads, garden::DescribeSecurity(security),
               fmt::join(flags.checkpoints, ", "));
  server->GetHealthCheckService()->SetServingStatus(true);
  if (!flags.port_file.empty() && !WritePortFile(flags.port_file, port)) {
    spdlog::error("cannot write the port file {}", flags.port_file);
    server->Shutdown();
    return 1;
  }
  std::thread waiter([&] {
    const int sig = HandleSignalsUntilStop(security.tokens.get());
    server->GetHealthCheckService()->SetServingStatus(false);
    // New calls are refused at once; calls in flight have --drain-seconds to
    // finish, then are cancelled (handlers see IsCancelled() and get a moment
    // to return).
    if (flags.drain_seconds > 0) {
      spdlog::info("signal {}: shutting down, letting open streams finish for up to {} s",
                   sig, flags.drain_seconds);
    } else {
      spdlog::info("signal {}: shutting down, cancelling open streams", sig);
    }
    server->Shutdown(std::chrono::system_clock::now() +
                     std::chrono::seconds(flags.drain_seconds) +
                     std::chrono::milliseconds(200));
  });
  server->Wait();
  waiter.join();
  // A port file names a live server only.
  if (!flags.port_file.empty()) std::filesystem::remove(flags.port_file);
  spdlog::info("stopped");
  return 0;
}

// The folders whose paths clients see root-relative: the store's roots (as
// it resolved them, which is how its messages name files) and the Hub cache,
// as given (made absolute) and as resolved.
std::vector<std::string> PrivateRoots(const garden::CheckpointStore& store,
                                      const garden::HubCheckpoints* hub) {
  std::vector<std::string> roots = store.roots();
  if (hub != nullptr) {
    std::error_code ec;
    for (const auto& p : {std::filesystem::absolute(hub->cache_dir(), ec),
                          std::filesystem::weakly_canonical(hub->cache_dir(), ec)}) {
      std::string s = p.lexically_normal().string();
      while (s.size() > 1 && s.back() == '/') s.pop_back();
      if (!s.empty() && s != "/") roots.push_back(s);
    }
  }
  return roots;
}

// The Hub repositories' checkpoints, or null when there are none.
absl::StatusOr<std::shared_ptr<garden::HubCheckpoints>> OpenHub(
    const Flags& flags) {
  if (flags.hub_repos.empty()) return nullptr;
  ASSIGN_OR_RETURN(const garden::HfSettings hf,
                   garden::ResolveHfSettings({.endpoint = flags.hub_endpoint,
                                              .token_file = flags.hf_token_file,
                                              .cache_dir = flags.hub_cache,
                                              .offline = flags.offline}));
  spdlog::info("hub: {} ({}), cache {}, token {}", hf.endpoint,
               hf.offline ? "offline" : "online", hf.cache_dir,
               hf.token.empty() ? "none" : absl::StrCat("from ", hf.token_source));
  garden::HubCheckpoints::Options options;
  options.repos = flags.hub_repos;
  options.client.endpoint = hf.endpoint;
  options.client.token = hf.token;
  options.client.max_connections = flags.hub_connections;
  options.cache_dir = hf.cache_dir;
  options.extract_bytes = flags.hub_cache_bytes;
  options.offline = hf.offline;
  ASSIGN_OR_RETURN(std::unique_ptr<garden::HubCheckpoints> hub,
                   garden::HubCheckpoints::Open(std::move(options)));
  return std::shared_ptr<garden::HubCheckpoints>(std::move(hub));
}

}  // namespace

int main(int argc, char** argv) {
  garden::EnsurePassiveOpenMP(argv);
  garden::LimitMallocArenas(2);
  auto parsed = ParseFlags(argc, argv);
  if (const int* status = std::get_if<int>(&parsed)) return *status;
  const Flags& flags = std::get<Flags>(parsed);

  absl::StatusOr<garden::LogFormat> log_format =
      garden::ParseLogFormat(flags.log_format);
  if (!log_format.ok()) {
    std::cerr << "ERROR: " << log_format.status().message() << "\n";
    return 1;
  }
  auto logger = *log_format == garden::LogFormat::kJson
                    ? spdlog::stderr_logger_mt("gardend")
                    : spdlog::stderr_color_mt("gardend");
  garden::UseLogFormat(*logger, *log_format);
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(flags.log_level));

  if (flags.checkpoints.empty() && flags.hub_repos.empty()) {
    spdlog::error("no --checkpoints root given (nor a --hub-repo)");
    return 2;
  }
  // gRPC's pollers take two of them; fewer than 4 would leave no room to serve.
  if (flags.max_rpc_threads > 0 && flags.max_rpc_threads < 4) {
    spdlog::error("--max-rpc-threads {} is below 4 (0: no limit)", flags.max_rpc_threads);
    return 2;
  }
  garden::ListenSecurity security{.address = flags.listen,
                                  .tls_cert = flags.tls_cert,
                                  .tls_key = flags.tls_key,
                                  .tls_client_ca = flags.tls_client_ca,
                                  .insecure = flags.insecure,
                                  .tokens = nullptr};
  if (!flags.auth_tokens.empty()) {
    auto tokens = garden::TokenAuth::Open(flags.auth_tokens);
    if (!tokens.ok()) {
      spdlog::error("--auth-tokens {}", std::string(tokens.status().message()));
      return 2;
    }
    security.tokens = *std::move(tokens);
  }
  // Checked before the store is scanned: a mistake here fails at once.
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      garden::MakeServerCredentials(security);
  if (!credentials.ok()) {
    spdlog::error("{}", std::string(credentials.status().message()));
    return 2;
  }
  if (!flags.metrics_listen.empty() && !flags.insecure &&
      !garden::IsLoopbackAddress(flags.metrics_listen)) {
    spdlog::error(
        "--metrics-listen {} is reachable from other hosts, and /metrics has "
        "neither TLS nor tokens (it names users): listen on loopback, or give "
        "--insecure",
        flags.metrics_listen);
    return 2;
  }
  auto hub = OpenHub(flags);
  if (!hub.ok()) {
    spdlog::error("{}", hub.status().ToString());
    return 2;
  }
  const std::shared_ptr<const garden::HubCheckpoints> hub_for_metrics = *hub;
  auto store = garden::CheckpointStore::Open(
      {.roots = flags.checkpoints, .hub = *std::move(hub)});
  if (!store.ok()) {
    spdlog::error("{}", store.status().ToString());
    return 2;
  }
  for (const auto& m : (*store)->ListModels("")) {
    spdlog::info("model {} ({}): {} steps", m.key.Name(), m.layout,
                 m.steps.size());
  }
  auto datasets = garden::DatasetRegistry::Open({.specs = flags.datasets});
  if (!datasets.ok()) {
    spdlog::error("{}", datasets.status().ToString());
    return 2;
  }
  for (const auto& d : (*datasets)->List()) {
    spdlog::info("dataset {}: {} examples from {}", d->name, d->texts.size(),
                 d->path);
  }
  // Every connection and open checkpoint is a descriptor: take what the
  // hard limit allows (Debian's soft default is 1024).
  if (struct rlimit files; getrlimit(RLIMIT_NOFILE, &files) == 0 &&
                           files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  if (!InstallSignals()) {
    spdlog::error("cannot create the signal pipe");
    return 1;
  }

  const int threads =
      flags.threads > 0
          ? flags.threads
          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // Declared after the store and before the server: destroyed before the
  // store, so no task outlives what it reads.
  garden::ThreadPool pool(threads);
  garden::SetComputeThreads(threads);
  garden::ModelCache models(**store,
                            {.capacity_bytes = flags.model_cache_bytes,
                             .device = flags.device,
                             .dtype = flags.dtype,
                             .fallback_tokenizer = flags.tokenizer});
  garden::RpcPolicy policy{.max_streams_per_user = flags.max_streams_per_user,
                           .max_steps_per_request = flags.max_steps_per_request,
                           .private_roots = PrivateRoots(**store, hub_for_metrics.get())};
  std::unique_ptr<garden::ServerMetrics> metrics;
  if (!flags.metrics_listen.empty()) {
    auto served = garden::ServerMetrics::Serve(
        flags.metrics_listen,
        {.models = &models,
         .pool = &pool,
         .hub = hub_for_metrics,
         .tokens = security.tokens});
    if (!served.ok()) {
      spdlog::error("{}", served.status().ToString());
      return 2;
    }
    metrics = *std::move(served);
    policy.observer = metrics->observer();
    spdlog::info("metrics on http://{}:{}/metrics",
                 flags.metrics_listen.substr(0, flags.metrics_listen.rfind(':')),
                 metrics->port());
  }
  garden::SetRpcPolicy(policy);
  garden::SetStreamIdleTimeout(std::chrono::seconds(flags.stream_idle_timeout_s));
  garden::GardenService service(**store, pool, models,
                                {.max_new_tokens = flags.max_new_tokens,
                                 .compute_slots = flags.compute_slots,
                                 .request_memory_bytes = flags.request_memory_bytes},
                                datasets->get());
  return Serve(flags, security, *std::move(credentials), service, threads);
}

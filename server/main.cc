// gardend: serves parameter statistics of checkpoint suites over gRPC.
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/process.h"
#include "common/model/gpt_neox.h"
#include "grpcpp/grpcpp.h"
#include "server/engine/thread_pool.h"
#include "server/service/garden_service.h"
#include "server/store/checkpoint_store.h"
#include "server/store/dataset_registry.h"
#include "server/store/model_cache.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "address to serve on; port 0 picks a free one");
ABSL_FLAG(std::string, port_file, "",
          "write the bound port here once serving (atomically)");
ABSL_FLAG(std::string, checkpoints, "",
          "a checkpoint root (plain layout or Hugging Face hub cache); repeat "
          "the flag for several roots");
ABSL_FLAG(int, threads, 0,
          "worker threads shared by all requests (0: one per core)");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error");
ABSL_FLAG(std::string, tokenizer, "",
          "tokenizer.json for checkpoints that have none beside their weights");
ABSL_FLAG(std::string, device, "auto",
          "where models run: auto, cpu, cuda, cuda:N");
ABSL_FLAG(std::string, dtype, "float32",
          "model compute dtype: float32; float16 or bfloat16 on CUDA");
ABSL_FLAG(uint64_t, model_cache_bytes, uint64_t{8} << 30,
          "budget for cached models' parameters, in bytes (LRU)");
ABSL_FLAG(uint32_t, max_new_tokens, 1024, "limit of Generate's max_new_tokens");
ABSL_FLAG(std::string, dataset, "",
          "an evaluation dataset, NAME=FILE.jsonl (one {\"text\": ...} per "
          "line, as lambada_openai); repeat the flag for several");

namespace {

// Every value of a repeatable flag: absl keeps only the last one.
std::vector<std::string> RepeatedFlag(int argc, char** argv,
                                      const std::string& name) {
  std::vector<std::string> values;
  const std::string eq = "--" + name + "=";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") break;
    if (absl::StartsWith(arg, eq)) {
      values.push_back(arg.substr(eq.size()));
    } else if (arg == "--" + name && i + 1 < argc) {
      values.push_back(argv[++i]);
    }
  }
  return values;
}

// Flags are spelled with dashes (--port-file); absl names them with
// underscores, so dashes inside flag names are rewritten before parsing.
std::vector<char*> DashesToUnderscores(int argc, char** argv,
                                       std::vector<std::string>& storage) {
  storage.assign(argv, argv + argc);
  for (size_t i = 1; i < storage.size(); ++i) {
    std::string& arg = storage[i];
    if (arg == "--") break;
    if (!absl::StartsWith(arg, "--")) continue;
    const size_t end = std::min(arg.find('='), arg.size());
    for (size_t k = 2; k < end; ++k) {
      if (arg[k] == '-') arg[k] = '_';
    }
  }
  std::vector<char*> out;
  for (auto& s : storage) out.push_back(s.data());
  return out;
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

}  // namespace

int g_signal_pipe[2] = {-1, -1};

void OnStopSignal(int sig) {
  const unsigned char byte = static_cast<unsigned char>(sig);
  [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &byte, 1);
}

int main(int argc, char** argv) {
  garden::EnsurePassiveOpenMP(argv);
  absl::SetProgramUsageMessage(
      "gardend --listen 127.0.0.1:0 --port-file F --checkpoints DIR "
      "[--checkpoints DIR2] [--threads N] [--tokenizer FILE] [--device auto] "
      "[--model-cache-bytes N] [--max-new-tokens N] [--dataset NAME=FILE]");
  const std::vector<std::string> roots =
      RepeatedFlag(argc, argv, "checkpoints");
  const std::vector<std::string> dataset_specs =
      RepeatedFlag(argc, argv, "dataset");
  std::vector<std::string> arg_storage;
  std::vector<char*> args = DashesToUnderscores(argc, argv, arg_storage);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());

  auto logger = spdlog::stderr_color_mt("gardend");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(absl::GetFlag(FLAGS_log_level)));

  if (roots.empty()) {
    spdlog::error("no --checkpoints root given");
    return 2;
  }
  auto store = garden::CheckpointStore::Open({.roots = roots});
  if (!store.ok()) {
    spdlog::error("{}", store.status().ToString());
    return 2;
  }
  for (const auto& m : (*store)->ListModels("")) {
    spdlog::info("model {} ({}): {} steps", m.key.Name(), m.layout,
                 m.steps.size());
  }
  auto datasets = garden::DatasetRegistry::Open({.specs = dataset_specs});
  if (!datasets.ok()) {
    spdlog::error("{}", datasets.status().ToString());
    return 2;
  }
  for (const auto& d : (*datasets)->List()) {
    spdlog::info("dataset {}: {} examples from {}", d->name, d->texts.size(),
                 d->path);
  }

  // SIGTERM and SIGINT go through a handler that writes to a pipe, which a
  // waiting thread reads: libraries (OpenBLAS) start threads before main,
  // so blocking the signals for sigwait cannot cover every thread. SIGPIPE
  // never kills the server.
  if (pipe(g_signal_pipe) != 0) {
    spdlog::error("cannot create the signal pipe");
    return 1;
  }
  struct sigaction action = {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);

  int threads = absl::GetFlag(FLAGS_threads);
  if (threads <= 0) threads = std::max(1u, std::thread::hardware_concurrency());
  // Declared after the store and before the server: destroyed before the
  // store, so no task outlives what it reads.
  garden::ThreadPool pool(threads);
  garden::SetComputeThreads(threads);
  garden::ModelCache models(
      **store, {.capacity_bytes = absl::GetFlag(FLAGS_model_cache_bytes),
                .device = absl::GetFlag(FLAGS_device),
                .dtype = absl::GetFlag(FLAGS_dtype),
                .fallback_tokenizer = absl::GetFlag(FLAGS_tokenizer)});
  garden::GardenService service(
      **store, pool, models,
      {.max_new_tokens = absl::GetFlag(FLAGS_max_new_tokens)},
      datasets->get());

  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen),
                           grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    spdlog::error("cannot listen on {}", absl::GetFlag(FLAGS_listen));
    return 1;
  }
  spdlog::info("serving on port {} with {} threads, roots: {}", port, threads,
               fmt::join(roots, ", "));
  const std::string port_file = absl::GetFlag(FLAGS_port_file);
  if (!port_file.empty() && !WritePortFile(port_file, port)) {
    spdlog::error("cannot write the port file {}", port_file);
    server->Shutdown();
    return 1;
  }

  std::thread waiter([&] {
    unsigned char sig = 0;
    while (read(g_signal_pipe[0], &sig, 1) < 0 && errno == EINTR) {
    }
    spdlog::info("signal {}: shutting down, cancelling open streams", sig);
    // Streams see IsCancelled() at once; give handlers a moment to return.
    server->Shutdown(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(200));
  });
  server->Wait();
  waiter.join();
  spdlog::info("stopped");
  return 0;
}

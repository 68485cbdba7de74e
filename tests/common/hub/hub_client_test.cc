// HubClient against the mock Hub (tests/testing/mock_hub.py) on 127.0.0.1:
// listings, metadata, ranges and downloads, redirects and where the token
// goes, retries, resumption, range misbehaviour, gated and missing things,
// an unreachable endpoint. The mock runs in a small Python launcher that
// takes commands (misbehave, stats, clock) as JSON lines on its stdin.
#include "common/hub/hub_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/base/transfer_meter.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/test_files.h"

namespace garden {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAre;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr char kPython[] = "/usr/bin/python3";
constexpr char kToken[] = "hf_garden_test_token_6b1d0c";
constexpr char kRepo[] = "EleutherAI/pythia-micro";
constexpr char kGated[] = "EleutherAI/pythia-micro-gated";
constexpr char kOld[] = "EleutherAI/pythia-micro-old";  // renamed to kNew
constexpr char kNew[] = "EleutherAI/pythia-micro-new";
constexpr char kCorrupt[] = "EleutherAI/pythia-corrupt";
constexpr char kWeights[] = "model.safetensors";
constexpr char kNested[] = "notes/read me+%.txt";

// Serves MockHub and answers one JSON command a line on stdin; EOF stops it.
// Beside it, an "odd" server gives answers no Hub should (bad JSON, missing
// headers, a redirect loop, a body longer than its range).
constexpr char kLauncher[] = R"PY(
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
sys.path.insert(0, sys.argv[1])
import mock_hub
config = json.loads(sys.argv[2])
hub = mock_hub.MockHub(config["repos"], gated=config["gated"], token=config["token"])
for old, new in config["renames"]:
    hub.rename(old, new)
hub.start()

class Odd(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def answer(self, status, headers, body=b""):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    def do_HEAD(self):
        self.do_GET()
    def do_GET(self):
        p = self.path
        if p == "/api/models/odd/json/refs":
            return self.answer(200, [], b"{not json")
        if p == "/api/models/odd/shape/refs":
            return self.answer(200, [], b'{"branches": [{"name": 1}]}')
        if p.startswith("/odd/loop/"):
            return self.answer(302, [("Location", p)])
        if p == "/odd/bare/resolve/main/f.txt":
            return self.answer(200, [("ETag", '"abc"')], b"hello")
        if p == "/odd/lfs/resolve/main/w.bin":
            return self.answer(302, [("Location", "http://127.0.0.1:9/w?X-Amz-Signature=s"),
                                     ("X-Repo-Commit", "c" * 40)])
        if p == "/odd/long":
            return self.answer(206, [("Content-Range", "bytes 0-9/100")], b"x" * 20)
        self.answer(404, [])

odd = ThreadingHTTPServer(("127.0.0.1", 0), Odd)
odd.daemon_threads = True
threading.Thread(target=odd.serve_forever, daemon=True).start()
print(json.dumps({"url": hub.url, "cdn_url": hub.cdn_url,
                  "odd_url": "http://127.0.0.1:%d" % odd.server_address[1]}), flush=True)
ops = {"misbehave": hub.misbehave, "clear": hub.clear_misbehaviour,
       "stats": hub.stats, "reset_stats": hub.reset_stats,
       "branches": hub.branches, "advance_clock": hub.advance_clock}
for line in sys.stdin:
    cmd = json.loads(line)
    try:
        reply = {"ok": True, "result": ops[cmd.pop("op")](**cmd)}
    except Exception as e:
        reply = {"ok": False, "error": repr(e)}
    print(json.dumps(reply), flush=True)
hub.stop()
)PY";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string HexDigest(const EVP_MD* md, std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), digest, &n, md, nullptr);
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

std::string Sha256(std::string_view data) {
  return HexDigest(EVP_sha256(), data);
}

// Git's blob id, the Hub's ETag of a small file.
std::string GitBlobSha1(std::string_view data) {
  return HexDigest(EVP_sha1(), "blob " + std::to_string(data.size()) +
                                   std::string(1, '\0') + std::string(data));
}

// A loopback port nothing listens on (bound, then closed).
int ClosedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// The launcher as a child process, driven through two pipes.
class MockHubProcess {
 public:
  ~MockHubProcess() { Stop(); }

  // Empty on success, else why it did not start.
  std::string Start(const std::vector<std::string>& argv) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0)
      return "pipe failed";
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      std::vector<char*> args;
      for (const std::string& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    to_ = in[1];
    from_ = out[0];
    std::string line;
    if (pid_ < 0 || !ReadLine(&line, 20'000))
      return "the mock Hub did not start";
    const json ready = json::parse(line, nullptr, false);
    if (!ready.is_object() || !ready.contains("url"))
      return "the mock Hub said " + line;
    url_ = ready["url"];
    cdn_url_ = ready["cdn_url"];
    odd_url_ = ready["odd_url"];
    return "";
  }

  // Runs one command; a failure is a test failure (and null comes back).
  json Call(json command) {
    const std::string text = command.dump() + "\n";
    std::string line;
    if (::write(to_, text.data(), text.size()) !=
            static_cast<ssize_t>(text.size()) ||
        !ReadLine(&line, 15'000)) {
      ADD_FAILURE() << "the mock Hub did not answer " << command.dump();
      return nullptr;
    }
    const json reply = json::parse(line, nullptr, false);
    if (!reply.is_object() || !reply.value("ok", false)) {
      ADD_FAILURE() << command.dump() << ": " << line;
      return nullptr;
    }
    return reply["result"];
  }

  void Stop() {
    if (to_ >= 0) ::close(to_);
    to_ = -1;
    if (pid_ > 0) {
      const auto deadline = Clock::now() + std::chrono::seconds(5);
      while (::waitpid(pid_, nullptr, WNOHANG) == 0) {
        if (Clock::now() > deadline) {
          ::kill(pid_, SIGKILL);
          ::waitpid(pid_, nullptr, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    pid_ = -1;
    if (from_ >= 0) ::close(from_);
    from_ = -1;
  }

  const std::string& url() const { return url_; }
  const std::string& cdn_url() const { return cdn_url_; }
  const std::string& odd_url() const { return odd_url_; }

 private:
  bool ReadLine(std::string* line, int timeout_ms) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
      const size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        *line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return true;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - Clock::now());
      pollfd p{from_, POLLIN, 0};
      if (left.count() <= 0 ||
          ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
        return false;
      }
      char chunk[4096];
      const ssize_t n = ::read(from_, chunk, sizeof chunk);
      if (n <= 0) return false;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
  std::string buffer_, url_, cdn_url_, odd_url_;
};

// One request the mock recorded.
struct Request {
  std::string method, port, path, range;
  json status;  // a number, or "dropped"
  uint64_t sent = 0;
};

class HubClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ::signal(SIGPIPE,
             SIG_IGN);  // a dead launcher must fail a test, not kill it
    // Loopback only: no proxy from the environment in between.
    for (const char* name : {"http_proxy", "HTTP_PROXY", "https_proxy",
                             "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
      ::unsetenv(name);
    }
    const std::string source = GARDEN_SOURCE_DIR;
    if (::access(kPython, X_OK) != 0) {
      skip_ = "needs /usr/bin/python3 to run the mock Hub";
      return;
    }
    dir_ = new testing::TempDir();
    for (const auto& [out, seed] :
         {std::pair{"fixtures", 0}, std::pair{"corrupt", 7}}) {
      const std::string command = std::string(kPython) + " " + source +
                                  "/scripts/make_suite.py --out " +
                                  dir_->Join(out) + " --steps 0,8 -q --seed " +
                                  std::to_string(seed);
      if (std::system(command.c_str()) != 0) {
        error_ = "scripts/make_suite.py failed: " + command;
        return;
      }
    }
    std::filesystem::create_directories(StepDir(0) + "/notes");
    testing::WriteFile(StepDir(0) + "/" + kNested, "a nested file\n");
    testing::WriteFile(StepDir(0) + "/empty.txt", "");
    testing::WriteFile(dir_->Join("launcher.py"), kLauncher);
    const std::string suite = dir_->Join("fixtures/pythia-micro");
    const json config = {{"repos",
                          {{kRepo, suite},
                           {kGated, suite},
                           {kOld, suite},
                           {kCorrupt, dir_->Join("corrupt/pythia-micro")}}},
                         {"gated", {kGated}},
                         {"token", kToken},
                         {"renames", json::array({json::array({kOld, kNew})})}};
    hub_ = new MockHubProcess();
    error_ = hub_->Start({kPython, dir_->Join("launcher.py"),
                          source + "/tests/testing", config.dump()});
  }

  static void TearDownTestSuite() {
    delete hub_;
    hub_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_TRUE(error_.empty()) << error_;
    hub_->Call({{"op", "clear"}});
    ResetStats();
  }

  // Forgets the requests so far, once the mock has recorded them all (it
  // records an answer after sending it).
  static void ResetStats() {
    hub_->Call({{"op", "stats"}});
    hub_->Call({{"op", "reset_stats"}});
  }

  static std::string StepDir(int step) {
    return dir_->Join("fixtures/pythia-micro/step" + std::to_string(step));
  }
  static std::string Bytes(const std::string& file, int step = 0) {
    return ReadAll(StepDir(step) + "/" + file);
  }

  // A client of the mock with small backoffs.
  static std::unique_ptr<HubClient> Client(std::string token = "",
                                           int attempts = 4,
                                           int max_backoff_ms = 50,
                                           std::string endpoint = "") {
    HubOptions options;
    options.endpoint = endpoint.empty() ? hub_->url() : endpoint;
    options.token = std::move(token);
    options.max_attempts = attempts;
    options.first_backoff = std::chrono::milliseconds(5);
    options.max_backoff = std::chrono::milliseconds(max_backoff_ms);
    options.connect_timeout = std::chrono::seconds(2);
    options.stall_timeout = std::chrono::seconds(5);
    auto client = HubClient::Create(options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  static void Misbehave(const std::string& kind, int count,
                        const std::string& match, const std::string& port) {
    hub_->Call({{"op", "misbehave"},
                {"kind", kind},
                {"count", count},
                {"match", match},
                {"port", port}});
  }

  static std::vector<Request> Requests() {
    std::vector<Request> out;
    const json stats = hub_->Call({{"op", "stats"}});
    if (!stats.is_object()) return out;
    for (const json& r : stats["requests"]) {
      Request request;
      request.method = r[0].get<std::string>();
      request.port = r[1].get<std::string>();
      request.path = r[2].get<std::string>();
      request.range = r[3].is_string() ? r[3].get<std::string>() : "";
      request.status = r[4];
      request.sent = r[5].get<uint64_t>();
      out.push_back(std::move(request));
    }
    return out;
  }

  static std::map<std::string, std::string> MockBranches(
      const std::string& repo) {
    const json branches = hub_->Call({{"op", "branches"}, {"repo_id", repo}});
    if (!branches.is_object()) return {};
    return branches.get<std::map<std::string, std::string>>();
  }

  static std::string Read(HubClient& client, const HubFileInfo& info,
                          uint64_t offset, size_t n, absl::Status* status) {
    std::string out(n, '\0');
    *status = client.ReadRange(
        info, offset,
        absl::MakeSpan(reinterpret_cast<uint8_t*>(out.data()), n));
    return out;
  }

  static inline testing::TempDir* dir_ = nullptr;
  static inline MockHubProcess* hub_ = nullptr;
  static inline std::string skip_;   // why the tests cannot run here
  static inline std::string error_;  // why the set-up failed
};

// `requests` with the one whose Range starts with `prefix` (or has none, for
// "") first: answers on different connections may be recorded in any order.
std::vector<Request> FirstAskingFrom(std::vector<Request> requests,
                                     const std::string& prefix) {
  std::stable_partition(
      requests.begin(), requests.end(), [&](const Request& r) {
        return prefix.empty() ? r.range.empty() : r.range.rfind(prefix, 0) == 0;
      });
  return requests;
}

// Reads the whole of a file through ReadRange, expecting success.
std::string ReadWhole(HubClient& client, const HubFileInfo& info) {
  std::string out(info.size, '\0');
  const absl::Status status = client.ReadRange(
      info, 0,
      absl::MakeSpan(reinterpret_cast<uint8_t*>(out.data()), out.size()));
  EXPECT_TRUE(status.ok()) << status;
  return out;
}

TEST(UrlTest, EncodeAllLeavesOnlyUnreservedBytes) {
  EXPECT_EQ(UrlEncodeAll("step%31000"), "step%2531000");
  EXPECT_EQ(UrlEncodeAll("refs/pr/1"), "refs%2Fpr%2F1");
  EXPECT_EQ(UrlEncodeAll("aZ09_.~-"), "aZ09_.~-");
  EXPECT_EQ(UrlEncodeAll("a b+?#&\xff"), "a%20b%2B%3F%23%26%FF");
  EXPECT_EQ(UrlEncodeAll(""), "");
}

TEST(UrlTest, ForMessageDropsQueryFragmentAndCredentials) {
  EXPECT_EQ(
      UrlForMessage("https://cdn.example/abc?X-Amz-Signature=s&Expires=1"),
      "https://cdn.example/abc");
  EXPECT_EQ(UrlForMessage("http://u:p@h:1/p?q#f"), "http://h:1/p");
  EXPECT_EQ(UrlForMessage("http://h/p#frag"), "http://h/p");
  EXPECT_EQ(UrlForMessage("https://huggingface.co/x/y/resolve/main/a"),
            "https://huggingface.co/x/y/resolve/main/a");
}

TEST(CreateTest, RejectsEndpointsThatAreNotHttpHostPort) {
  for (const char* endpoint :
       {"", "huggingface.co", "ftp://h", "http://h/path", "http://h?x=1",
        "http://u@h", "http://", "http://h/#f", "file:///etc/passwd"}) {
    HubOptions options;
    options.endpoint = endpoint;
    EXPECT_EQ(HubClient::Create(options).status().code(),
              absl::StatusCode::kInvalidArgument)
        << endpoint;
  }
  HubOptions options;
  options.endpoint = "http://127.0.0.1:1/";
  auto client = HubClient::Create(options);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->options().endpoint, "http://127.0.0.1:1");
}

TEST(CreateTest, RejectsATokenThatCouldBreakAHeaderWithoutQuotingIt) {
  HubOptions options;
  options.endpoint = "http://127.0.0.1:1";
  options.token = "hf_secret\r\nX-Evil: 1";
  const absl::Status status = HubClient::Create(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), Not(HasSubstr("hf_secret")));
}

TEST(CreateTest, MaxConnectionsMustBeInRange) {
  for (int n : {0, -1, 1025}) {
    HubOptions options;
    options.endpoint = "http://127.0.0.1:1";
    options.max_connections = n;
    const absl::Status status = HubClient::Create(options).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << n;
    EXPECT_THAT(status.message(), HasSubstr("max_connections"));
  }
  HubOptions options;
  options.endpoint = "http://127.0.0.1:1";
  options.max_connections = 1;
  EXPECT_TRUE(HubClient::Create(options).ok());
}

TEST(CreateTest, BadNamesAreRefusedBeforeAnyRequest) {
  HubOptions options;
  options.endpoint = "http://127.0.0.1:" + std::to_string(ClosedPort());
  options.max_attempts = 1;
  auto client = HubClient::Create(options);
  ASSERT_TRUE(client.ok());
  HubClient& hub = **client;
  for (const char* repo :
       {"pythia-70m", "EleutherAI/pythia/70m", "EleutherAI/..",
        "EleutherAI/pythia 70m", "/pythia", "EleutherAI/", "Eleuther%41I/x",
        "a/b?c", "a/b..c"}) {
    EXPECT_EQ(hub.ListBranches(repo).status().code(),
              absl::StatusCode::kInvalidArgument)
        << repo;
    EXPECT_EQ(hub.FileInfo(repo, "main", "config.json").status().code(),
              absl::StatusCode::kInvalidArgument)
        << repo;
  }
  for (const char* file : {"", "../config.json", "a//b", "./a", "a/", "/a"}) {
    EXPECT_EQ(hub.FileInfo(kRepo, "main", file).status().code(),
              absl::StatusCode::kInvalidArgument)
        << file;
  }
  EXPECT_EQ(hub.ListFiles(kRepo, "").status().code(),
            absl::StatusCode::kInvalidArgument);
  HubFileInfo info;
  info.size = 10;
  info.download_url = options.endpoint + "/x";
  uint8_t buf[4];
  EXPECT_EQ(hub.ReadRange(info, 8, absl::MakeSpan(buf)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(hub.ReadRange(info, 11, absl::MakeSpan(buf, 0)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(hub.ReadRange(info, 10, absl::MakeSpan(buf, 0)).ok());
  EXPECT_EQ(hub.bytes_received(), 0u);
}

TEST_F(HubClientTest, ListBranchesGivesStepsAndMainWithTheirCommits) {
  auto client = Client();
  auto branches = client->ListBranches(kRepo);
  ASSERT_TRUE(branches.ok()) << branches.status();
  const auto expected = MockBranches(kRepo);
  std::vector<std::string> names;
  for (const HubBranch& b : *branches) {
    names.push_back(b.name);
    EXPECT_EQ(b.commit, expected.at(b.name)) << b.name;
    EXPECT_EQ(b.commit.size(), 40u);
  }
  EXPECT_THAT(names, ElementsAre("main", "step0", "step8"));
  EXPECT_EQ(expected.at("main"), expected.at("step8"));
  EXPECT_NE(expected.at("step0"), expected.at("step8"));
}

TEST_F(HubClientTest, ListFilesGivesTheRevisionsFiles) {
  auto client = Client();
  auto step0 = client->ListFiles(kRepo, "step0");
  ASSERT_TRUE(step0.ok()) << step0.status();
  EXPECT_THAT(*step0, UnorderedElementsAre("config.json", kWeights, kNested,
                                           "empty.txt"));
  auto main = client->ListFiles(kRepo, "main");
  ASSERT_TRUE(main.ok()) << main.status();
  EXPECT_THAT(*main, UnorderedElementsAre("config.json", kWeights));
  // A commit names a revision too.
  auto by_commit = client->ListFiles(kRepo, MockBranches(kRepo).at("step0"));
  ASSERT_TRUE(by_commit.ok()) << by_commit.status();
  EXPECT_EQ(by_commit->size(), 4u);
}

TEST_F(HubClientTest, FileInfoOfASmallFileIsTheHubsOwnAnswer) {
  auto client = Client();
  auto info = client->FileInfo(kRepo, "step0", "config.json");
  ASSERT_TRUE(info.ok()) << info.status();
  const std::string bytes = Bytes("config.json");
  EXPECT_FALSE(info->lfs);
  EXPECT_EQ(info->etag, GitBlobSha1(bytes));
  EXPECT_EQ(info->size, bytes.size());
  EXPECT_EQ(info->commit, MockBranches(kRepo).at("step0"));
  EXPECT_EQ(info->repo, kRepo);
  EXPECT_EQ(info->revision, "step0");
  EXPECT_EQ(info->filename, "config.json");
  EXPECT_EQ(info->download_url,
            hub_->url() + "/EleutherAI/pythia-micro/resolve/step0/config.json");
  EXPECT_EQ(ReadWhole(*client, *info), bytes);

  // '/' is kept in the path, every other byte outside [A-Za-z0-9_.~-] encoded.
  auto nested = client->FileInfo(kRepo, "step0", kNested);
  ASSERT_TRUE(nested.ok()) << nested.status();
  EXPECT_THAT(nested->download_url,
              ::testing::EndsWith("/resolve/step0/notes/read%20me%2B%25.txt"));
  EXPECT_EQ(ReadWhole(*client, *nested), Bytes(kNested));
}

TEST_F(HubClientTest, FileInfoOfAnLfsFileIsTheCdnRedirect) {
  auto client = Client();
  auto info = client->FileInfo(kRepo, "step8", kWeights);
  ASSERT_TRUE(info.ok()) << info.status();
  const std::string bytes = Bytes(kWeights, 8);
  EXPECT_TRUE(info->lfs);
  EXPECT_EQ(info->etag, Sha256(bytes));
  EXPECT_EQ(info->size, bytes.size());
  EXPECT_EQ(info->commit, MockBranches(kRepo).at("step8"));
  EXPECT_THAT(info->download_url,
              StartsWith(hub_->cdn_url() + "/" + info->etag + "?"));
  EXPECT_THAT(info->download_url, HasSubstr("X-Amz-Signature="));
  // HEAD only: no body moved.
  const auto requests = Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "HEAD");
  EXPECT_EQ(requests[0].status, 302);
}

TEST_F(HubClientTest, ReadRangeGivesTheFilesBytesAtAnyOffset) {
  auto client = Client();
  for (const char* file : {kWeights, "config.json"}) {
    auto info = client->FileInfo(kRepo, "step0", file);
    ASSERT_TRUE(info.ok()) << info.status();
    const std::string bytes = Bytes(file);
    const uint64_t size = bytes.size();
    for (const auto& [offset, n] : std::vector<std::pair<uint64_t, uint64_t>>{
             {0, 1},
             {1, 7},
             {0, size},
             {size / 2, std::min<uint64_t>(1000, size - size / 2)},
             {size - 1, 1},
             {size / 3, size - size / 3}}) {
      absl::Status status;
      const std::string got = Read(*client, *info, offset, n, &status);
      ASSERT_TRUE(status.ok())
          << file << " " << offset << "+" << n << ": " << status;
      EXPECT_EQ(got, bytes.substr(offset, n))
          << file << " " << offset << "+" << n;
    }
  }
  for (const Request& r : Requests()) {
    if (r.method != "GET") continue;
    EXPECT_THAT(r.range, StartsWith("bytes=")) << r.path;
    EXPECT_EQ(r.status, 206) << r.path;
  }
}

TEST_F(HubClientTest, TokenGoesToTheHubButNotToTheCdn) {
  // The mock's CDN refuses (400) any request carrying Authorization, as S3
  // does for presigned URLs: a good read with a token proves it is dropped.
  auto client = Client(kToken);
  auto info = client->FileInfo(kRepo, "step0", kWeights);
  ASSERT_TRUE(info.ok()) << info.status();
  absl::Status status;
  const std::string got = Read(*client, *info, 100, 5000, &status);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(got, Bytes(kWeights).substr(100, 5000));
  // The gated repository opens with it (so it did go to the Hub).
  auto gated = client->FileInfo(kGated, "step0", "config.json");
  ASSERT_TRUE(gated.ok()) << gated.status();
  EXPECT_EQ(ReadWhole(*client, *gated), Bytes("config.json"));
}

TEST_F(HubClientTest, RenamedRepositoryIsFollowedThroughRelativeRedirects) {
  auto client = Client();
  auto info = client->FileInfo(kOld, "step0", "config.json");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->commit, MockBranches(kNew).at("step0"));
  EXPECT_THAT(info->download_url,
              HasSubstr("/EleutherAI/pythia-micro-new/resolve/"));
  EXPECT_EQ(ReadWhole(*client, *info), Bytes("config.json"));
  auto lfs = client->FileInfo(kOld, "step8", kWeights);
  ASSERT_TRUE(lfs.ok()) << lfs.status();
  EXPECT_TRUE(lfs->lfs);
  EXPECT_EQ(ReadWhole(*client, *lfs), Bytes(kWeights, 8));
  auto branches = client->ListBranches(kOld);
  ASSERT_TRUE(branches.ok()) << branches.status();
  EXPECT_EQ(branches->size(), 3u);
  auto files = client->ListFiles(kOld, "step8");
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_THAT(*files, UnorderedElementsAre("config.json", kWeights));
  bool saw_307 = false;
  for (const Request& r : Requests()) saw_307 |= r.status == 307;
  EXPECT_TRUE(saw_307);
}

TEST_F(HubClientTest, ServiceUnavailableIsRetriedAfterRetryAfter) {
  auto client = Client("", 4, /*max_backoff_ms=*/5000);
  auto info = client->FileInfo(kRepo, "step0", kWeights);
  ASSERT_TRUE(info.ok()) << info.status();
  Misbehave("503", 1, info->etag, "cdn");
  const auto start = Clock::now();
  absl::Status status;
  const std::string got = Read(*client, *info, 10, 20000, &status);
  const auto elapsed = Clock::now() - start;
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(got, Bytes(kWeights).substr(10, 20000));
  EXPECT_GE(elapsed, std::chrono::milliseconds(900));  // Retry-After: 1
  EXPECT_LT(elapsed, std::chrono::seconds(4));
  std::vector<json> statuses;
  for (const Request& r : Requests()) {
    if (r.port == "cdn") statuses.push_back(r.status);
  }
  EXPECT_THAT(statuses, UnorderedElementsAre(503, 206));
}

TEST_F(HubClientTest, TooManyRequestsIsRetriedWithRetryAfterCapped) {
  auto client = Client("", 4, /*max_backoff_ms=*/50);
  Misbehave("429", 2, "/refs", "hub");
  const auto start = Clock::now();
  auto branches = client->ListBranches(kRepo);
  ASSERT_TRUE(branches.ok()) << branches.status();
  EXPECT_EQ(branches->size(), 3u);
  EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(800));
  EXPECT_EQ(Requests().size(), 3u);
}

TEST_F(HubClientTest, ADroppedHeadIsRetried) {
  auto client = Client();
  Misbehave("drop", 1, "config.json", "hub");
  auto info = client->FileInfo(kRepo, "step0", "config.json");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->size, Bytes("config.json").size());
  const auto requests = Requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_THAT((std::vector<json>{requests[0].status, requests[1].status}),
              UnorderedElementsAre("dropped", 200));
}

TEST_F(HubClientTest, ACutConnectionIsResumedWhereItStopped) {
  auto client = Client();
  auto info = client->FileInfo(kRepo, "step0", kWeights);
  ASSERT_TRUE(info.ok()) << info.status();
  const std::string bytes = Bytes(kWeights);
  for (const char* kind : {"drop", "reset", "short"}) {
    SCOPED_TRACE(kind);
    ResetStats();
    Misbehave(kind, 1, info->etag, "cdn");
    const uint64_t before = client->bytes_received();
    EXPECT_EQ(ReadWhole(*client, *info), bytes);
    const uint64_t received = client->bytes_received() - before;
    EXPECT_GE(received, bytes.size());
    EXPECT_LE(received,
              bytes.size() + 1024);  // the rest only, not it all again
    const auto requests = FirstAskingFrom(Requests(), "bytes=0-");
    ASSERT_EQ(requests.size(), 2u);
    EXPECT_EQ(requests[0].range, "bytes=0-" + std::to_string(bytes.size() - 1));
    EXPECT_GT(requests[0].sent, 0u);
    // The second asks for what did not arrive (all that was sent, unless an
    // RST lost some in flight).
    uint64_t resumed_at = 0;
    ASSERT_EQ(std::sscanf(requests[1].range.c_str(), "bytes=%lu-", &resumed_at),
              1)
        << requests[1].range;
    EXPECT_GT(resumed_at, 0u);
    EXPECT_LE(resumed_at, requests[0].sent);
    EXPECT_EQ(requests[1].range, "bytes=" + std::to_string(resumed_at) + "-" +
                                     std::to_string(bytes.size() - 1));
    EXPECT_EQ(requests[1].status, 206);
  }
}

TEST_F(HubClientTest, AnIgnoredRangeIsReadOnlyAsFarAsNeeded) {
  auto client = Client();
  auto info = client->FileInfo(kRepo, "step0", kWeights);
  ASSERT_TRUE(info.ok()) << info.status();
  ResetStats();
  Misbehave("ignore_range", 1, info->etag, "cdn");
  const uint64_t before = client->bytes_received();
  absl::Status status;
  const std::string got = Read(*client, *info, 5000, 2000, &status);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(got, Bytes(kWeights).substr(5000, 2000));
  const uint64_t received = client->bytes_received() - before;
  EXPECT_GE(received, 7000u);  // the skipped bytes count: they moved
  EXPECT_LE(received, info->size);
  const auto requests = Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].status, 200);
}

TEST_F(HubClientTest, AWrongContentRangeIsRetriedThenDataLoss) {
  auto client = Client("", 3);
  auto info = client->FileInfo(kRepo, "step0", kWeights);
  ASSERT_TRUE(info.ok()) << info.status();
  const std::string bytes = Bytes(kWeights);
  Misbehave("wrong_range", 1, info->etag, "cdn");
  absl::Status status;
  std::string got = Read(*client, *info, 300, 4000, &status);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(got, bytes.substr(300, 4000));

  Misbehave("wrong_range", 10, info->etag, "cdn");
  got = Read(*client, *info, 300, 4000, &status);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("Content-Range"), HasSubstr(hub_->cdn_url()),
                    HasSubstr("3 attempts"), Not(HasSubstr("Signature")),
                    Not(HasSubstr("?"))));
}

TEST_F(HubClientTest, GatedRepositoryWantsTheRightToken) {
  auto anonymous = Client()->FileInfo(kGated, "step0", kWeights);
  EXPECT_EQ(anonymous.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(anonymous.status().message(),
              AllOf(HasSubstr(kGated), HasSubstr("HF_TOKEN"),
                    HasSubstr("$HF_HOME/token"), HasSubstr("--hf-token-file")));

  const std::string wrong = "hf_wrong_token_ffee";
  auto refused = Client(wrong)->FileInfo(kGated, "step0", kWeights);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(refused.status().message(),
              AllOf(HasSubstr(kGated), HasSubstr("HF_TOKEN"),
                    Not(HasSubstr(wrong)), Not(HasSubstr(kToken))));

  auto client = Client(kToken);
  auto info = client->FileInfo(kGated, "step0", kWeights);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_TRUE(info->lfs);
  EXPECT_EQ(ReadWhole(*client, *info), Bytes(kWeights));
}

TEST_F(HubClientTest, MissingThingsAreNotFoundNamingThem) {
  auto client = Client();
  auto repo = client->FileInfo("EleutherAI/pythia-nope", "main", "config.json");
  EXPECT_EQ(repo.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(repo.status().message(), HasSubstr("EleutherAI/pythia-nope"));
  auto branches = Client(kToken)->ListBranches("EleutherAI/pythia-nope");
  EXPECT_EQ(branches.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(
      branches.status().message(),
      AllOf(HasSubstr("EleutherAI/pythia-nope"), Not(HasSubstr(kToken))));

  auto revision = client->FileInfo(kRepo, "step7", "config.json");
  EXPECT_EQ(revision.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(revision.status().message(),
            "EleutherAI/pythia-micro: revision \"step7\" not found on the Hub");
  auto files = client->ListFiles(kRepo, "step7");
  EXPECT_EQ(files.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(files.status().message(), HasSubstr("\"step7\""));

  auto file = client->FileInfo(kRepo, "step8", "nope.json");
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(file.status().message(),
              AllOf(HasSubstr(kRepo), HasSubstr("\"nope.json\""),
                    HasSubstr("\"step8\"")));
}

TEST_F(HubClientTest, AnUnreachableEndpointIsUnavailableAfterRetries) {
  HubOptions options;
  const std::string endpoint =
      "http://127.0.0.1:" + std::to_string(ClosedPort());
  options.endpoint = endpoint;
  options.token = kToken;
  options.max_attempts = 3;
  options.first_backoff = std::chrono::milliseconds(10);
  options.max_backoff = std::chrono::milliseconds(40);
  auto client = HubClient::Create(options);
  ASSERT_TRUE(client.ok());
  const auto start = Clock::now();
  auto branches = (*client)->ListBranches(kRepo);
  EXPECT_EQ(branches.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(
      branches.status().message(),
      AllOf(HasSubstr(endpoint + "/api/models/EleutherAI/pythia-micro/refs"),
            HasSubstr("3 attempts"), HasSubstr("connect")));
  auto info = (*client)->FileInfo(kRepo, "main", "config.json");
  EXPECT_EQ(info.status().code(), absl::StatusCode::kUnavailable);
  // A signed URL's query never shows.
  HubFileInfo cdn;
  cdn.repo = kRepo;
  cdn.filename = kWeights;
  cdn.size = 100;
  cdn.lfs = true;
  cdn.download_url = endpoint + "/abc?Expires=1&X-Amz-Signature=deadbeef";
  uint8_t buf[10];
  const absl::Status read = (*client)->ReadRange(cdn, 0, absl::MakeSpan(buf));
  EXPECT_EQ(read.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(read.message(),
              AllOf(HasSubstr(endpoint + "/abc"), Not(HasSubstr("deadbeef")),
                    Not(HasSubstr("Expires")), Not(HasSubstr(kToken))));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
}

TEST_F(HubClientTest, PersistentServerErrorsNameTheUrlWithoutItsSignature) {
  auto client = Client(kToken, 2);
  auto info = client->FileInfo(kRepo, "step0", kWeights);
  ASSERT_TRUE(info.ok()) << info.status();
  Misbehave("503", 5, info->etag, "cdn");
  absl::Status status;
  Read(*client, *info, 0, 10, &status);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr(hub_->cdn_url() + "/" + info->etag),
                    HasSubstr("HTTP 503"), HasSubstr("2 attempts"),
                    Not(HasSubstr("Signature")), Not(HasSubstr("Expires")),
                    Not(HasSubstr(kToken))));
}

TEST_F(HubClientTest, AnExpiredSignedUrlIsResolvedAgain) {
  auto client = Client();
  auto info = client->FileInfo(kRepo, "step0", kWeights);
  ASSERT_TRUE(info.ok()) << info.status();
  hub_->Call(
      {{"op", "advance_clock"}, {"seconds", 7200}});  // past the URL's TTL
  ResetStats();
  absl::Status status;
  const std::string got = Read(*client, *info, 1, 999, &status);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(got, Bytes(kWeights).substr(1, 999));
  std::vector<std::string> hub, cdn;
  for (const Request& r : Requests()) {
    (r.port == "hub" ? hub : cdn).push_back(r.method + " " + r.status.dump());
  }
  EXPECT_THAT(hub, ElementsAre("HEAD 302"));
  EXPECT_THAT(cdn, UnorderedElementsAre("GET 403", "GET 206"));
}

TEST_F(HubClientTest, DownloadWritesTheFileAndChecksItsSha256) {
  auto client = Client();
  const std::string path = dir_->Join("download.bin");
  for (const char* file : {kWeights, "config.json", "empty.txt"}) {
    auto info = client->FileInfo(kRepo, "step0", file);
    ASSERT_TRUE(info.ok()) << info.status();
    testing::WriteFile(path, "stale bytes, longer than the empty file");
    const absl::Status status = client->Download(*info, path);
    ASSERT_TRUE(status.ok()) << file << ": " << status;
    EXPECT_EQ(ReadAll(path), Bytes(file)) << file;
  }
  // A cut download resumes with a Range.
  auto info = client->FileInfo(kRepo, "step8", kWeights);
  ASSERT_TRUE(info.ok()) << info.status();
  ResetStats();
  Misbehave("drop", 1, info->etag, "cdn");
  ASSERT_TRUE(client->Download(*info, path).ok());
  EXPECT_EQ(ReadAll(path), Bytes(kWeights, 8));
  const auto requests = FirstAskingFrom(Requests(), "");
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].range, "");
  EXPECT_EQ(requests[1].range, "bytes=" + std::to_string(requests[0].sent) +
                                   "-" + std::to_string(info->size - 1));
}

TEST_F(HubClientTest, DownloadOfAFileDamagedOnTheHubIsDataLoss) {
  auto client = Client();
  auto info = client->FileInfo(kCorrupt, "step0", kWeights);
  ASSERT_TRUE(info.ok()) << info.status();
  // Same size, one byte changed after the mock took its snapshot.
  const std::string disk = dir_->Join("corrupt/pythia-micro/step0/") + kWeights;
  std::string bytes = ReadAll(disk);
  bytes[bytes.size() / 2] ^= 0x5a;
  testing::WriteFile(disk, bytes);
  const std::string path = dir_->Join("corrupt.bin");
  const absl::Status status = client->Download(*info, path);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr(kWeights), HasSubstr("sha256 " + Sha256(bytes)),
                    HasSubstr("does not match the Hub's " + info->etag)));
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(HubClientTest, AFileShrunkOnTheHubIsDataLoss) {
  auto client = Client("", 2);
  auto info = client->FileInfo(kCorrupt, "step8", kWeights);
  ASSERT_TRUE(info.ok()) << info.status();
  const std::string disk = dir_->Join("corrupt/pythia-micro/step8/") + kWeights;
  const std::string bytes = ReadAll(disk);
  testing::WriteFile(disk, bytes.substr(0, bytes.size() / 2));
  absl::Status status;
  Read(*client, *info, bytes.size() - 10, 10,
       &status);  // past the new end: 416
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(status.message(), HasSubstr("HTTP 416"));
  Read(*client, *info, 0, 10, &status);  // the total in Content-Range differs
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(status.message(), HasSubstr("Content-Range"));
  const std::string path = dir_->Join("shrunk.bin");
  status = client->Download(*info, path);  // a 200 of the wrong length
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(status.message(),
              HasSubstr("Content-Length " + std::to_string(bytes.size() / 2)));
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(HubClientTest, AnswersNoHubShouldGiveAreDataLossOrFailedPrecondition) {
  auto client = Client("", 2, 50, hub_->odd_url());
  auto bad_json = client->ListBranches("odd/json");
  EXPECT_EQ(bad_json.status().code(), absl::StatusCode::kDataLoss)
      << bad_json.status();
  EXPECT_THAT(bad_json.status().message(),
              HasSubstr(hub_->odd_url() + "/api/models/odd/json/refs"));
  auto bad_shape = client->ListBranches("odd/shape");
  EXPECT_EQ(bad_shape.status().code(), absl::StatusCode::kDataLoss)
      << bad_shape.status();
  auto bare = client->FileInfo("odd/bare", "main", "f.txt");
  EXPECT_EQ(bare.status().code(), absl::StatusCode::kDataLoss) << bare.status();
  EXPECT_THAT(bare.status().message(), HasSubstr("X-Repo-Commit"));
  auto lfs = client->FileInfo("odd/lfs", "main", "w.bin");
  EXPECT_EQ(lfs.status().code(), absl::StatusCode::kDataLoss) << lfs.status();
  EXPECT_THAT(lfs.status().message(), HasSubstr("X-Linked-Etag"));
  auto loop = client->FileInfo("odd/loop", "main", "f.txt");
  EXPECT_EQ(loop.status().code(), absl::StatusCode::kFailedPrecondition)
      << loop.status();
  EXPECT_THAT(loop.status().message(), HasSubstr("redirects"));
  HubFileInfo info;
  info.repo = "odd/long";
  info.filename = "long";
  info.size = 100;
  info.download_url = hub_->odd_url() + "/odd/long";
  absl::Status status;
  Read(*client, info, 0, 10, &status);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(status.message(), HasSubstr("longer"));
}

// A request's transfer meter (common/base/transfer_meter.h) counts what
// its reads ask for and what arrives, for its progress messages.
TEST_F(HubClientTest, ReadsCountToTheCurrentTransferMeter) {
  auto client = Client();
  auto info = client->FileInfo(kRepo, "step0", kWeights);
  ASSERT_TRUE(info.ok()) << info.status();
  auto shared = std::make_shared<TransferMeter>();
  TransferMeter& meter = *shared;
  {
    ScopedTransferMeter scope(shared);
    absl::Status status;
    Read(*client, *info, 100, 5000, &status);
    ASSERT_TRUE(status.ok()) << status;
  }
  EXPECT_EQ(meter.expected.load(), 5000u);
  EXPECT_EQ(meter.received.load(), 5000u);
  absl::Status status;
  Read(*client, *info, 0, 10, &status);  // outside the scope: not counted
  EXPECT_EQ(meter.expected.load(), 5000u);
}

TEST_F(HubClientTest, ConcurrentReadsOnOneClient) {
  auto client = Client();
  auto info = client->FileInfo(kRepo, "step0", kWeights);
  ASSERT_TRUE(info.ok()) << info.status();
  const std::string bytes = Bytes(kWeights);
  std::vector<std::thread> threads;
  std::vector<int> bad(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 6; ++i) {
        const uint64_t offset =
            (static_cast<uint64_t>(t) * 7919 + i * 104729) % bytes.size();
        const uint64_t n =
            std::min<uint64_t>(3000 + 17 * t, bytes.size() - offset);
        absl::Status status;
        const std::string got = Read(*client, *info, offset, n, &status);
        if (!status.ok() || got != bytes.substr(offset, n)) ++bad[t];
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_THAT(bad, ::testing::Each(0));
}

}  // namespace
}  // namespace garden

// IsLoopbackAddress: which --listen addresses gardend serves plaintext on
// without --insecure.
#include "common/net/listen_address.h"

#include <string>

#include "gtest/gtest.h"

namespace garden {
namespace {

TEST(ListenAddressTest, LoopbackAndUnixSocketsAreLocal) {
  for (const char* a : {"127.0.0.1:50051", "127.0.0.1:0", "127.8.9.10:1", "localhost:50051",
                        "LOCALHOST:1", "[::1]:50051", "[::ffff:127.0.0.1]:1", "ipv4:127.0.0.1:5",
                        "ipv6:[::1]:5", "unix:/run/garden.sock", "unix-abstract:garden"}) {
    EXPECT_TRUE(IsLoopbackAddress(a)) << a;
  }
}

TEST(ListenAddressTest, EverythingElseReachesTheNetwork) {
  for (const char* a : {"0.0.0.0:50051", "[::]:50051", ":50051", "10.0.0.5:1", "192.168.1.2:1",
                        "128.0.0.1:1", "garden.lab.example:50051", "[::2]:1", "[::1:1",
                        "[::ffff:10.0.0.1]:1", "localhost.example:1", "", "126.255.255.255:1"}) {
    EXPECT_FALSE(IsLoopbackAddress(a)) << a;
  }
}

TEST(ListenAddressTest, UnixAddresses) {
  EXPECT_TRUE(IsUnixAddress("unix:/tmp/s"));
  EXPECT_TRUE(IsUnixAddress("unix-abstract:s"));
  EXPECT_FALSE(IsUnixAddress("127.0.0.1:1"));
}

TEST(ParseHostPortTest, SplitsHostAndPort) {
  absl::StatusOr<HostPort> a = ParseHostPort("127.0.0.1:8080", "--listen", "x");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8080);
  absl::StatusOr<HostPort> v6 = ParseHostPort("[::1]:0", "--listen", "x");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 0);
  absl::StatusOr<HostPort> any = ParseHostPort("0.0.0.0:65535", "--listen", "x");
  ASSERT_TRUE(any.ok()) << any.status();
  EXPECT_EQ(any->port, 65535);
}

TEST(ParseHostPortTest, RefusesWhatIsNotHostColonPort) {
  for (const char* bad : {"", "8080", ":8080", "127.0.0.1:", "127.0.0.1:x", "127.0.0.1:-1",
                          "127.0.0.1:65536", "[::1:80", "[]:80"}) {
    absl::StatusOr<HostPort> r = ParseHostPort(bad, "--listen", "127.0.0.1:8080");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find(std::string("--listen ") + bad + ":"),
              std::string::npos) << r.status();
    EXPECT_NE(r.status().message().find("e.g. 127.0.0.1:8080"), std::string::npos);
  }
}

}  // namespace
}  // namespace garden

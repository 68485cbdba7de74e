// IsLoopbackAddress: which --listen addresses gardend serves plaintext on
// without --insecure.
#include "server/security/listen_address.h"

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

}  // namespace
}  // namespace garden

// relu-server's own TCP listener: the addresses it binds, the descriptor cap,
// and the hand-off of connections it keeps.
#include "server/service/listener.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "gtest/gtest.h"

namespace relu::service {
namespace {

// Records the connections handed over, and closes them.
class RecordingAcceptor final
    : public grpc::experimental::ExternalConnectionAcceptor {
 public:
  explicit RecordingAcceptor(std::atomic<int>* handed) : handed_(handed) {}
  void HandleNewConnection(NewConnectionParameters* p) override {
    handed_->fetch_add(1);
    close(p->fd);
  }

 private:
  std::atomic<int>* handed_;
};

// Connects to 127.0.0.1:`port` and waits for the server to close: returns
// true when it did (read() gives 0).
bool ConnectAndSeeClosed(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
      0) {
    close(fd);
    return false;
  }
  char byte = 0;
  const ssize_t got = read(fd, &byte, 1);
  close(fd);
  return got == 0;
}

TEST(TcpListenerTest, BindsLoopbackAndPicksAPort) {
  auto listener = TcpListener::Listen("127.0.0.1:0");
  ASSERT_TRUE(listener.ok()) << listener.status();
  EXPECT_GT((*listener)->port(), 0);
  auto v6 = TcpListener::Listen("[::1]:0");
  if (v6.ok()) {  // hosts without IPv6 refuse it
    EXPECT_GT((*v6)->port(), 0);
  }
  auto name = TcpListener::Listen("localhost:0");
  ASSERT_TRUE(name.ok()) << name.status();
}

TEST(TcpListenerTest, PortInUseIsUnavailable) {
  auto first = TcpListener::Listen("127.0.0.1:0");
  ASSERT_TRUE(first.ok());
  auto second =
      TcpListener::Listen("127.0.0.1:" + std::to_string((*first)->port()));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
}

TEST(TcpListenerTest, OtherAddressFormsAreLeftToGrpc) {
  EXPECT_EQ(TcpListener::Listen("unix:/tmp/relu.sock").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TcpListener::Listen("127.0.0.1").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TcpListener::Listen("127.0.0.1:99999").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TcpListenerTest, HandsOverConnectionsBelowTheCap) {
  auto listener = TcpListener::Listen("127.0.0.1:0");
  ASSERT_TRUE(listener.ok());
  std::atomic<int> handed{0};
  (*listener)->Start(std::make_unique<RecordingAcceptor>(&handed), 1 << 20);
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(ConnectAndSeeClosed((*listener)->port()));
  }
  EXPECT_EQ(handed.load(), 5);
  EXPECT_EQ((*listener)->refused(), 0u);
  EXPECT_TRUE((*listener)->accepting());
  (*listener)->Stop();
}

TEST(TcpListenerTest, ClosesConnectionsPastTheCap) {
  auto listener = TcpListener::Listen("127.0.0.1:0");
  ASSERT_TRUE(listener.ok());
  std::atomic<int> handed{0};
  // Every descriptor number is past a cap of 3 (0-2 are stdio).
  (*listener)->Start(std::make_unique<RecordingAcceptor>(&handed), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(ConnectAndSeeClosed((*listener)->port()));
  }
  EXPECT_EQ(handed.load(), 0);
  EXPECT_EQ((*listener)->refused(), 3u);
}

}  // namespace
}  // namespace relu::service

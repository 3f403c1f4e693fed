// TLS against the real relu-server binary with a throwaway CA (and a second,
// untrusted CA) made by the openssl tool in the test: TLS works; with a
// client CA, clients without a certificate or with one from another CA are
// refused; a plaintext client against a TLS server fails cleanly with
// UNAVAILABLE and a message, not a hang. After every refusal the server
// still serves a correct client.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "relu/v1/relu.grpc.pb.h"
#include "tests/testing/server_process.h"

namespace relu::reliability {
namespace {

using testing::ServerProcess;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs a command line; true when it exits 0.
bool RunCommand(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/usr/bin/openssl", X_OK) != 0) GTEST_SKIP() << "no openssl";
    char tmpl[] = "/tmp/relu_tls_rel_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::ofstream(File("san.cnf"))
        << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
    const std::string ec =
        " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
    for (const std::string ca : {"ca", "other_ca"}) {
      ASSERT_TRUE(RunCommand("/usr/bin/openssl req -x509" + ec + "-keyout " +
                             File(ca + ".key") + " -out " + File(ca + ".pem") +
                             " -days 2 -subj /CN=relu-" + ca));
    }
    // server and client signed by ca; rogue (a client) signed by other_ca.
    for (const auto& [who, ca] :
         std::vector<std::pair<std::string, std::string>>{
             {"server", "ca"}, {"client", "ca"}, {"rogue", "other_ca"}}) {
      ASSERT_TRUE(RunCommand("/usr/bin/openssl req" + ec + "-keyout " +
                             File(who + ".key") + " -out " +
                             File(who + ".csr") + " -subj /CN=relu-" + who));
      ASSERT_TRUE(RunCommand("/usr/bin/openssl x509 -req -in " +
                             File(who + ".csr") + " -CA " + File(ca + ".pem") +
                             " -CAkey " + File(ca + ".key") +
                             " -CAcreateserial -out " + File(who + ".pem") +
                             " -days 2 -extfile " + File("san.cnf")));
    }
  }
  void TearDown() override {
    if (!dir_.empty()) std::system(("rm -rf " + dir_).c_str());
  }
  std::string File(const std::string& name) const { return dir_ + "/" + name; }

  std::unique_ptr<ServerProcess> StartServer(bool client_ca) {
    std::vector<std::string> args = {"--tls-cert=" + File("server.pem"),
                                     "--tls-key=" + File("server.key")};
    if (client_ca) args.push_back("--tls-client-ca=" + File("ca.pem"));
    return ServerProcess::Start(args);
  }

  // Credentials trusting `ca`, presenting `cert` ("" = none).
  std::shared_ptr<grpc::ChannelCredentials> Tls(const std::string& ca,
                                                const std::string& cert) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFile(File(ca + ".pem"));
    if (!cert.empty()) {
      ssl.pem_cert_chain = ReadFile(File(cert + ".pem"));
      ssl.pem_private_key = ReadFile(File(cert + ".key"));
    }
    return grpc::SslCredentials(ssl);
  }

  // One ApplyReLU([-1, 2]) call on a fresh channel.
  static grpc::Status Call(const ServerProcess& server,
                           std::shared_ptr<grpc::ChannelCredentials> creds,
                           std::vector<float>* out = nullptr) {
    auto stub = v1::ReluService::NewStub(
        grpc::CreateChannel(server.target(), std::move(creds)));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    v1::ApplyReLURequest request;
    request.mutable_tensor()->set_dtype(v1::DATA_TYPE_FLOAT32);
    request.mutable_tensor()->add_shape(2);
    const float x[2] = {-1.0f, 2.0f};
    request.mutable_tensor()->set_data(reinterpret_cast<const char*>(x), 8);
    v1::ApplyReLUResponse response;
    grpc::Status status = stub->ApplyReLU(&context, request, &response);
    if (status.ok() && out != nullptr && response.tensor().data().size() == 8) {
      out->resize(2);
      std::memcpy(out->data(), response.tensor().data().data(), 8);
    }
    std::printf("  %s: code %d \"%s\"\n",
                ::testing::UnitTest::GetInstance()->current_test_info()->name(),
                status.error_code(), status.error_message().c_str());
    return status;
  }

  void ExpectServes(const ServerProcess& server,
                    std::shared_ptr<grpc::ChannelCredentials> creds) {
    std::vector<float> y;
    grpc::Status status = Call(server, std::move(creds), &y);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(y, (std::vector<float>{0.0f, 2.0f}));
  }

  // A refusal: UNAVAILABLE (the handshake failed), with a message, and not
  // the deadline running out.
  static void ExpectRefused(const grpc::Status& status) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << status.error_message();
    EXPECT_FALSE(status.error_message().empty());
  }

  std::string dir_;
};

TEST_F(TlsTest, TlsClientIsServed) {
  std::unique_ptr<ServerProcess> server = StartServer(false);
  ASSERT_NE(server, nullptr);
  ExpectServes(*server, Tls("ca", ""));
}

TEST_F(TlsTest, ClientTrustingAnotherCaRefusesTheServer) {
  std::unique_ptr<ServerProcess> server = StartServer(false);
  ASSERT_NE(server, nullptr);
  ExpectRefused(Call(*server, Tls("other_ca", "")));
  ExpectServes(*server, Tls("ca", ""));
}

TEST_F(TlsTest, PlaintextClientAgainstTlsServerFailsCleanly) {
  std::unique_ptr<ServerProcess> server = StartServer(false);
  ASSERT_NE(server, nullptr);
  ExpectRefused(Call(*server, grpc::InsecureChannelCredentials()));
  ExpectServes(*server, Tls("ca", ""));
}

TEST_F(TlsTest, MutualTlsClientWithCertificateIsServed) {
  std::unique_ptr<ServerProcess> server = StartServer(true);
  ASSERT_NE(server, nullptr);
  ExpectServes(*server, Tls("ca", "client"));
}

TEST_F(TlsTest, MutualTlsClientWithoutCertificateIsRefused) {
  std::unique_ptr<ServerProcess> server = StartServer(true);
  ASSERT_NE(server, nullptr);
  ExpectRefused(Call(*server, Tls("ca", "")));
  ExpectServes(*server, Tls("ca", "client"));
}

TEST_F(TlsTest, MutualTlsClientCertificateFromAnotherCaIsRefused) {
  std::unique_ptr<ServerProcess> server = StartServer(true);
  ASSERT_NE(server, nullptr);
  ExpectRefused(Call(*server, Tls("ca", "rogue")));
  ExpectServes(*server, Tls("ca", "client"));
}

TEST_F(TlsTest, MutualTlsPlaintextClientFailsCleanly) {
  std::unique_ptr<ServerProcess> server = StartServer(true);
  ASSERT_NE(server, nullptr);
  ExpectRefused(Call(*server, grpc::InsecureChannelCredentials()));
  ExpectServes(*server, Tls("ca", "client"));
}

}  // namespace
}  // namespace relu::reliability

#include "bench/bench_server.h"

#include <pthread.h>

#include <cstdio>
#include <memory>

#include "grpcpp/health_check_service_interface.h"

namespace relu::bench {

sigset_t BlockStopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

int ServeUntilSignal(const char* name, const std::string& address,
                     int max_message_bytes, grpc::Service* service,
                     const sigset_t& signals) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(max_message_bytes);
  builder.SetMaxSendMessageSize(max_message_bytes);
  builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "%s: cannot listen on %s\n", name, address.c_str());
    return 1;
  }
  server->GetHealthCheckService()->SetServingStatus("relu.v1.ReluService",
                                                    true);
  const std::string host = address.substr(0, address.rfind(':'));
  std::printf("gRPC listening on %s:%d\n", host.c_str(), port);
  std::fflush(stdout);

  int signal = 0;
  sigwait(&signals, &signal);
  server->Shutdown();
  return 0;
}

}  // namespace relu::bench

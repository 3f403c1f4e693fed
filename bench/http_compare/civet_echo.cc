// A minimal HTTP POST echo for the HTTP library comparison (README, "The HTTP
// library"); built and driven by run.sh.
#include <civetweb.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>
static int Echo(mg_connection* c, void*) {
  const mg_request_info* ri = mg_get_request_info(c);
  std::string body;
  body.resize(ri->content_length > 0 ? ri->content_length : 0);
  size_t got = 0;
  while (got < body.size()) {
    int n = mg_read(c, body.data() + got, body.size() - got);
    if (n <= 0) break;
    got += n;
  }
  mg_printf(c,
            "HTTP/1.1 200 OK\r\nContent-Type: "
            "application/json\r\nContent-Length: %zu\r\n\r\n",
            body.size());
  mg_write(c, body.data(), body.size());
  return 200;
}
int main() {
  mg_init_library(0);
  const char* opts[] = {"listening_ports",
                        "127.0.0.1:18081",
                        "num_threads",
                        "64",
                        "enable_keep_alive",
                        "yes",
                        "tcp_nodelay",
                        "1",
                        nullptr};
  mg_callbacks cb{};
  mg_context* ctx = mg_start(&cb, nullptr, opts);
  mg_set_request_handler(ctx, "/echo", Echo, nullptr);
  for (;;) pause();
}

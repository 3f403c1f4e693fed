// A minimal HTTP POST echo for the HTTP library comparison (README, "The HTTP
// library"); built and driven by run.sh.
#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <memory>
#include <optional>
#include <thread>
#include <vector>
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
struct Session : std::enable_shared_from_this<Session> {
  beast::tcp_stream stream;
  beast::flat_buffer buf;
  std::optional<http::request_parser<http::string_body>> parser;
  http::response<http::string_body> res;
  explicit Session(tcp::socket s) : stream(std::move(s)) {}
  void Read() {
    parser.emplace();
    parser->body_limit(1 << 28);
    http::async_read(stream, buf, *parser,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return;
                       auto req = self->parser->release();
                       self->res = http::response<http::string_body>(
                           http::status::ok, req.version());
                       self->res.set(http::field::content_type,
                                     "application/json");
                       self->res.body() = std::move(req.body());
                       self->res.keep_alive(req.keep_alive());
                       self->res.prepare_payload();
                       http::async_write(self->stream, self->res,
                                         [self](beast::error_code ec, size_t) {
                                           if (!ec) self->Read();
                                         });
                     });
  }
};
int main() {
  asio::io_context io(2);
  tcp::acceptor acc(io, {asio::ip::make_address("127.0.0.1"), 18083});
  std::function<void()> accept = [&] {
    acc.async_accept([&](beast::error_code ec, tcp::socket s) {
      if (!ec) {
        s.set_option(tcp::no_delay(true));
        std::make_shared<Session>(std::move(s))->Read();
      }
      accept();
    });
  };
  accept();
  std::thread t([&] { io.run(); });
  io.run();
  t.join();
}

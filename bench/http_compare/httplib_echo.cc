// A minimal HTTP POST echo for the HTTP library comparison (README, "The HTTP
// library"); built and driven by run.sh.
#include <httplib.h>
int main() {
  httplib::Server s;
  s.new_task_queue = [] { return new httplib::ThreadPool(64); };
  s.Post("/echo", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content(req.body, "application/json");
  });
  s.listen("127.0.0.1", 18082);
}

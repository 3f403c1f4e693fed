// The Open Inference Protocol over HTTP/REST against the real relu-server
// binary, spoken over raw loopback sockets (so that pipelining, chunked
// bodies, stalls and oversized bodies can be sent exactly): every golden
// case through JSON and through binary data, bit for bit; the number
// formats; the bad-input rows, each followed by a correct call; CORS; the
// metrics; a drain under HTTP load.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/kernel/plan.h"
#include "tests/testing/golden.h"
#include "tests/testing/http_client.h"
#include "tests/testing/server_process.h"

namespace relu {
namespace {

using testing::GoldenCase;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::ServerProcess;

struct Reply {
  int status = 0;
  std::string headers;  // lower-cased names
  std::string body;
  bool ok = false;  // a whole response was read
};

// One loopback connection, written and read raw.
class Conn {
 public:
  explicit Conn(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close(fd_);
      fd_ = -1;
    }
    int one = 1;
    if (fd_ >= 0) setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~Conn() {
    if (fd_ >= 0) close(fd_);
  }
  bool connected() const { return fd_ >= 0; }

  bool Send(const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n =
          send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  // Reads one response (Content-Length framed).
  Reply Read() {
    Reply r;
    size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return r;
    }
    std::string head = buffer_.substr(0, end);
    buffer_.erase(0, end + 4);
    r.status = std::atoi(head.c_str() + head.find(' ') + 1);
    for (char& c : head) c = static_cast<char>(std::tolower(c));
    r.headers = head;
    size_t length = 0;
    const size_t at = head.find("content-length: ");
    if (at != std::string::npos) {
      length = std::strtoul(head.c_str() + at + 16, nullptr, 10);
    }
    while (buffer_.size() < length) {
      if (!Fill()) return r;
    }
    r.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    r.ok = true;
    return r;
  }

  // Whether the server closed the connection (reads until EOF or error).
  bool ReadsEof() {
    while (Fill()) {
    }
    return true;
  }

 private:
  bool Fill() {
    char chunk[65536];
    const ssize_t n = recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string buffer_;
};

std::string Post(const std::string& path, const std::string& body,
                 const std::string& extra_headers = "") {
  return absl::StrCat("POST ", path, " HTTP/1.1\r\nHost: t\r\n",
                      "Content-Type: application/json\r\nContent-Length: ",
                      body.size(), "\r\n", extra_headers, "\r\n", body);
}

std::string Get(const std::string& path, const std::string& method = "GET") {
  return absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: t\r\n\r\n");
}

constexpr char kInfer[] = "/v2/models/relu/infer";
constexpr char kGood[] =
    R"({"inputs":[{"name":"input","shape":[4],"datatype":"FP32",)"
    R"("data":[-5,-1.5,2.5,3]}],"parameters":{"threshold":2.5}})";
constexpr char kGoodData[] = R"("data":[-0.0,-0.0,0.0,3.0])";

const char* Datatype(kernel::DType dtype) {
  switch (dtype) {
    case kernel::DType::kFloat32:
      return "FP32";
    case kernel::DType::kFloat64:
      return "FP64";
    case kernel::DType::kFloat16:
      return "FP16";
    case kernel::DType::kBFloat16:
      return "BF16";
  }
  return "";
}

// Python's spelling of a value as JSON's extended tokens.
std::string JsonToken(const std::string& python) {
  if (python == "nan" || python == "-nan") return "NaN";
  if (python == "inf") return "Infinity";
  if (python == "-inf") return "-Infinity";
  return python;
}

std::string ParamsJson(const kernel::Params& p) {
  std::vector<std::string> members;
  auto number = [](double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    std::string s = buf;
    if (s == "inf") return std::string("Infinity");
    return s;
  };
  if (p.max_value) {
    members.push_back(absl::StrCat("\"max_value\":", number(*p.max_value)));
  }
  members.push_back(
      absl::StrCat("\"negative_slope\":", number(p.negative_slope)));
  members.push_back(absl::StrCat("\"threshold\":", number(p.threshold)));
  return absl::StrCat("{", absl::StrJoin(members, ","), "}");
}

// A number of the answer as `dtype`'s bits, read independently of the
// server's code: strtod/strtof, then (16-bit formats) the nearest value from
// the float, exact for the shortest digits of a 16-bit value.
uint64_t BitsOf(kernel::DType dtype, const std::string& token) {
  double d;
  if (token == "NaN") {
    d = std::nan("");
  } else if (token == "Infinity") {
    d = HUGE_VAL;
  } else if (token == "-Infinity") {
    d = -HUGE_VAL;
  } else {
    d = std::strtod(token.c_str(), nullptr);
  }
  switch (dtype) {
    case kernel::DType::kFloat64: {
      uint64_t b;
      std::memcpy(&b, &d, 8);
      return b;
    }
    case kernel::DType::kFloat32: {
      const float f = token == "NaN" || token.find("Inf") != std::string::npos
                          ? static_cast<float>(d)
                          : std::strtof(token.c_str(), nullptr);
      uint32_t b;
      std::memcpy(&b, &f, 4);
      return b;
    }
    case kernel::DType::kFloat16:
      return kernel::internal::FloatToHalf(static_cast<float>(d));
    case kernel::DType::kBFloat16:
      return kernel::internal::FloatToBFloat16(static_cast<float>(d));
  }
  return 0;
}

// The tokens of the answer's flat "data" array.
std::vector<std::string> DataTokens(const std::string& body) {
  const size_t at = body.find("\"data\":[");
  if (at == std::string::npos) return {};
  const size_t end = body.find(']', at);
  const std::string inside = body.substr(at + 8, end - at - 8);
  if (inside.empty()) return {};
  return absl::StrSplit(inside, ',');
}

// The message of an {"error": "..."} body, its \" and \\ unescaped.
std::string ErrorOf(const std::string& body) {
  std::string out;
  const size_t start = body.find(":\"");
  if (start == std::string::npos) return body;
  for (size_t i = start + 2; i + 2 < body.size(); ++i) {
    if (body[i] == '\\') ++i;
    out.push_back(body[i]);
  }
  return out;
}

class HttpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = ServerProcess::Start({"--http-timeout-s=1",
                                    "--max-message-bytes=1048576",
                                    "--http-cors-origin=https://example.test"})
                  .release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(server_->http_port(), 0);
  }

  static int port() { return server_->http_port(); }

  // One request on a new connection.
  static Reply Call(const std::string& request) {
    Conn conn(port());
    EXPECT_TRUE(conn.connected());
    conn.Send(request);
    return conn.Read();
  }

  // The correct call each bad row is followed by.
  static void ExpectGoodCall() {
    Reply r = Call(Post(kInfer, kGood));
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_THAT(r.body, HasSubstr(kGoodData));
  }

  static ServerProcess* server_;
};

ServerProcess* HttpTest::server_ = nullptr;

TEST_F(HttpTest, TheTutorialExample) {
  Reply r = Call(Post(kInfer, kGood));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.headers, HasSubstr("content-type: application/json"));
  EXPECT_EQ(r.body,
            R"({"model_name":"relu","model_version":"1","outputs":[{"name":)"
            R"("output","datatype":"FP32","shape":[4],"data":[-0.0,-0.0,0.0,)"
            R"(3.0]}]})");
}

TEST_F(HttpTest, EveryGoldenCaseThroughJsonBitForBit) {
  Conn conn(port());  // all on one keep-alive connection
  for (const GoldenCase& c : testing::LoadGoldenCases()) {
    std::vector<std::string> data;
    for (const std::string& v : c.input) data.push_back(JsonToken(v));
    const std::string body = absl::StrCat(
        R"({"id":")", c.name, R"(","inputs":[{"name":"input","shape":[)",
        c.input.size(), R"(],"datatype":")", Datatype(c.dtype), R"(","data":[)",
        absl::StrJoin(data, ","), "]}],\"parameters\":", ParamsJson(c.params),
        "}");
    ASSERT_TRUE(conn.Send(Post(kInfer, body)));
    Reply r = conn.Read();
    ASSERT_EQ(r.status, 200) << c.name << ": " << r.body;
    EXPECT_THAT(r.body, HasSubstr(absl::StrCat("\"id\":\"", c.name, "\"")));
    const std::vector<std::string> out = DataTokens(r.body);
    ASSERT_EQ(out.size(), c.output_bits.size()) << c.name << ": " << r.body;
    for (size_t i = 0; i < out.size(); ++i) {
      EXPECT_TRUE(testing::SameResult(c.dtype, BitsOf(c.dtype, out[i]),
                                      c.output_bits[i]))
          << c.name << " [" << i << "]: input " << c.input[i] << " got "
          << out[i] << ", expected " << c.output[i];
    }
  }
}

TEST_F(HttpTest, EveryGoldenCaseThroughBinaryDataBitForBit) {
  Conn conn(port());
  for (const GoldenCase& c : testing::LoadGoldenCases()) {
    const std::string bytes = testing::BitsToBytes(c.dtype, c.input_bits);
    const std::string json = absl::StrCat(
        R"({"inputs":[{"name":"input","shape":[)", c.input.size(),
        R"(],"datatype":")", Datatype(c.dtype),
        R"(","parameters":{"binary_data_size":)", bytes.size(),
        R"(}}],"outputs":[{"name":"output","parameters":{"binary_data":true}}],)",
        "\"parameters\":", ParamsJson(c.params), "}");
    ASSERT_TRUE(conn.Send(Post(kInfer, json + bytes,
                               absl::StrCat("Inference-Header-Content-Length: ",
                                            json.size(), "\r\n"))));
    Reply r = conn.Read();
    ASSERT_EQ(r.status, 200) << c.name << ": " << r.body;
    const size_t at = r.headers.find("inference-header-content-length: ");
    ASSERT_NE(at, std::string::npos) << r.headers;
    const size_t header =
        std::strtoul(r.headers.c_str() + at + 33, nullptr, 10);
    ASSERT_EQ(r.body.size(), header + bytes.size());
    EXPECT_THAT(r.body.substr(0, header),
                HasSubstr(absl::StrCat("\"binary_data_size\":", bytes.size())));
    const std::vector<uint64_t> out =
        testing::BytesToBits(c.dtype, r.body.substr(header));
    for (size_t i = 0; i < out.size(); ++i) {
      EXPECT_TRUE(testing::SameResult(c.dtype, out[i], c.output_bits[i]))
          << c.name << " [" << i << "]";
    }
  }
}

TEST_F(HttpTest, NumbersAreShortestPerDatatypeAndTokensRoundTrip) {
  // FP16 0.1 prints as 0.1; NaN and the infinities as Python's json; -0.0
  // kept; nested data; the id echoed with its escapes.
  Reply r = Call(Post(
      "/v2/models/relu/versions/1/infer",
      R"({"id":"a\"b\u00e9","inputs":[{"name":"input","shape":[2,3],)"
      R"("datatype":"FP16","data":[[0.1,-0.0,NaN],[Infinity,-Infinity,65519]]}],)"
      R"("parameters":{"max_value":Infinity}})"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr("\"id\":\"a\\\"b\xc3\xa9\""));
  EXPECT_THAT(r.body, HasSubstr(R"("shape":[2,3],"data":[0.1,-0.0,NaN,)"
                                R"(Infinity,0.0,65500.0])"));
  // FP32 and FP64 print their own shortest digits; FP64 subnormals kept.
  r = Call(Post(kInfer,
                R"({"inputs":[{"name":"input","shape":[3],)"
                R"("datatype":"FP32","data":[0.1,1e-45,3.4028235e38]}]})"));
  EXPECT_THAT(r.body, HasSubstr(R"("data":[0.1,1e-45,3.4028235e+38])"));
  r = Call(Post(kInfer, R"({"inputs":[{"name":"input","shape":[3],)"
                        R"("datatype":"FP64","data":[0.1,5e-324,1e300]}]})"));
  EXPECT_THAT(r.body, HasSubstr(R"("data":[0.1,5e-324,1e+300])"));
  // BF16 from a decimal is rounded once, from the nearest double: 1.00390626
  // is above the midpoint 1.00390625 of 1.0 and 1.0078125 (through float
  // it would tie, and go to 1.0); 1.0078125's shortest BF16 digits are
  // 1.01.
  r = Call(Post(kInfer, R"({"inputs":[{"name":"input","shape":[2],)"
                        R"("datatype":"BF16","data":[1.00390626,0.1]}]})"));
  EXPECT_THAT(r.body, HasSubstr(R"("data":[1.01,0.1])"));
  // A scalar (empty shape) and an empty tensor.
  r = Call(Post(kInfer, R"({"inputs":[{"name":"input","shape":[],)"
                        R"("datatype":"FP32","data":[-2]}]})"));
  EXPECT_THAT(r.body, HasSubstr(R"("shape":[],"data":[0.0])"));
  r = Call(Post(kInfer, R"({"inputs":[{"name":"input","shape":[0,3],)"
                        R"("datatype":"FP16","data":[]}]})"));
  EXPECT_THAT(r.body, HasSubstr(R"("shape":[0,3],"data":[])"));
}

TEST_F(HttpTest, MetadataHealthAndReady) {
  Reply r = Call(Get("/v2/health/live"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"live":true})");
  r = Call(Get("/v2/health/ready"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"ready":true})");
  r = Call(Get("/v2"));
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr(R"("name":"relu-serve")"));
  for (const char* path : {"/v2/models/relu", "/v2/models/relu/versions/1"}) {
    r = Call(Get(path));
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_THAT(r.body, HasSubstr(R"("versions":["1"])"));
    r = Call(Get(absl::StrCat(path, "/ready")));
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_EQ(r.body, R"({"name":"relu","ready":true})");
  }
}

struct BadRow {
  const char* name;
  std::string request;
  int status;
  const char* message;  // a part of the error
};

TEST_F(HttpTest, BadInputRowsThenACorrectCall) {
  const std::string input =
      R"({"name":"input","shape":[2],"datatype":"FP32","data":[1,2]})";
  const std::string binary_json =
      R"({"inputs":[{"name":"input","shape":[2],"datatype":"FP32",)"
      R"("parameters":{"binary_data_size":8}}]})";
  const std::vector<BadRow> rows = {
      {"malformed JSON", Post(kInfer, R"({"inputs":[)"), 400,
       "request body is not valid JSON: expected a value at byte 11"},
      {"not an object", Post(kInfer, "[1]"), 400,
       "the request body is an array; send a JSON object"},
      {"shape of the wrong type",
       Post(kInfer, R"({"inputs":[{"name":"input","shape":"2",)"
                    R"("datatype":"FP32","data":[1,2]}]})"),
       400, "inputs[0].shape is a string; send an array of integers"},
      {"data of the wrong type",
       Post(kInfer, R"({"inputs":[{"name":"input","shape":[2],)"
                    R"("datatype":"FP32","data":[1,"2"]}]})"),
       400, "inputs[0].data[1] is a string; send numbers"},
      {"datatype of the wrong type",
       Post(kInfer, R"({"inputs":[{"name":"input","shape":[2],)"
                    R"("datatype":32,"data":[1,2]}]})"),
       400, "inputs[0].datatype is a number; send a string"},
      {"nested data not matching the shape",
       Post(kInfer, R"({"inputs":[{"name":"input","shape":[2,2],)"
                    R"("datatype":"FP32","data":[[1,2,3],[4]]}]})"),
       400, "inputs[0].data[0] has 3 elements; inputs[0].shape [2, 2] says 2"},
      {"flat data of the wrong length (ModelInfer's message)",
       Post(kInfer, R"({"inputs":[{"name":"input","shape":[3],)"
                    R"("datatype":"FP32","data":[1,2]}]})"),
       400, "inputs[0].data has 8 bytes; shape [3] of float32 needs 12"},
      {"unknown datatype (ModelInfer's message)",
       Post(kInfer, R"({"inputs":[{"name":"input","shape":[2],)"
                    R"("datatype":"INT8","data":[1,2]}]})"),
       400, "inputs[0].datatype is \"INT8\"; model \"relu\" takes FP32"},
      {"Keras parameter check",
       Post(kInfer, absl::StrCat(R"({"inputs":[)", input,
                                 R"(],"parameters":{"threshold":-1}})")),
       400,
       "threshold of a ReLU layer cannot be a negative value. Received: "
       "threshold=-1.0"},
      {"unknown parameter",
       Post(kInfer, absl::StrCat(R"({"inputs":[)", input,
                                 R"(],"parameters":{"alpha":1}})")),
       400, "parameters [\"alpha\"] not known to model \"relu\""},
      {"Inference-Header-Content-Length larger than the body",
       Post(kInfer, kGood, "Inference-Header-Content-Length: 9999\r\n"), 400,
       "Inference-Header-Content-Length is 9999; the body has only"},
      {"binary_data_size not matching the bytes",
       Post(kInfer, binary_json + "abcd",
            absl::StrCat("Inference-Header-Content-Length: ",
                         binary_json.size(), "\r\n")),
       400, "binary_data_size\"] is 8; the body has 4 bytes"},
      {"unknown model", Post("/v2/models/tanh/infer", kGood), 404,
       "model \"tanh\" is not served here"},
      {"unknown version", Post("/v2/models/relu/versions/7/infer", kGood), 404,
       "model \"relu\" has no version \"7\""},
      {"unknown path", Get("/v1/models/relu"), 404, "no such path"},
      {"wrong method", Get(kInfer), 405, "GET is not allowed on"},
      {"wrong method with a body", Post("/v2/health/live", kGood), 405,
       "POST is not allowed on /v2/health/live"},
      {"a request timeout already passed",
       Post(kInfer, absl::StrCat(R"({"inputs":[)", input,
                                 R"(],"parameters":{"timeout":0}})")),
       504, "deadline exceeded"},
  };
  for (const BadRow& row : rows) {
    SCOPED_TRACE(row.name);
    Reply r = Call(row.request);
    EXPECT_EQ(r.status, row.status) << r.body;
    EXPECT_THAT(r.body, HasSubstr("{\"error\":\"")) << r.body;
    EXPECT_THAT(ErrorOf(r.body), HasSubstr(row.message));
    ExpectGoodCall();
  }
}

TEST_F(HttpTest, BodyOverTheLimitIs413AndNotReadOn) {
  // Content-Length says 2 MiB, over --max-message-bytes=1 MiB: answered
  // before the body is sent, and the connection is closed.
  Conn conn(port());
  conn.Send(absl::StrCat("POST ", kInfer,
                         " HTTP/1.1\r\nHost: t\r\nContent-Length: ", 2 << 20,
                         "\r\n\r\n"));
  Reply r = conn.Read();
  EXPECT_EQ(r.status, 413);
  EXPECT_THAT(r.body, HasSubstr("--max-message-bytes=1048576"));
  EXPECT_THAT(r.headers, HasSubstr("connection: close"));
  EXPECT_TRUE(conn.ReadsEof());
  ExpectGoodCall();
  // Chunked past the limit: cut at the limit.
  Conn chunked(port());
  std::string request = absl::StrCat("POST ", kInfer,
                                     " HTTP/1.1\r\nHost: t\r\n"
                                     "Transfer-Encoding: chunked\r\n\r\n");
  const std::string chunk(64 << 10, ' ');
  for (int i = 0; i < 17; ++i) {
    absl::StrAppend(&request, "10000\r\n", chunk, "\r\n");
  }
  chunked.Send(request);
  r = chunked.Read();
  EXPECT_EQ(r.status, 413);
  ExpectGoodCall();
}

TEST_F(HttpTest, StalledBodyIsCutAfterTheTimeout) {
  Conn conn(port());
  conn.Send(absl::StrCat("POST ", kInfer,
                         " HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n"
                         "{\"inputs\":"));
  // --http-timeout-s=1: the server gives up on its own.
  Reply r = conn.Read();
  EXPECT_EQ(r.status, 408);
  EXPECT_THAT(r.body, HasSubstr("request body incomplete: 10 of 100 bytes"));
  EXPECT_TRUE(conn.ReadsEof());
  ExpectGoodCall();
}

TEST_F(HttpTest, ChunkedTransferEncoding) {
  const std::string body = kGood;
  std::string request = absl::StrCat("POST ", kInfer,
                                     " HTTP/1.1\r\nHost: t\r\n"
                                     "Transfer-Encoding: chunked\r\n\r\n");
  for (size_t i = 0; i < body.size(); i += 7) {
    const std::string part = body.substr(i, 7);
    char size[16];
    std::snprintf(size, sizeof size, "%zx", part.size());
    absl::StrAppend(&request, size, "\r\n", part, "\r\n");
  }
  request += "0\r\n\r\n";
  Conn conn(port());
  conn.Send(request);
  Reply r = conn.Read();
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr(kGoodData));
  // The connection stays usable.
  conn.Send(Post(kInfer, kGood));
  EXPECT_EQ(conn.Read().status, 200);
}

TEST_F(HttpTest, PipelinedKeepAliveRequestsAnsweredInOrder) {
  const std::string second =
      R"({"id":"2","inputs":[{"name":"input","shape":[1],"datatype":"FP64",)"
      R"("data":[7]}]})";
  Conn conn(port());
  conn.Send(Post(kInfer, kGood) + Post(kInfer, second) + Get("/nowhere") +
            Post(kInfer, kGood));
  Reply r = conn.Read();
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr(kGoodData));
  r = conn.Read();
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr(R"("id":"2")"));
  EXPECT_THAT(r.body, HasSubstr(R"("data":[7.0])"));
  EXPECT_EQ(conn.Read().status, 404);
  r = conn.Read();
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr(kGoodData));
}

TEST_F(HttpTest, CorsPreflightAndHeaders) {
  Reply r = Call(absl::StrCat("OPTIONS ", kInfer,
                              " HTTP/1.1\r\nHost: t\r\nOrigin: "
                              "https://example.test\r\n"
                              "Access-Control-Request-Method: POST\r\n\r\n"));
  EXPECT_EQ(r.status, 204);
  EXPECT_THAT(r.headers, HasSubstr("access-control-allow-origin: "
                                   "https://example.test"));
  EXPECT_THAT(r.headers,
              HasSubstr("access-control-allow-methods: post, options"));
  EXPECT_THAT(r.headers, HasSubstr("access-control-allow-headers: "
                                   "content-type, "
                                   "inference-header-content-length, "
                                   "traceparent, tracestate, x-request-id"));
  r = Call(Post(kInfer, kGood));
  EXPECT_THAT(r.headers, HasSubstr("access-control-allow-origin: "
                                   "https://example.test"));
  EXPECT_THAT(r.headers, HasSubstr("access-control-expose-headers: "
                                   "inference-header-content-length"));
}

// W3C trace context (issue 17) on the HTTP door: the caller's trace id and
// x-request-id come back in the answer's headers, as the gRPC doors send
// them in trailers; a call without them gets ids of its own.
TEST_F(HttpTest, TraceContextComesBack) {
  Reply r = Call(Post(kInfer, kGood,
                      "traceparent: "
                      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                      "\r\nx-request-id: req-http-1\r\n"));
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.headers,
              HasSubstr("traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-"));
  EXPECT_THAT(r.headers, HasSubstr("x-request-id: req-http-1"));
  EXPECT_THAT(r.headers, Not(HasSubstr("-00f067aa0ba902b7-")));
  // A refused call too.
  r = Call(Post(kInfer, "{",
                "traceparent: "
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"));
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.headers,
              HasSubstr("traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-"));
  // Without trace headers the ids go back only when the call fails.
  r = Call(Post(kInfer, kGood));
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.headers, Not(HasSubstr("\r\ntraceparent:")));
  EXPECT_THAT(r.headers, Not(HasSubstr("\r\nx-request-id:")));
  r = Call(Post(kInfer, "{"));
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.headers, ::testing::ContainsRegex(
                             "traceparent: 00-[0-9a-f]{32}-[0-9a-f]{16}-00"));
  EXPECT_THAT(r.headers, Not(HasSubstr("\r\nx-request-id:")));
}

TEST_F(HttpTest, CountedInTheMetricsAsHttpInfer) {
  ExpectGoodCall();
  auto scrape = testing::HttpRequest(server_->metrics_port(), "/metrics");
  ASSERT_TRUE(scrape.ok());
  EXPECT_THAT(
      scrape->body,
      HasSubstr("relu_requests_total{code=\"OK\",method=\"HttpInfer\"}"));
  EXPECT_THAT(scrape->body, HasSubstr("relu_requests_total{code=\"INVALID_"
                                      "ARGUMENT\",method=\"HttpInfer\"}"));
}

TEST(HttpServerTest, NoCorsHeadersAndNoPreflightByDefault) {
  auto server = ServerProcess::Start();
  ASSERT_NE(server, nullptr);
  Conn conn(server->http_port());
  conn.Send(absl::StrCat("OPTIONS ", kInfer, " HTTP/1.1\r\nHost: t\r\n\r\n"));
  Reply r = conn.Read();
  EXPECT_EQ(r.status, 405);
  EXPECT_THAT(r.headers, ::testing::Not(HasSubstr("access-control")));
}

TEST(HttpServerTest, OffMeansNoListener) {
  auto server = ServerProcess::Start({"--http-address=off"});
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->http_port(), -1);
  EXPECT_THAT(server->log(), ::testing::Not(HasSubstr("HTTP listening")));
}

// A full queue answers 429 with Retry-After. The queue holds one call, and a
// batch of two waits up to 10 s to fill: the first call waits in the queue
// (seen in relu_queue_requests), the second is refused; SIGTERM then runs
// the first (the drain answers every accepted call).
TEST(HttpServerTest, FullQueueIs429WithRetryAfter) {
  auto server = ServerProcess::Start(
      {"--max-queue-requests=1", "--max-batch-requests=2",
       "--max-batch-delay-us=10000000", "--inline-when-idle=false",
       "--inline-max-elements=0"});
  ASSERT_NE(server, nullptr);
  const int port = server->http_port();
  Reply first;
  std::thread waiting([&] {
    Conn conn(port);
    conn.Send(Post(kInfer, kGood));
    first = conn.Read();
  });
  while (true) {
    auto scrape = testing::HttpRequest(server->metrics_port(), "/metrics");
    ASSERT_TRUE(scrape.ok());
    if (scrape->body.find("\nrelu_queue_requests 1\n") != std::string::npos) {
      break;
    }
    std::this_thread::yield();
  }
  Conn conn(port);
  conn.Send(Post(kInfer, kGood));
  Reply r = conn.Read();
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_THAT(r.headers, HasSubstr("retry-after: 1"));
  EXPECT_THAT(r.body, HasSubstr("{\"error\":"));
  server->Signal(SIGTERM);
  waiting.join();
  EXPECT_EQ(first.status, 200) << first.body;
  EXPECT_THAT(first.body, HasSubstr(kGoodData));
  EXPECT_EQ(server->Wait(), 0);
}

// SIGTERM while clients call over HTTP: every call answered is right (200
// with its data, or 503 once draining), and the server exits 0, which it
// does only when no accepted call was cut.
TEST(HttpServerTest, DrainUnderHttpLoadLosesNoAcceptedCall) {
  auto server = ServerProcess::Start({"--drain-timeout-s=20"});
  ASSERT_NE(server, nullptr);
  const int port = server->http_port();
  std::atomic<int> ok{0};
  std::atomic<int> refused{0};
  std::atomic<int> wrong{0};
  std::atomic<int> finished{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      Conn conn(port);
      struct Count {
        std::atomic<int>& n;
        ~Count() { ++n; }
      } count{finished};
      while (true) {
        if (!conn.Send(Post(kInfer, kGood))) return;
        Reply r = conn.Read();
        if (!r.ok) return;  // closed: after the drain
        if (r.status == 200 && r.body.find(kGoodData) != std::string::npos) {
          ++ok;
        } else if (r.status == 503) {
          ++refused;
          if (r.body.find("server is draining") == std::string::npos) ++wrong;
          return;
        } else {
          ++wrong;
          return;
        }
      }
    });
  }
  while (ok.load() < 200 && finished.load() == 0) std::this_thread::yield();
  server->Signal(SIGTERM);
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(server->Wait(), 0) << server->log();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GE(ok.load(), 200);
}

}  // namespace
}  // namespace relu

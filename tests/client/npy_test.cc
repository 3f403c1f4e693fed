// .npy reading and writing, and compatibility with NumPy's own files.
#include "client/cli/npy.h"

#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "tests/client/python_numpy.h"

namespace relu::cli {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/relu_npy_test_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf " + path_).c_str()); }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

Tensor Sample(DataType dtype, std::vector<int64_t> shape) {
  Tensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.data.resize(static_cast<size_t>(t.ElementCount()) * ElementSize(dtype));
  for (size_t i = 0; i < t.data.size(); ++i)
    t.data[i] = static_cast<char>(i * 7 + 1);
  return t;
}

TEST(NpyTest, RoundTripsEveryDtypeAndShape) {
  for (DataType dtype :
       {DataType::kFloat16, DataType::kFloat32, DataType::kFloat64}) {
    for (std::vector<int64_t> shape : std::vector<std::vector<int64_t>>{
             {}, {5}, {2, 3}, {2, 3, 4}, {0}, {3, 0, 2}}) {
      const Tensor t = Sample(dtype, shape);
      absl::StatusOr<std::string> bytes = SerializeNpy(t);
      ASSERT_TRUE(bytes.ok()) << bytes.status();
      // Data starts 64-byte aligned after a newline-terminated header.
      const size_t header_len = static_cast<unsigned char>((*bytes)[8]) |
                                static_cast<unsigned char>((*bytes)[9]) << 8;
      EXPECT_EQ((10 + header_len) % 64, 0u);
      EXPECT_EQ((*bytes)[10 + header_len - 1], '\n');
      absl::StatusOr<Tensor> back = ParseNpy(*bytes);
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_EQ(back->dtype, dtype);
      EXPECT_EQ(back->shape, shape);
      EXPECT_EQ(back->data, t.data);
    }
  }
}

TEST(NpyTest, HeaderText) {
  absl::StatusOr<std::string> bytes =
      SerializeNpy(Sample(DataType::kFloat32, {3}));
  ASSERT_TRUE(bytes.ok());
  EXPECT_NE(
      bytes->find("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"),
      std::string::npos);
  bytes = SerializeNpy(Sample(DataType::kFloat64, {}));
  ASSERT_TRUE(bytes.ok());
  EXPECT_NE(bytes->find("'shape': (), }"), std::string::npos);
  EXPECT_EQ(SerializeNpy(Sample(DataType::kBFloat16, {2})).status().code(),
            absl::StatusCode::kInvalidArgument);
}

std::string WithHeader(const std::string& header, const std::string& data) {
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size());
  out += '\0';
  return out + header + data;
}

TEST(NpyTest, ParsesVariants) {
  // Big-endian float32 1.0 and 2.0, keys in another order, no trailing comma.
  absl::StatusOr<Tensor> t = ParseNpy(
      WithHeader("{'shape': (2,), 'fortran_order': False, 'descr': '>f4'}\n",
                 std::string("\x3f\x80\x00\x00\x40\x00\x00\x00", 8)));
  ASSERT_TRUE(t.ok()) << t.status();
  absl::StatusOr<std::vector<float>> v = t->ToFloat32();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, (std::vector<float>{1.0f, 2.0f}));
}

TEST(NpyTest, RejectsBadFiles) {
  const std::string four(4, '\0');
  for (const std::string& bad : {
           std::string("not numpy"),
           WithHeader(
               "{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }\n",
               four),
           WithHeader(
               "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }\n",
               four),
           WithHeader(
               "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n",
               four),
           WithHeader(
               "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }\n",
               four),
           WithHeader("{'descr': '<f4', 'shape': (1,), }\n", four),
           WithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (1,",
                      four),
       }) {
    EXPECT_EQ(ParseNpy(bad).status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(NpyTest, NumpyReadsOursAndWeReadNumpys) {
  if (!testing::HaveNumpy()) GTEST_SKIP() << "no python3 numpy";
  TempDir dir;
  for (const char* dtype : {"float16", "float32", "float64"}) {
    const std::string theirs =
        dir.File(std::string("theirs_") + dtype + ".npy");
    const std::string ours = dir.File(std::string("ours_") + dtype + ".npy");
    std::optional<std::string> out = testing::RunPython(
        std::string("import numpy as np\n") +
        "a = (np.arange(24).reshape(2, 3, 4) - 11.5).astype(np." + dtype +
        ")\n" + "np.save('" + theirs + "', a)\n");
    ASSERT_TRUE(out.has_value());
    absl::StatusOr<Tensor> t = ReadNpyFile(theirs);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 3, 4}));
    ASSERT_TRUE(WriteNpyFile(ours, *t).ok());
    out = testing::RunPython(std::string("import numpy as np\n") +
                             "a = np.load('" + ours + "')\n" + "b = np.load('" +
                             theirs + "')\n" +
                             "print(a.dtype, a.shape, bool((a == b).all()), "
                             "a.flags['C_CONTIGUOUS'])\n");
    ASSERT_TRUE(out.has_value());
    EXPECT_EQ(*out, std::string(dtype) + " (2, 3, 4) True True\n");
  }
}

}  // namespace
}  // namespace relu::cli

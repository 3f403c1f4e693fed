// ResponseSlices::PlanInPlace: the answer written over the request's data in
// the slices it was received in, at whatever byte the network put it,
// elements split across slices included, with every kernel path, against
// the scalar kernel on the whole tensor; and Plan() into slices of its own
// from the same pieces.
#include "server/service/response_slices.h"

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "server/kernel/relu_kernel.h"

namespace relu::service {
namespace {

using kernel::DType;

struct Task final : batching::BatchTask {
  void Done(absl::Status) override {}
};

// `bytes` cut into slices of random sizes up to `max_slice` bytes
// (grpc::Slice holds up to 23 bytes inline, at any alignment; larger ones
// are allocated).
std::vector<grpc::Slice> Cut(const std::string& bytes, size_t max_slice,
                             std::mt19937_64& rng) {
  std::vector<grpc::Slice> slices;
  for (size_t at = 0; at < bytes.size();) {
    // Above 23 bytes, slices are allocated (and so element-aligned).
    const size_t least = max_slice > 23 ? 24 : 1;
    const size_t size =
        std::min(bytes.size() - at, least + rng() % (max_slice - least + 1));
    slices.emplace_back(bytes.data() + at, size);
    at += size;
  }
  return slices;
}

void RunTask(kernel::Isa isa, const Task& task) {
  if (task.pieces.empty()) {
    const kernel::Segment& s = task.segment;
    kernel::ApplyOnThread(isa, s.dtype, s.params, s.in, s.out, s.n);
    return;
  }
  for (const kernel::Segment& s : task.pieces) {
    kernel::ApplyOnThread(isa, s.dtype, s.params, s.in, s.out, s.n);
  }
}

std::string Bytes(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string out;
  for (const grpc::Slice& slice : slices) {
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return out;
}

TEST(ResponseSlicesTest, InPlaceMatchesTheScalarKernelWhateverTheCuts) {
  std::mt19937_64 rng(15);
  kernel::Params params;
  params.max_value = 6.0;
  params.negative_slope = 0.25;
  params.threshold = 0.5;
  for (DType dtype :
       {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16}) {
    const size_t size = kernel::ElementSize(dtype);
    int misaligned = 0, split = 0;
    for (size_t max_slice : {1, 3, 9, 23, 64, 4096}) {
      for (size_t elements : {1, 2, 7, 100, 3001}) {
        for (kernel::Isa isa :
             {kernel::Isa::kScalar, kernel::Isa::kAvx2, kernel::Isa::kAvx512}) {
          if (!kernel::IsaSupported(isa)) continue;
          // A request: 16 bytes of fields, then the data, then 5 more
          // bytes.
          std::string data(elements * size, '\0');
          for (char& byte : data) byte = static_cast<char>(rng());
          const std::string request = std::string(16, 'h') + data + "ttttt";
          std::vector<grpc::Slice> received = Cut(request, max_slice, rng);
          // The data's pieces, as the wire parse gives them: views into the
          // received slices.
          std::vector<absl::string_view> pieces;
          bool aligned = true;
          size_t at = 0;
          for (const grpc::Slice& slice : received) {
            const size_t begin = std::max<size_t>(at, 16);
            const size_t end = std::min(at + slice.size(), 16 + data.size());
            if (begin < end) {
              pieces.emplace_back(
                  reinterpret_cast<const char*>(slice.begin()) + (begin - at),
                  end - begin);
              aligned =
                  aligned &&
                  reinterpret_cast<uintptr_t>(pieces.back().data()) % size == 0;
            }
            at += slice.size();
          }
          std::string want = data;
          kernel::ApplyOnThread(kernel::Isa::kScalar, dtype, params,
                                want.data(), want.data(), elements);
          const std::string where = std::string(kernel::DTypeName(dtype)) +
                                    " " + kernel::IsaName(isa) + " max_slice " +
                                    std::to_string(max_slice) + " elements " +
                                    std::to_string(elements);

          // Into slices of its own, reading the received pieces.
          ResponseSlices copied;
          Task copy_task;
          copied.Allocate("PREFIX", data.size());
          copied.Plan(dtype, params, pieces, elements, &copy_task);
          RunTask(isa, copy_task);
          EXPECT_EQ(Bytes(copied.ToByteBuffer()), "PREFIX" + want) << where;

          // In place, whatever the pieces' alignment.
          ResponseSlices output;
          Task task;
          ASSERT_TRUE(output.PlanInPlace("PREFIX", received, dtype, params,
                                         pieces, elements, &task))
              << where;
          misaligned += !aligned;
          split += pieces.size() > 1 && elements * size % max_slice != 0;
          RunTask(isa, task);
          EXPECT_EQ(Bytes(output.ToByteBuffer()), "PREFIX" + want) << where;
        }
      }
    }
    // Not vacuous: data at addresses that are not element-aligned (the
    // small slices hold their bytes inline, at any offset), and elements
    // split across slices.
    EXPECT_GE(misaligned, 1) << kernel::DTypeName(dtype);
    EXPECT_GE(split, 1) << kernel::DTypeName(dtype);
  }
}

TEST(ResponseSlicesTest, DataOutsideTheReceivedSlicesIsNotPlannedInPlace) {
  const std::string request(40, '\0');
  std::vector<grpc::Slice> received = {grpc::Slice(request.data(), 40)};
  const std::string copy(16, '\0');  // the parse's own copy of the data
  const std::vector<absl::string_view> pieces = {copy};
  ResponseSlices output;
  Task task;
  EXPECT_FALSE(output.PlanInPlace("P", received, DType::kFloat32,
                                  kernel::Params(), pieces, 4, &task));
  EXPECT_TRUE(task.pieces.empty());
}

}  // namespace
}  // namespace relu::service

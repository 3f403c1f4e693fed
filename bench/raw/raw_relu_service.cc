#include "bench/raw/raw_relu_service.h"

#include <memory>
#include <utility>

#include "google/protobuf/io/coded_stream.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "server/service/relu_service.h"
#include "server/service/validation.h"

namespace relu::service {
namespace {

using google::protobuf::io::CodedOutputStream;

// Wire tags: field number << 3 | wire type (0 varint, 2 length-delimited).
constexpr uint8_t kResponseTensorTag = (1 << 3) | 2;
constexpr uint8_t kDTypeTag = (1 << 3) | 0;
constexpr uint8_t kShapeTag = (2 << 3) | 2;
constexpr uint8_t kDataTag = (3 << 3) | 2;

void AppendVarint(uint64_t value, std::string* out) {
  uint8_t bytes[10];
  uint8_t* end = CodedOutputStream::WriteVarint64ToArray(value, bytes);
  out->append(reinterpret_cast<const char*>(bytes), end - bytes);
}

// One call from scheduling to its answer. The request's tensor bytes are the
// kernel's input and `data_` its output; both live until the task is
// destroyed, right after Done().
class RawTask final : public batching::BatchTask {
 public:
  // `reactor` is context->DefaultReactor(), taken once: that call builds the
  // reactor anew each time.
  RawTask(grpc::CallbackServerContext* context,
          grpc::ServerUnaryReactor* reactor, grpc::ByteBuffer* response)
      : context_(context), reactor_(reactor), response_(response) {}

  bool IsCancelled() const override { return context_->IsCancelled(); }
  void Done(absl::Status status) override {
    if (status.ok()) {
      grpc::Slice slices[2] = {std::move(prefix_), std::move(data_)};
      *response_ = grpc::ByteBuffer(slices, 2);
    }
    reactor_->Finish(ToGrpcStatus(status));
  }

  v1::ApplyReLURequest& request() { return request_; }
  void SetOutput(std::string prefix, size_t data_bytes) {
    prefix_ = grpc::Slice(prefix);
    data_ = grpc::Slice(grpc_slice_malloc(data_bytes), grpc::Slice::STEAL_REF);
  }
  void* output() { return const_cast<uint8_t*>(data_.begin()); }

 private:
  grpc::CallbackServerContext* const context_;
  grpc::ServerUnaryReactor* const reactor_;
  grpc::ByteBuffer* const response_;
  v1::ApplyReLURequest request_;
  grpc::Slice prefix_;
  grpc::Slice data_;
};

// The call's deadline on the scheduler's clock, INT64_MAX when it has none.
int64_t DeadlineMicros(const grpc::CallbackServerContext& context) {
  const auto deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) {
    return INT64_MAX;
  }
  const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
      deadline - std::chrono::system_clock::now());
  return batching::Clock::Real()->NowMicros() + left.count();
}

}  // namespace

std::string EncodeResponsePrefix(int dtype, absl::Span<const int64_t> shape,
                                 size_t data_bytes) {
  std::string tensor;
  if (dtype != 0) {
    tensor.push_back(static_cast<char>(kDTypeTag));
    AppendVarint(static_cast<uint64_t>(static_cast<int64_t>(dtype)), &tensor);
  }
  if (!shape.empty()) {
    std::string packed;
    for (int64_t dim : shape) AppendVarint(static_cast<uint64_t>(dim), &packed);
    tensor.push_back(static_cast<char>(kShapeTag));
    AppendVarint(packed.size(), &tensor);
    tensor += packed;
  }
  if (data_bytes > 0) {
    tensor.push_back(static_cast<char>(kDataTag));
    AppendVarint(data_bytes, &tensor);
  }
  std::string out;
  out.push_back(static_cast<char>(kResponseTensorTag));
  AppendVarint(tensor.size() + data_bytes, &out);
  out += tensor;
  return out;
}

RawReluService::RawReluService(batching::BatchScheduler* scheduler)
    : scheduler_(scheduler) {}

grpc::ServerUnaryReactor* RawReluService::ApplyReLU(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto task = std::make_unique<RawTask>(context, reactor, response);
  // ProtoBufferReader only reads the buffer; its constructor is not const.
  grpc::ProtoBufferReader reader(const_cast<grpc::ByteBuffer*>(request));
  if (!task->request().ParseFromZeroCopyStream(&reader)) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INTERNAL,
                                 "cannot parse the ApplyReLURequest"));
    return reactor;
  }
  absl::StatusOr<ValidatedRequest> valid = ValidateRequest(task->request());
  if (!valid.ok()) {
    reactor->Finish(ToGrpcStatus(valid.status()));
    return reactor;
  }
  const v1::Tensor& tensor = task->request().tensor();
  task->SetOutput(
      EncodeResponsePrefix(tensor.dtype(), tensor.shape(), valid->bytes),
      valid->bytes);
  if (valid->elements == 0) {
    task->Done(absl::OkStatus());
    return reactor;
  }
  task->segment = {valid->dtype, valid->params, tensor.data().data(),
                   task->output(), valid->elements};
  task->bytes = valid->bytes;
  task->deadline_micros = DeadlineMicros(*context);
  std::unique_ptr<batching::BatchTask> base = std::move(task);
  absl::Status scheduled = scheduler_->Schedule(base);
  if (!scheduled.ok()) reactor->Finish(ToGrpcStatus(scheduled));
  return reactor;
}

}  // namespace relu::service

#include "tests/batching/test_util.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace relu::batching::testing {
namespace {

// kernel::ElementSize lives in the kernel library, which the batcher and its
// tests do not link.
size_t BytesPerElement(kernel::DType dtype) {
  switch (dtype) {
    case kernel::DType::kFloat64:
      return 8;
    case kernel::DType::kFloat32:
      return 4;
    case kernel::DType::kFloat16:
    case kernel::DType::kBFloat16:
      return 2;
  }
  return 1;
}

template <typename T>
void ComputeFloat(const kernel::Params& p, const void* in, void* out,
                  size_t n) {
  for (size_t i = 0; i < n; ++i) {
    T x;
    std::memcpy(&x, static_cast<const char*>(in) + i * sizeof(T), sizeof(T));
    const T t = static_cast<T>(p.threshold);
    T y;
    if (x > t) {
      y = p.max_value ? std::min(x, static_cast<T>(*p.max_value)) : x;
    } else {
      y = static_cast<T>(p.negative_slope) * (x - t);
    }
    std::memcpy(static_cast<char*>(out) + i * sizeof(T), &y, sizeof(T));
  }
}

void ComputeBits16(const kernel::Params& p, const void* in, void* out,
                   size_t n) {
  const auto add = static_cast<uint16_t>(1 + static_cast<int>(p.threshold));
  for (size_t i = 0; i < n; ++i) {
    uint16_t x;
    std::memcpy(&x, static_cast<const char*>(in) + 2 * i, 2);
    const auto y = static_cast<uint16_t>(x + add);
    std::memcpy(static_cast<char*>(out) + 2 * i, &y, 2);
  }
}

}  // namespace

void ReferenceCompute(const kernel::Segment& s) {
  switch (s.dtype) {
    case kernel::DType::kFloat32:
      ComputeFloat<float>(s.params, s.in, s.out, s.n);
      break;
    case kernel::DType::kFloat64:
      ComputeFloat<double>(s.params, s.in, s.out, s.n);
      break;
    case kernel::DType::kFloat16:
    case kernel::DType::kBFloat16:
      ComputeBits16(s.params, s.in, s.out, s.n);
      break;
  }
}

StubKernel::StubKernel(FakeClock* clock, int64_t micros_per_call)
    : clock_(clock), micros_per_call_(micros_per_call) {}

BatchScheduler::KernelFn StubKernel::Fn() {
  return [this](const kernel::Segment* segments, size_t count) {
    Run(segments, count);
  };
}

void StubKernel::Run(const kernel::Segment* segments, size_t count) {
  int64_t micros;
  {
    std::unique_lock<std::mutex> lock(mu_);
    const size_t index = begun_++;
    calls_.emplace_back(segments, segments + count);
    threads_.push_back(std::this_thread::get_id());
    max_active_ = std::max(max_active_, ++active_);
    cv_.notify_all();
    cv_.wait(lock, [&] { return !held_ || index < released_; });
    micros = micros_per_call_;
  }
  for (size_t i = 0; i < count; ++i) ReferenceCompute(segments[i]);
  if (clock_ != nullptr && micros != 0) clock_->Advance(micros);
  std::lock_guard<std::mutex> lock(mu_);
  --active_;
}

void StubKernel::set_micros_per_call(int64_t micros) {
  std::lock_guard<std::mutex> lock(mu_);
  micros_per_call_ = micros;
}

void StubKernel::Hold() {
  std::lock_guard<std::mutex> lock(mu_);
  held_ = true;
}

void StubKernel::Release() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = false;
  }
  cv_.notify_all();
}

void StubKernel::ReleaseBegun() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = begun_;
  }
  cv_.notify_all();
}

void StubKernel::WaitForCalls(size_t calls) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return begun_ >= calls; });
}

size_t StubKernel::calls_begun() {
  std::lock_guard<std::mutex> lock(mu_);
  return begun_;
}

std::vector<std::vector<kernel::Segment>> StubKernel::calls() {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_;
}

std::vector<std::thread::id> StubKernel::call_threads() {
  std::lock_guard<std::mutex> lock(mu_);
  return threads_;
}

size_t StubKernel::max_concurrent_calls() {
  std::lock_guard<std::mutex> lock(mu_);
  return max_active_;
}

void TaskRecord::WaitDone() {
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [this] { return calls > 0; });
}

bool TaskRecord::done() { return done_calls() > 0; }

int TaskRecord::done_calls() {
  std::lock_guard<std::mutex> lock(mu);
  return calls;
}

absl::Status TaskRecord::status() {
  std::lock_guard<std::mutex> lock(mu);
  return last_status;
}

bool TaskRecord::destroyed() {
  std::lock_guard<std::mutex> lock(mu);
  return gone;
}

int TaskRecord::done_calls_at_destruction() {
  std::lock_guard<std::mutex> lock(mu);
  return calls_at_destruction;
}

std::vector<uint8_t> TaskRecord::output() {
  std::lock_guard<std::mutex> lock(mu);
  return result;
}

std::thread::id TaskRecord::done_thread() {
  std::lock_guard<std::mutex> lock(mu);
  return thread;
}

TestTask::TestTask(const TaskSpec& spec, std::shared_ptr<TaskRecord> record)
    : record_(std::move(record)) {
  const size_t size = spec.n * BytesPerElement(spec.dtype);
  in_.resize(size);
  out_.assign(size, 0);
  // A small xorshift so every task has its own input.
  uint32_t state = spec.seed * 2654435761u + 1;
  for (size_t i = 0; i < size; ++i) {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    in_[i] = static_cast<uint8_t>(state);
  }
  if (spec.dtype == kernel::DType::kFloat32 ||
      spec.dtype == kernel::DType::kFloat64) {
    // Finite values in [-8, 8) so min/compare behave like numbers.
    for (size_t i = 0; i < spec.n; ++i) {
      const double v =
          static_cast<double>(in_[i * BytesPerElement(spec.dtype)]) / 16.0 -
          8.0;
      if (spec.dtype == kernel::DType::kFloat32) {
        const float f = static_cast<float>(v);
        std::memcpy(in_.data() + 4 * i, &f, 4);
      } else {
        std::memcpy(in_.data() + 8 * i, &v, 8);
      }
    }
  }
  segment.dtype = spec.dtype;
  segment.params = spec.params;
  segment.in = in_.data();
  segment.out = out_.data();
  segment.n = spec.n;
  bytes = spec.bytes != 0 ? spec.bytes : size;
  deadline_micros = spec.deadline_micros;

  record_->in = in_.data();
  record_->out = out_.data();
  record_->input = in_;
  record_->expected.assign(size, 0);
  kernel::Segment reference = segment;
  reference.out = record_->expected.data();
  ReferenceCompute(reference);
}

TestTask::~TestTask() {
  std::lock_guard<std::mutex> lock(record_->mu);
  record_->gone = true;
  record_->calls_at_destruction = record_->calls;
}

bool TestTask::IsCancelled() const { return record_->cancel.load(); }

void TestTask::Done(absl::Status status) {
  std::lock_guard<std::mutex> lock(record_->mu);
  ++record_->calls;
  record_->last_status = std::move(status);
  record_->thread = std::this_thread::get_id();
  record_->result = out_;
  record_->cv.notify_all();
}

std::unique_ptr<BatchTask> MakeTask(const TaskSpec& spec,
                                    std::shared_ptr<TaskRecord>* record) {
  *record = std::make_shared<TaskRecord>();
  return std::make_unique<TestTask>(spec, *record);
}

void RecordingObserver::OnQueueChanged(size_t requests, size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_states_.push_back({requests, bytes});
}

void RecordingObserver::OnRejected(RejectReason reason) {
  std::lock_guard<std::mutex> lock(mu_);
  rejections_.push_back(reason);
}

void RecordingObserver::OnDequeued(int64_t queue_micros) {
  std::lock_guard<std::mutex> lock(mu_);
  dequeued_.push_back(queue_micros);
}

void RecordingObserver::OnBatch(size_t requests, size_t elements,
                                CloseReason reason, int64_t kernel_micros) {
  std::lock_guard<std::mutex> lock(mu_);
  batches_.push_back({requests, elements, reason, kernel_micros});
}

std::vector<RecordingObserver::QueueState> RecordingObserver::queue_states() {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_states_;
}

std::vector<RejectReason> RecordingObserver::rejections() {
  std::lock_guard<std::mutex> lock(mu_);
  return rejections_;
}

size_t RecordingObserver::rejections(RejectReason reason) {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<size_t>(
      std::count(rejections_.begin(), rejections_.end(), reason));
}

std::vector<int64_t> RecordingObserver::dequeued() {
  std::lock_guard<std::mutex> lock(mu_);
  return dequeued_;
}

std::vector<RecordingObserver::Batch> RecordingObserver::batches() {
  std::lock_guard<std::mutex> lock(mu_);
  return batches_;
}

}  // namespace relu::batching::testing

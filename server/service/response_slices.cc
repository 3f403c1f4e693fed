#include "server/service/response_slices.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

namespace relu::service {

char* ResponseSlices::AddDataSlice(size_t size) {
  // Our own allocation, aligned for the kernel's (streaming) vector stores;
  // gRPC frees it with the slice.
  constexpr size_t kAlign = 64;
  const size_t rounded = (size + kAlign - 1) / kAlign * kAlign;
  void* start = std::aligned_alloc(kAlign, std::max(rounded, kAlign));
  if (start == nullptr) throw std::bad_alloc();
  slices_.emplace_back(start, size, [](void* p, size_t) { std::free(p); });
  return static_cast<char*>(start);
}

void ResponseSlices::Allocate(const std::string& prefix, size_t data_bytes) {
  slices_.emplace_back(prefix);
  for (size_t done = 0; done < data_bytes; done += kDataSliceBytes) {
    data_.push_back(AddDataSlice(std::min(kDataSliceBytes, data_bytes - done)));
  }
}

void ResponseSlices::Plan(kernel::DType dtype, const kernel::Params& params,
                          absl::Span<const absl::string_view> data,
                          size_t elements, batching::BatchTask* task) {
  if (data.size() == 1 && data_.size() == 1) {
    // One run, in and out: no pieces.
    task->segment = {dtype, params, data[0].data(), data_[0], elements};
    return;
  }
  task->segment = {dtype, params, nullptr, nullptr, elements};
  std::vector<kernel::Segment>& pieces = task->pieces;
  const size_t element_size = kernel::ElementSize(dtype);
  size_t out_offset = 0;
  // Adds pieces for `size` bytes (whole elements) read from `in`, cut where
  // a response slice ends (slice sizes are multiples of the element size).
  auto add = [&](const char* in, size_t size) {
    while (size > 0) {
      const size_t room = kDataSliceBytes - out_offset % kDataSliceBytes;
      const size_t take = std::min(room, size);
      pieces.push_back(
          {dtype, params, in, DataAt(out_offset), take / element_size});
      in += take;
      size -= take;
      out_offset += take;
    }
  };
  // At most one split element per received piece boundary: no reallocation
  // below.
  if (data.size() > 1) straddled_.reserve(data.size() - 1);
  size_t joined = 0;  // bytes of straddled_.back() gathered so far
  for (absl::string_view chunk : data) {
    if (joined > 0) {
      const size_t take = std::min(element_size - joined, chunk.size());
      std::memcpy(reinterpret_cast<char*>(&straddled_.back()) + joined,
                  chunk.data(), take);
      joined += take;
      chunk.remove_prefix(take);
      if (joined < element_size) continue;
      add(reinterpret_cast<const char*>(&straddled_.back()), element_size);
      joined = 0;
    }
    const size_t whole = chunk.size() / element_size * element_size;
    add(chunk.data(), whole);
    if (whole < chunk.size()) {
      straddled_.push_back(0);
      joined = chunk.size() - whole;
      std::memcpy(&straddled_.back(), chunk.data() + whole, joined);
    }
  }
}

bool ResponseSlices::PlanInPlace(const std::string& prefix,
                                 absl::Span<const grpc::Slice> received,
                                 kernel::DType dtype,
                                 const kernel::Params& params,
                                 absl::Span<const absl::string_view> data,
                                 size_t elements, batching::BatchTask* task) {
  if (data.empty()) return false;
  // Each piece's slice, found in order (pieces follow the slices' order).
  // The kernel reads and writes at any byte, so the pieces may start where
  // the network put them.
  absl::InlinedVector<ReceivedRange, 2> ranges;
  size_t slice = 0;
  for (absl::string_view piece : data) {
    const auto* start = reinterpret_cast<const uint8_t*>(piece.data());
    while (slice < received.size() &&
           !(start >= received[slice].begin() &&
             start + piece.size() <= received[slice].end())) {
      ++slice;
    }
    if (slice == received.size()) return false;  // a copy, not received
    const size_t begin = start - received[slice].begin();
    ranges.push_back({&received[slice], begin, begin + piece.size()});
  }
  slices_.emplace_back(prefix);
  ranges_ = std::move(ranges);

  // The received memory is the request's, ours alone for the call's
  // lifetime; gRPC hands it over read-only only by type.
  auto writable = [](absl::string_view piece) {
    return const_cast<char*>(piece.data());
  };
  // The whole tensor in one piece (every small request): one segment, and
  // no vector of pieces to allocate.
  if (data.size() == 1) {
    task->segment = {dtype, params, data[0].data(), writable(data[0]),
                     elements};
    return true;
  }
  task->segment = {dtype, params, nullptr, nullptr, elements};
  std::vector<kernel::Segment>& pieces = task->pieces;
  const size_t element_size = kernel::ElementSize(dtype);
  straddled_.reserve(data.size() - 1);  // at most one per piece boundary
  size_t joined = 0;  // bytes of straddled_.back() gathered so far
  for (absl::string_view chunk : data) {
    if (joined > 0) {
      const size_t take = std::min(element_size - joined, chunk.size());
      std::memcpy(reinterpret_cast<char*>(&straddled_.back()) + joined,
                  chunk.data(), take);
      straddled_parts_.push_back(
          {straddled_.size() - 1, joined, writable(chunk), take});
      joined += take;
      chunk.remove_prefix(take);
      if (joined < element_size) continue;
      uint64_t* element = &straddled_.back();
      pieces.push_back({dtype, params, element, element, 1});
      joined = 0;
    }
    const size_t whole = chunk.size() / element_size * element_size;
    if (whole > 0) {
      pieces.push_back(
          {dtype, params, chunk.data(), writable(chunk), whole / element_size});
    }
    if (whole < chunk.size()) {
      straddled_.push_back(0);
      joined = chunk.size() - whole;
      std::memcpy(&straddled_.back(), chunk.data() + whole, joined);
      straddled_parts_.push_back(
          {straddled_.size() - 1, 0, writable(chunk.substr(whole)), joined});
    }
  }
  if (pieces.size() == 1) {
    task->segment = pieces[0];
    task->segment.n = elements;
    pieces.clear();
  }
  return true;
}

grpc::ByteBuffer ResponseSlices::ToByteBuffer() {
  for (const StraddledPart& part : straddled_parts_) {
    std::memcpy(
        part.to,
        reinterpret_cast<const char*>(&straddled_[part.element]) + part.offset,
        part.size);
  }
  for (const ReceivedRange& range : ranges_) {
    slices_.push_back(range.slice->sub(range.begin, range.end));
  }
  ranges_.clear();
  straddled_parts_.clear();
  return grpc::ByteBuffer(slices_.data(), slices_.size());
}

}  // namespace relu::service

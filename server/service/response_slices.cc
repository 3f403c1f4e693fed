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

}  // namespace relu::service

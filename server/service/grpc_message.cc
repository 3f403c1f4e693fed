#include "server/service/grpc_message.h"

#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <new>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpc/byte_buffer.h"

namespace grpc::internal {

// ByteBuffer names this class its friend (gRPC's own tests define it); it
// is the one way to read whether a received message is compressed, which
// ByteBuffer keeps in its grpc_byte_buffer (data.raw.compression). Defined
// nowhere in gRPC's libraries (checked with nm on Debian's 1.51).
class GrpcByteBufferPeer {
 public:
  explicit GrpcByteBufferPeer(ByteBuffer* buffer) : buffer_(buffer) {}
  grpc_byte_buffer* c_buffer() { return buffer_->c_buffer(); }

 private:
  ByteBuffer* const buffer_;
};

}  // namespace grpc::internal

namespace relu::service {
namespace {

// Output slices: reserved, allocated and filled one at a time.
constexpr size_t kSliceBytes = size_t{1} << 20;

const char* AlgorithmName(grpc_compression_algorithm algorithm) {
  return algorithm == GRPC_COMPRESS_GZIP ? "gzip" : "deflate";
}

grpc_compression_algorithm Compression(const grpc::ByteBuffer& message) {
  // Read only: the peer wants a mutable ByteBuffer.
  grpc_byte_buffer* raw = grpc::internal::GrpcByteBufferPeer(
                              const_cast<grpc::ByteBuffer*>(&message))
                              .c_buffer();
  if (raw == nullptr || raw->type != GRPC_BB_RAW) return GRPC_COMPRESS_NONE;
  return raw->data.raw.compression;
}

}  // namespace

bool IsCompressed(const grpc::ByteBuffer& message) {
  return Compression(message) != GRPC_COMPRESS_NONE;
}

absl::Status InflateMessage(const grpc::ByteBuffer& message, size_t max_bytes,
                            absl::FunctionRef<absl::Status(size_t)> reserve,
                            grpc::ByteBuffer* out) {
  const grpc_compression_algorithm algorithm = Compression(message);
  if (algorithm != GRPC_COMPRESS_GZIP && algorithm != GRPC_COMPRESS_DEFLATE) {
    return absl::UnimplementedError(
        absl::StrCat("request compressed with algorithm ", algorithm,
                     ": only gzip and deflate are accepted"));
  }
  std::vector<grpc::Slice> compressed;
  if (!message.Dump(&compressed).ok()) {
    return absl::InternalError("cannot read the compressed request");
  }

  // gRPC's gzip and deflate are zlib's gzip and zlib formats.
  z_stream stream{};
  if (inflateInit2(&stream,
                   MAX_WBITS + (algorithm == GRPC_COMPRESS_GZIP ? 16 : 0)) !=
      Z_OK) {
    throw std::bad_alloc();
  }
  struct End {
    z_stream* stream;
    ~End() { inflateEnd(stream); }
  } end{&stream};

  // The output, in slices of kSliceBytes; one byte past max_bytes is room
  // enough to tell a message of exactly max_bytes from a longer one.
  const size_t room = max_bytes + 1;
  std::vector<grpc::Slice> inflated;
  size_t allocated = 0;
  auto too_big = [&] {
    return absl::ResourceExhaustedError(absl::StrCat(
        "request compressed with ", AlgorithmName(algorithm), " inflates past ",
        max_bytes,
        " bytes (--max-message-bytes); it was not decompressed further"));
  };
  size_t next = 0;  // the compressed slice to feed next
  int result = Z_OK;
  while (result != Z_STREAM_END) {
    if (stream.avail_in == 0) {
      if (next == compressed.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("request compressed with ", AlgorithmName(algorithm),
                         " ends before its compressed stream does"));
      }
      stream.next_in = const_cast<Bytef*>(compressed[next].begin());
      stream.avail_in = static_cast<uInt>(compressed[next].size());
      ++next;
    }
    if (stream.avail_out == 0) {
      if (allocated == room) return too_big();
      const size_t size = std::min(kSliceBytes, room - allocated);
      if (absl::Status s = reserve(size); !s.ok()) return s;
      void* slice = std::malloc(size);
      if (slice == nullptr) throw std::bad_alloc();
      inflated.emplace_back(slice, size, [](void* p) { std::free(p); });
      stream.next_out = static_cast<Bytef*>(slice);
      stream.avail_out = static_cast<uInt>(size);
      allocated += size;
    }
    result = inflate(&stream, Z_NO_FLUSH);
    if (result != Z_OK && result != Z_STREAM_END && result != Z_BUF_ERROR) {
      return absl::InvalidArgumentError(
          absl::StrCat("request compressed with ", AlgorithmName(algorithm),
                       " does not inflate: ",
                       stream.msg != nullptr ? stream.msg : zError(result)));
    }
  }
  if (stream.avail_in > 0 || next < compressed.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("request compressed with ", AlgorithmName(algorithm),
                     " goes on after its compressed stream ends"));
  }
  const size_t total = allocated - stream.avail_out;
  if (total > max_bytes) return too_big();
  if (!inflated.empty()) {
    grpc::Slice& last = inflated.back();
    last = last.sub(0, last.size() - stream.avail_out);
  }
  *out = grpc::ByteBuffer(inflated.data(), inflated.size());
  return absl::OkStatus();
}

}  // namespace relu::service

#include "server/service/request_wire.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "google/protobuf/io/coded_stream.h"

namespace relu::service {
namespace {

using google::protobuf::io::CodedOutputStream;

// Wire types and the field numbers read here (relu.proto).
constexpr uint32_t kVarint = 0;
constexpr uint32_t kFixed64 = 1;
constexpr uint32_t kLengthDelimited = 2;
constexpr uint32_t kStartGroup = 3;
constexpr uint32_t kEndGroup = 4;
constexpr uint32_t kFixed32 = 5;
// Protobuf's default recursion limit, which groups count against too.
constexpr int kMaxGroupDepth = 100;
constexpr uint32_t kTensorField = 1;  // ApplyReLURequest.tensor
constexpr uint32_t kDataField = 3;    // Tensor.data
// ApplyReLUResponse.tensor and Tensor's fields, for the response prefix.
constexpr uint8_t kResponseTensorTag = (1 << 3) | kLengthDelimited;
constexpr uint8_t kDTypeTag = (1 << 3) | kVarint;
constexpr uint8_t kShapeTag = (2 << 3) | kLengthDelimited;
constexpr uint8_t kDataTag = (kDataField << 3) | kLengthDelimited;

void AppendVarint(uint64_t value, std::string* out) {
  uint8_t bytes[10];
  uint8_t* end = CodedOutputStream::WriteVarint64ToArray(value, bytes);
  out->append(reinterpret_cast<const char*>(bytes), end - bytes);
}

// Reads forward through a message split into chunks, never past limit().
class ChunkReader {
 public:
  explicit ChunkReader(absl::Span<const absl::string_view> chunks)
      : chunks_(chunks) {
    for (absl::string_view chunk : chunks) limit_ += chunk.size();
  }

  size_t position() const { return position_; }
  size_t limit() const { return limit_; }
  void set_limit(size_t limit) { limit_ = limit; }
  bool AtLimit() const { return position_ == limit_; }

  // Reads a varint of at most 10 bytes, appending its bytes to `raw` (when
  // not null) and setting `*size` to their count (when not null).
  bool ReadVarint(uint64_t* value, std::string* raw, size_t* size = nullptr) {
    // Fast path: the varint ends within the current chunk.
    if (chunk_ < chunks_.size()) {
      const absl::string_view chunk = chunks_[chunk_];
      const char* start = chunk.data() + offset_;
      const size_t available =
          std::min({chunk.size() - offset_, limit_ - position_, size_t{10}});
      uint64_t result = 0;
      for (size_t i = 0; i < available; ++i) {
        const auto byte = static_cast<uint8_t>(start[i]);
        result |= uint64_t{byte & 0x7fu} << (7 * i);
        if ((byte & 0x80u) == 0) {
          if (raw != nullptr) raw->append(start, i + 1);
          if (size != nullptr) *size = i + 1;
          Read(i + 1, [](absl::string_view) {});
          *value = result;
          return true;
        }
      }
      if (available == 10) return false;  // longer than 10 bytes
    }
    // Byte by byte, across chunks.
    uint64_t result = 0;
    for (int i = 0; i < 10; ++i) {
      char byte = 0;
      if (!Read(1, [&](absl::string_view piece) { byte = piece[0]; })) {
        return false;
      }
      if (raw != nullptr) raw->push_back(byte);
      result |= uint64_t{static_cast<uint8_t>(byte) & 0x7fu} << (7 * i);
      if ((static_cast<uint8_t>(byte) & 0x80u) == 0) {
        if (size != nullptr) *size = i + 1;
        *value = result;
        return true;
      }
    }
    return false;
  }

  // Appends the next `n` bytes to `out`.
  bool CopyTo(size_t n, std::string* out) {
    return Read(n, [out](absl::string_view piece) {
      out->append(piece.data(), piece.size());
    });
  }

  // Passes over the next `n` bytes, calling `sink` on them in pieces.
  template <typename Sink>
  bool Skip(size_t n, Sink sink) {
    return Read(n, sink);
  }

  // Appends views of the next `n` bytes to `out`.
  bool ViewTo(size_t n, absl::InlinedVector<absl::string_view, 1>* out) {
    return Read(n, [out](absl::string_view piece) { out->push_back(piece); });
  }

 private:
  // Passes the next `n` bytes to `sink` in pieces, one per chunk they span;
  // false (and nothing read) when fewer than `n` remain before limit().
  template <typename Sink>
  bool Read(size_t n, Sink sink) {
    if (n > limit_ - position_) return false;
    position_ += n;
    while (n > 0) {
      const absl::string_view chunk = chunks_[chunk_];
      const size_t take = std::min(n, chunk.size() - offset_);
      if (take > 0) sink(chunk.substr(offset_, take));
      n -= take;
      offset_ += take;
      if (offset_ == chunk.size()) {
        ++chunk_;
        offset_ = 0;
      }
    }
    return true;
  }

  absl::Span<const absl::string_view> chunks_;
  size_t chunk_ = 0;   // chunks_[chunk_] holds the next byte
  size_t offset_ = 0;  // within chunks_[chunk_]
  size_t position_ = 0;
  size_t limit_ = 0;
};

// One field's tag, already read.
struct Tag {
  uint32_t field = 0;
  uint32_t wire_type = 0;
  std::string raw;  // its bytes on the wire
};

// Protobuf reads tags and lengths as varints of at most 5 bytes (a longer
// encoding of a small value fails its parse), keeps a tag's low 32 bits (the
// fifth byte's high bits are dropped, not refused), and refuses lengths this
// close to 2 GiB (ParseContext's slop).
constexpr size_t kMaxVarint32Bytes = 5;
constexpr uint64_t kMaxLength = std::numeric_limits<int32_t>::max() - 16;

// A tag's value as protobuf reads it; false for field 0.
bool DecodeTag(uint64_t value, uint32_t* field, uint32_t* wire_type) {
  const auto tag = static_cast<uint32_t>(value);
  *field = tag >> 3;
  *wire_type = tag & 7;
  return *field != 0;
}

// Reads the next tag (its bytes appended to `raw` when not null). False for
// a cut-off or malformed one.
bool PeekTag(ChunkReader& reader, uint32_t* field, uint32_t* wire_type,
             std::string* raw = nullptr) {
  uint64_t value = 0;
  size_t size = 0;
  return reader.ReadVarint(&value, raw, &size) && size <= kMaxVarint32Bytes &&
         DecodeTag(value, field, wire_type);
}

// PeekTag keeping its bytes, and false also for wire types other than
// varint, fixed64, length-delimited and fixed32 (groups included): those are
// left to protobuf's own parser.
bool ReadTag(ChunkReader& reader, Tag* tag) {
  tag->raw.clear();
  if (!PeekTag(reader, &tag->field, &tag->wire_type, &tag->raw)) return false;
  return tag->wire_type == kVarint || tag->wire_type == kFixed64 ||
         tag->wire_type == kLengthDelimited || tag->wire_type == kFixed32;
}

// Reads a length prefix as protobuf would accept it (its bytes appended to
// `raw` when not null), and checks it fits before the reader's limit.
bool ReadLength(ChunkReader& reader, std::string* raw, size_t* length) {
  uint64_t value = 0;
  size_t size = 0;
  if (!reader.ReadVarint(&value, raw, &size) || size > kMaxVarint32Bytes ||
      value > kMaxLength || value > reader.limit() - reader.position()) {
    return false;
  }
  *length = static_cast<size_t>(value);
  return true;
}

// Copies the value of a field whose tag is read (its bytes appended to `out`
// after the tag's).
bool CopyField(ChunkReader& reader, const Tag& tag, std::string* out) {
  out->append(tag.raw);
  switch (tag.wire_type) {
    case kVarint: {
      uint64_t ignored = 0;
      return reader.ReadVarint(&ignored, out);
    }
    case kFixed64:
      return reader.CopyTo(8, out);
    case kFixed32:
      return reader.CopyTo(4, out);
    case kLengthDelimited: {
      size_t length = 0;
      return ReadLength(reader, out, &length) && reader.CopyTo(length, out);
    }
  }
  return false;
}

// Reads a Tensor of `length` bytes: tensor.data as views into `data`, the
// other fields copied to `fields`. False for a layout left to protobuf.
bool ReadTensor(ChunkReader& reader, size_t length, std::string* fields,
                absl::InlinedVector<absl::string_view, 1>* data,
                size_t* data_bytes) {
  const size_t outer_limit = reader.limit();
  reader.set_limit(reader.position() + length);
  bool seen_data = false;
  Tag tag;
  while (!reader.AtLimit()) {
    if (!ReadTag(reader, &tag)) return false;
    if (tag.field == kDataField && tag.wire_type == kLengthDelimited) {
      if (seen_data || !ReadLength(reader, nullptr, data_bytes) ||
          !reader.ViewTo(*data_bytes, data)) {
        return false;
      }
      seen_data = true;
    } else if (!CopyField(reader, tag, fields)) {
      return false;
    }
  }
  reader.set_limit(outer_limit);
  return true;
}

bool SkipField(ChunkReader& reader, uint32_t field, uint32_t wire_type,
               int depth);

// Passes over a group's fields up to its end tag (`field`'s).
bool SkipGroup(ChunkReader& reader, uint32_t field, int depth) {
  if (depth > kMaxGroupDepth) return false;
  uint32_t inner = 0, wire_type = 0;
  while (PeekTag(reader, &inner, &wire_type)) {
    if (wire_type == kEndGroup) return inner == field;
    if (!SkipField(reader, inner, wire_type, depth + 1)) return false;
  }
  return false;
}

// Passes over the value of a field whose tag is read (groups included, as
// protobuf keeps them as unknown fields); false for anything malformed.
bool SkipField(ChunkReader& reader, uint32_t field, uint32_t wire_type,
               int depth) {
  auto ignore = [](absl::string_view) {};
  switch (wire_type) {
    case kStartGroup:
      return SkipGroup(reader, field, depth);
    case kVarint: {
      uint64_t value = 0;
      return reader.ReadVarint(&value, nullptr);
    }
    case kFixed64:
      return reader.Skip(8, ignore);
    case kFixed32:
      return reader.Skip(4, ignore);
    case kLengthDelimited: {
      size_t length = 0;
      return ReadLength(reader, nullptr, &length) &&
             reader.Skip(length, ignore);
    }
  }
  return false;
}

// Adds to `*rank` the dimensions of the Tensor of `length` bytes at the
// reader: a packed shape's varints (each ends in a byte below 0x80) and
// unpacked ones. Stops at anything malformed (protobuf's parse decides).
void CountTensorDimensions(ChunkReader& reader, size_t length,
                           uint32_t shape_field, size_t* rank) {
  reader.set_limit(reader.position() + length);
  uint32_t field = 0, wire_type = 0;
  while (!reader.AtLimit() && PeekTag(reader, &field, &wire_type)) {
    if (field == shape_field && wire_type == kLengthDelimited) {
      size_t bytes = 0;
      if (!ReadLength(reader, nullptr, &bytes) ||
          !reader.Skip(bytes, [rank](absl::string_view piece) {
            for (char c : piece) *rank += (static_cast<uint8_t>(c) & 0x80) == 0;
          })) {
        return;
      }
    } else {
      if (field == shape_field && wire_type == kVarint) ++*rank;
      if (!SkipField(reader, field, wire_type, 0)) return;
    }
  }
}

// The in-place reading of ParseApplyReLURequest; false when the layout is
// left to protobuf (`out` may then hold a partial result).
bool ReadInPlace(absl::Span<const absl::string_view> chunks, WireRequest* out) {
  ChunkReader reader(chunks);
  std::string fields;  // the request without tensor.data
  bool seen_tensor = false;
  Tag tag;
  while (!reader.AtLimit()) {
    if (!ReadTag(reader, &tag)) return false;
    if (tag.field != kTensorField || tag.wire_type != kLengthDelimited) {
      if (!CopyField(reader, tag, &fields)) return false;
      continue;
    }
    size_t length = 0;
    if (seen_tensor || !ReadLength(reader, nullptr, &length)) return false;
    seen_tensor = true;
    std::string tensor;
    if (!ReadTensor(reader, length, &tensor, &out->data, &out->data_bytes)) {
      return false;
    }
    fields.append(tag.raw);
    AppendVarint(tensor.size(), &fields);
    fields.append(tensor);
  }
  return out->fields.ParseFromString(fields);
}

// CountShapeDimensions for a message in one piece (small requests arrive so):
// the same walk with plain pointers. False for what it leaves to the general
// walk (groups, anything malformed).
bool ReadVarintAt(const uint8_t*& p, const uint8_t* end, size_t max_bytes,
                  uint64_t* value) {
  uint64_t result = 0;
  for (size_t i = 0; i < max_bytes && p < end; ++i) {
    const uint8_t byte = *p++;
    result |= uint64_t{byte & 0x7fu} << (7 * i);
    if ((byte & 0x80u) == 0) {
      *value = result;
      return true;
    }
  }
  return false;
}

bool CountInPiece(const uint8_t* p, const uint8_t* end, uint32_t tensor_field,
                  uint32_t shape_field, bool in_tensor, size_t* rank) {
  while (p < end) {
    uint64_t tag = 0, value = 0;
    uint32_t field = 0, wire_type = 0;
    if (!ReadVarintAt(p, end, kMaxVarint32Bytes, &tag) ||
        !DecodeTag(tag, &field, &wire_type)) {
      return false;
    }
    switch (wire_type) {
      case kVarint:
        if (!ReadVarintAt(p, end, 10, &value)) return false;
        *rank += in_tensor && field == shape_field;
        break;
      case kFixed64:
        if (end - p < 8) return false;
        p += 8;
        break;
      case kFixed32:
        if (end - p < 4) return false;
        p += 4;
        break;
      case kLengthDelimited: {
        if (!ReadVarintAt(p, end, kMaxVarint32Bytes, &value) ||
            value > kMaxLength || value > static_cast<uint64_t>(end - p)) {
          return false;
        }
        const uint8_t* field_end = p + value;
        if (!in_tensor && field == tensor_field) {
          if (!CountInPiece(p, field_end, tensor_field, shape_field, true,
                            rank)) {
            return false;
          }
        } else if (in_tensor && field == shape_field) {
          for (; p < field_end; ++p) *rank += (*p & 0x80u) == 0;
        }
        p = field_end;
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

}  // namespace

size_t CountShapeDimensions(absl::Span<const absl::string_view> chunks,
                            uint32_t tensor_field, uint32_t shape_field) {
  if (chunks.size() == 1) {
    const auto* start = reinterpret_cast<const uint8_t*>(chunks[0].data());
    size_t rank = 0;
    if (CountInPiece(start, start + chunks[0].size(), tensor_field, shape_field,
                     false, &rank)) {
      return rank;
    }
  }
  ChunkReader reader(chunks);
  const size_t end = reader.limit();
  size_t rank = 0;
  uint32_t field = 0, wire_type = 0;
  while (!reader.AtLimit() && PeekTag(reader, &field, &wire_type)) {
    if (field == tensor_field && wire_type == kLengthDelimited) {
      size_t length = 0;
      if (!ReadLength(reader, nullptr, &length)) break;
      const size_t tensor_end = reader.position() + length;
      CountTensorDimensions(reader, length, shape_field, &rank);
      // Resume after the tensor, wherever its fields stopped.
      if (reader.position() != tensor_end) break;
      reader.set_limit(end);
    } else if (!SkipField(reader, field, wire_type, 0)) {
      break;
    }
  }
  return rank;
}

bool SplitBytesField(absl::Span<const absl::string_view> chunks, uint32_t field,
                     SplitMessage* out) {
  ChunkReader reader(chunks);
  Tag tag;
  while (!reader.AtLimit()) {
    if (!ReadTag(reader, &tag)) return false;
    if (tag.field != field || tag.wire_type != kLengthDelimited) {
      if (!CopyField(reader, tag, &out->fields)) return false;
      continue;
    }
    size_t length = 0;
    out->values.emplace_back();
    if (!ReadLength(reader, nullptr, &length) ||
        !reader.ViewTo(length, &out->values.back())) {
      return false;
    }
    out->sizes.push_back(length);
    out->fields.append(tag.raw);
    out->fields.push_back('\0');  // an empty value in its place
  }
  return true;
}

bool ParseApplyReLURequest(absl::Span<const absl::string_view> chunks,
                           WireRequest* out) {
  if (ReadInPlace(chunks, out)) return true;
  // Anything else: protobuf's parse of the whole message decides.
  out->data.clear();
  out->data_bytes = 0;
  std::string whole;
  for (absl::string_view chunk : chunks)
    whole.append(chunk.data(), chunk.size());
  if (!out->fields.ParseFromString(whole)) return false;
  if (out->fields.has_tensor()) {
    out->owned_data.swap(*out->fields.mutable_tensor()->mutable_data());
  }
  out->data_bytes = out->owned_data.size();
  if (!out->owned_data.empty()) out->data.push_back(out->owned_data);
  return true;
}

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

}  // namespace relu::service

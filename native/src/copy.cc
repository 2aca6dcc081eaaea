// copyRect: a rectangle of rows from one byte buffer to another, each with
// its own stride, in one call (one memmove per row). The agent copies a
// damaged rectangle narrower than the stride this way: in JS each row would
// cost a view (subarray) and a TypedArray.set, about 0.3 µs a row.
#include <cstring>

#include "common.h"

namespace qubes {
namespace {

// The bytes of a Uint8Array argument.
Napi::Uint8Array ArgBytes(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (info.Length() <= index || !info[index].IsTypedArray() ||
      info[index].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowType(info.Env(), std::string(name) + " must be a Uint8Array");
  }
  return info[index].As<Napi::Uint8Array>();
}

// True when `rows` rows of `rowBytes` bytes, `stride` apart from `offset`, lie within `length` bytes.
bool Fits(uint64_t offset, uint64_t stride, uint64_t rowBytes, uint64_t rows, uint64_t length) {
  if (rows == 0 || rowBytes == 0) return true;
  // Each figure is below 2^31 (checked by the readers): below 2^63 in 64 bits.
  return offset + (rows - 1) * stride + rowBytes <= length;
}

// copyRect(source, sourceOffset, sourceStride, target, targetOffset, targetStride, rowBytes, rows) -> bytes copied
Napi::Value CopyRect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // wl_shm pools and framebuffers are below 2^31 bytes; so is every figure here, and no sum overflows.
  constexpr int64_t kMax = INT32_MAX;
  Napi::Uint8Array source = ArgBytes(info, 0, "source");
  uint64_t sourceOffset = static_cast<uint64_t>(ArgInteger(info, 1, "sourceOffset", 0, kMax));
  uint64_t sourceStride = static_cast<uint64_t>(ArgInteger(info, 2, "sourceStride", 0, kMax));
  Napi::Uint8Array target = ArgBytes(info, 3, "target");
  uint64_t targetOffset = static_cast<uint64_t>(ArgInteger(info, 4, "targetOffset", 0, kMax));
  uint64_t targetStride = static_cast<uint64_t>(ArgInteger(info, 5, "targetStride", 0, kMax));
  uint64_t rowBytes = static_cast<uint64_t>(ArgInteger(info, 6, "rowBytes", 0, kMax));
  uint64_t rows = static_cast<uint64_t>(ArgInteger(info, 7, "rows", 0, kMax));
  if (rows > 1 && (sourceStride < rowBytes || targetStride < rowBytes)) {
    ThrowRange(env, "a stride is shorter than a row");
  }
  if (!Fits(sourceOffset, sourceStride, rowBytes, rows, source.ByteLength()) ||
      !Fits(targetOffset, targetStride, rowBytes, rows, target.ByteLength())) {
    ThrowRange(env, "the rectangle does not fit its buffer");
  }
  if (rows == 0 || rowBytes == 0) return Napi::Number::New(env, 0);
  const uint8_t* from = source.Data() + sourceOffset;
  uint8_t* to = target.Data() + targetOffset;
  if (sourceStride == rowBytes && targetStride == rowBytes) {
    std::memmove(to, from, rowBytes * rows);
  } else {
    for (uint64_t row = 0; row < rows; row++, from += sourceStride, to += targetStride) {
      std::memmove(to, from, rowBytes);
    }
  }
  return Napi::Number::New(env, static_cast<double>(rowBytes * rows));
}

}  // namespace

void InitCopy(Napi::Env env, Napi::Object exports) {
  exports.Set("copyRect", Napi::Function::New(env, CopyRect, "copyRect"));
}

}  // namespace qubes

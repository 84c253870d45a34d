// Element types found in checkpoints and the conversions the engine needs.
#ifndef SUPRA_ENGINE_UTIL_DTYPE_H_
#define SUPRA_ENGINE_UTIL_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace supra {

enum class DType : uint8_t { kF32, kBF16, kF16, kF64, kI32, kI64 };

// Bytes per element.
size_t DTypeSize(DType dtype);
// Lower-case name used in messages: "float32", "bfloat16", ...
std::string_view DTypeName(DType dtype);
// True for the types model weights may be stored in (fp32, bf16, fp16).
bool IsWeightDType(DType dtype);

// Scalar conversions. Half and bfloat16 are handled bit-exactly (subnormals,
// infinities and NaN included); rounding to bf16/fp16 is round-to-nearest-even.
float BF16ToFloat(uint16_t bits);
uint16_t FloatToBF16(float value);
float HalfToFloat(uint16_t bits);
uint16_t FloatToHalf(float value);

// Converts `count` elements of `dtype` at `src` (any alignment) to float32.
// Returns false for dtypes without a float32 conversion (the integer types).
bool ConvertToFloat32(DType dtype, const std::byte* src, size_t count, float* dst);

}  // namespace supra

#endif  // SUPRA_ENGINE_UTIL_DTYPE_H_

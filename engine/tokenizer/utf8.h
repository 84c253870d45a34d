// UTF-8 helpers with SentencePiece's exact rules (util.h / util.cc), which the
// encoder and decoder must reproduce to give the same ids and text.
#ifndef SUPRA_ENGINE_TOKENIZER_UTF8_H_
#define SUPRA_ENGINE_TOKENIZER_UTF8_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace supra::tokenizer_internal {

inline constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";           // U+2581 "▁"
inline constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD

// The length SentencePiece assigns to the character starting with `lead`,
// from its top four bits alone (string_util::OneCharLen).
inline size_t OneCharLen(char lead) {
  static constexpr uint8_t kLengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLengths[static_cast<uint8_t>(lead) >> 4];
}

// Length of the well-formed UTF-8 character that non-empty `s` starts with,
// or 0 when it does not start with one (string_util::IsValidDecodeUTF8:
// overlong forms, surrogates and code points above U+10FFFF are invalid).
inline size_t ValidCharLength(std::string_view s) {
  const auto byte = [&s](size_t i) { return static_cast<uint8_t>(s[i]); };
  const auto trail = [&byte](size_t i) { return (byte(i) & 0xC0) == 0x80; };
  const auto valid_code_point = [](uint32_t c) { return c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF); };
  const uint8_t b0 = byte(0);
  if (b0 < 0x80) return 1;
  if (s.size() >= 2 && (b0 & 0xE0) == 0xC0) {
    const uint32_t cp = ((b0 & 0x1Fu) << 6) | (byte(1) & 0x3Fu);
    return trail(1) && cp >= 0x80 && valid_code_point(cp) ? 2 : 0;
  }
  if (s.size() >= 3 && (b0 & 0xF0) == 0xE0) {
    const uint32_t cp = ((b0 & 0x0Fu) << 12) | ((byte(1) & 0x3Fu) << 6) | (byte(2) & 0x3Fu);
    return trail(1) && trail(2) && cp >= 0x800 && valid_code_point(cp) ? 3 : 0;
  }
  if (s.size() >= 4 && (b0 & 0xF8) == 0xF0) {
    const uint32_t cp = ((b0 & 0x07u) << 18) | ((byte(1) & 0x3Fu) << 12) | ((byte(2) & 0x3Fu) << 6) | (byte(3) & 0x3Fu);
    return trail(1) && trail(2) && trail(3) && cp >= 0x10000 && valid_code_point(cp) ? 4 : 0;
  }
  return 0;
}

}  // namespace supra::tokenizer_internal

#endif  // SUPRA_ENGINE_TOKENIZER_UTF8_H_

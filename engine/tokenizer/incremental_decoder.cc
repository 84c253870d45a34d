#include "engine/tokenizer/incremental_decoder.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/util/status_macros.h"

namespace supra {
namespace {

// Length of the UTF-8 sequence that `lead` starts, by the same bit masks as
// SentencePiece's decoder (util.cc DecodeUTF8); 0 when it is not a lead byte.
int Utf8SequenceLength(uint8_t lead) {
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 0;
}

bool IsTrailByte(uint8_t b) { return (b & 0xC0) == 0x80; }

// See IncrementalDecoder::StableEnd. Only sequences starting at or after
// `min_start` are considered: text before it is already known to be final.
// A lead byte followed by fewer bytes than it needs, all trail bytes, may yet
// become one character; bytes before it decode the same whatever follows,
// and it is itself a boundary where SentencePiece's byte parser restarts.
size_t StableEndOf(const Tokenizer& tokenizer, absl::Span<const int32_t> tokens, size_t min_start) {
  const size_t n = tokens.size();
  for (size_t i = std::max(min_start, n >= 3 ? n - 3 : 0); i < n; ++i) {
    const std::optional<uint8_t> lead = tokenizer.ByteValue(tokens[i]);
    if (!lead.has_value()) continue;
    const int need = Utf8SequenceLength(*lead);
    if (need == 0 || n - i >= static_cast<size_t>(need)) continue;
    bool all_trail = true;
    for (size_t j = i + 1; j < n && all_trail; ++j) {
      const std::optional<uint8_t> b = tokenizer.ByteValue(tokens[j]);
      all_trail = b.has_value() && IsTrailByte(*b);
    }
    if (all_trail) return i;
  }
  return n;
}

// Whether the whole sequence's decode has a piece boundary before tokens[i]
// that does not depend on tokens before it: a non-byte piece ends any byte
// run, and a byte that is not a trail byte can never continue a character
// started earlier.
bool IsCleanStart(const Tokenizer& tokenizer, absl::Span<const int32_t> tokens, size_t i) {
  const std::optional<uint8_t> b = tokenizer.ByteValue(tokens[i]);
  return !b.has_value() || !IsTrailByte(*b);
}

// A token that decodes to nothing and ends a run of byte pieces.
std::optional<int32_t> AnyControlToken(const Tokenizer& tokenizer) {
  if (tokenizer.IsControl(tokenizer.eos_id())) return tokenizer.eos_id();
  if (tokenizer.IsControl(tokenizer.bos_id())) return tokenizer.bos_id();
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    if (tokenizer.IsControl(id)) return id;
  }
  return std::nullopt;
}

absl::StatusOr<std::string> TextAfter(std::string text, const std::string& prefix) {
  // Holds by construction unless the model has denormalizer rules.
  if (text.size() < prefix.size() || text.compare(0, prefix.size(), prefix) != 0) {
    return absl::InternalError(
        absl::StrCat("incremental decode lost prefix stability: '", prefix, "' is not a prefix of '", text, "'"));
  }
  return text.substr(prefix.size());
}

}  // namespace

absl::StatusOr<IncrementalDecoder> IncrementalDecoder::Create(const Tokenizer& tokenizer,
                                                              absl::Span<const int32_t> history) {
  IncrementalDecoder decoder(tokenizer);
  const size_t n = history.size();
  // The history is final (see the header), but if it ends inside a UTF-8
  // character SentencePiece would join those bytes with the first fed ones;
  // a control token between them keeps them apart.
  size_t end = StableEndOf(tokenizer, history, 0);
  std::optional<int32_t> separator;
  if (end < n) {
    separator = AnyControlToken(tokenizer);
    if (separator.has_value()) end = n;  // else hold the tail, as Step would
  }
  // Walk back from `end` to the nearest clean start whose decode is
  // non-empty: from there the leading-space rule is spent before the first
  // fed token. Control tokens decode to nothing, so skip them without
  // decoding. Usually the last token qualifies.
  size_t start = 0;
  std::string read_text;
  for (size_t p = end; p > 0;) {
    --p;
    if (tokenizer.IsControl(history[p]) || !IsCleanStart(tokenizer, history, p)) continue;
    ASSIGN_OR_RETURN(std::string text, tokenizer.Decode(history.subspan(p, end - p)));
    if (!text.empty()) {
      start = p;
      read_text = std::move(text);
      break;
    }
  }
  if (read_text.empty() && end > 0) {
    // Nothing visible in the history: decode it all from its start, where
    // SentencePiece's leading-space state is the one the whole sequence has.
    ASSIGN_OR_RETURN(read_text, tokenizer.Decode(history.subspan(0, end)));
  }
  // A held tail after `end` holds byte pieces only, so every kept id is valid.
  decoder.window_.assign(history.begin() + static_cast<std::ptrdiff_t>(start), history.end());
  decoder.read_end_ = end - start;
  if (separator.has_value()) {
    decoder.window_.push_back(*separator);
    ++decoder.read_end_;
  }
  decoder.read_text_ = std::move(read_text);
  return decoder;
}

size_t IncrementalDecoder::StableEnd() const { return StableEndOf(*tokenizer_, window_, read_end_); }

absl::StatusOr<std::string> IncrementalDecoder::Step(int32_t token) {
  if (flushed_) return absl::FailedPreconditionError("IncrementalDecoder::Step after Flush");
  if (token < 0 || token >= tokenizer_->vocab_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("token id ", token, " is outside the vocabulary [0, ", tokenizer_->vocab_size(), ")"));
  }
  window_.push_back(token);
  const size_t stable = StableEnd();
  if (stable == read_end_) return std::string();  // an incomplete UTF-8 tail grew

  const absl::Span<const int32_t> window(window_);
  ASSIGN_OR_RETURN(std::string text, tokenizer_->Decode(window.subspan(0, stable)));
  ASSIGN_OR_RETURN(std::string delta, TextAfter(text, read_text_));

  // Move the window start up to read_end_, a byte-parser boundary, if its
  // decode up to `stable` is non-empty: then the invariant on window_ holds
  // from there and the window stays short.
  ASSIGN_OR_RETURN(std::string recent, tokenizer_->Decode(window.subspan(read_end_, stable - read_end_)));
  if (!recent.empty()) {
    window_.erase(window_.begin(), window_.begin() + static_cast<std::ptrdiff_t>(read_end_));
    read_end_ = stable - read_end_;
    read_text_ = std::move(recent);
  } else {
    read_end_ = stable;
    read_text_ = std::move(text);
  }
  return delta;
}

absl::StatusOr<std::string> IncrementalDecoder::Flush() {
  if (flushed_) return absl::FailedPreconditionError("IncrementalDecoder::Flush called twice");
  flushed_ = true;
  if (read_end_ == window_.size()) return std::string();
  ASSIGN_OR_RETURN(std::string text, tokenizer_->Decode(window_));
  return TextAfter(std::move(text), read_text_);
}

}  // namespace supra

// Streaming detokenization: text deltas for tokens fed one at a time.
//
// Contract: for a decoder created with `history` and fed t1..tn, then
// Flush()ed, the concatenated deltas equal
//   Decode(history + t1..tn) minus its prefix Decode(history).
// That is what decoding each token on its own gets wrong:
//  - the text is decoded in context, so a reply that resumes a conversation
//    keeps the leading space of its first word (SentencePiece drops the
//    leading space only at the start of a sequence);
//  - byte-fallback pieces that together form one multi-byte UTF-8 character
//    come out whole: an incomplete UTF-8 tail is held back until the bytes
//    that complete it arrive; whatever is still held at Flush() decodes as
//    SentencePiece decodes it (each invalid byte U+FFFD).
// The history's text counts as emitted and final, even when it ends inside a
// UTF-8 character (a reply cut off by a token limit): its incomplete bytes
// were emitted as U+FFFD by the previous stream's Flush(). The contract then
// holds whenever Decode(history) is a prefix of Decode(history + t1..tn),
// which fails only if t1.. are the very bytes that complete that character;
// those orphan bytes then come out as U+FFFD instead of re-emitting history.
//
// Cost: each step decodes only a short window of recent tokens (from the last
// token that produced visible text), never the whole history.
//
// Assumes the model has no denormalizer rules (SentencePiece applies those to
// the whole decoded text at once); LLaMA/Mistral tokenizers have none, and
// Tokenizer::Load refuses a model that has them.
//
// Not thread-safe; one decoder per stream. The Tokenizer must outlive it.
#ifndef SUPRA_ENGINE_TOKENIZER_INCREMENTAL_DECODER_H_
#define SUPRA_ENGINE_TOKENIZER_INCREMENTAL_DECODER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/tokenizer/tokenizer.h"

namespace supra {

class IncrementalDecoder {
 public:
  // `history`: the tokens before the first one to be fed (may be empty). Only
  // a short tail of it is read and kept. INVALID_ARGUMENT for ids in that tail
  // outside the vocabulary.
  static absl::StatusOr<IncrementalDecoder> Create(const Tokenizer& tokenizer, absl::Span<const int32_t> history);

  // Feeds one token; returns the newly final text (often empty, e.g. while a
  // UTF-8 character is incomplete or for control tokens). INVALID_ARGUMENT for
  // an id outside the vocabulary (the decoder is unchanged); FAILED_PRECONDITION
  // after Flush().
  absl::StatusOr<std::string> Step(int32_t token);

  // Ends the stream: returns the text still held back. Later calls to Step or
  // Flush fail with FAILED_PRECONDITION.
  absl::StatusOr<std::string> Flush();

  // Tokens currently kept for context (bounded by the distance back to the
  // last visible text plus a held UTF-8 tail); exposed for tests.
  size_t window_size() const { return window_.size(); }

 private:
  explicit IncrementalDecoder(const Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}

  // The end of the part of window_ whose decoded text no later token can
  // change: window_.size() unless window_ ends with an incomplete UTF-8
  // sequence of byte pieces, then the index of its lead byte.
  size_t StableEnd() const;

  const Tokenizer* tokenizer_;
  // Recent tokens. window_[0] is the start of every decode; it is either the
  // start of the whole sequence or a clean start whose decode up to read_end_
  // is non-empty. Then SentencePiece's leading-space rule has been spent inside
  // [0, read_end_), and text decoded after read_end_ equals the text decoded
  // there in the whole sequence. When the history ends inside a UTF-8
  // character, a control token (decoded as nothing) follows it here, so that
  // SentencePiece's byte parser restarts at the first fed token.
  std::vector<int32_t> window_;
  // Text up to read_end_ has been emitted (or belongs to the history).
  size_t read_end_ = 0;
  // Decode(window_[0, read_end_)).
  std::string read_text_;
  bool flushed_ = false;
};

}  // namespace supra

#endif  // SUPRA_ENGINE_TOKENIZER_INCREMENTAL_DECODER_H_

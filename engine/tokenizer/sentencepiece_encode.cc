// Encoding: normalization (normalizer.cc), BPE merges (bpe_model.cc) and the
// unknown/byte-fallback pass (sentencepiece_processor.cc
// PopulateSentencePieceText), reproducing libsentencepiece 0.1.97 exactly.
#include <algorithm>
#include <functional>
#include <queue>
#include <utility>
#include <vector>

#include "engine/tokenizer/sentencepiece_model.h"
#include "engine/tokenizer/utf8.h"

namespace supra::tokenizer_internal {

size_t SentencePieceModel::MatchUserDefined(std::string_view text) const {
  for (size_t length = std::min(max_user_defined_length_, text.size()); length > 0; --length) {
    if (user_defined_.count(text.substr(0, length)) != 0) return length;
  }
  return 0;
}

std::string SentencePieceModel::Normalize(std::string_view input) const {
  const ModelProto::NormalizerSpec& spec = proto_.normalizer_spec;
  const bool ws_as_suffix = proto_.trainer_spec.treat_whitespace_as_suffix;
  std::string normalized;
  if (input.empty()) return normalized;

  // The next unit of input: a user-defined symbol, a well-formed character,
  // or one malformed byte, which becomes U+FFFD. Returns its normalized form
  // and sets *consumed to the input bytes it covers.
  const auto next_unit = [this](std::string_view rest, size_t* consumed) -> std::string_view {
    if (const size_t length = MatchUserDefined(rest); length > 0) {
      *consumed = length;
      return rest.substr(0, length);
    }
    const size_t length = ValidCharLength(rest);
    if (length == 0) {
      *consumed = 1;
      return kReplacementCharacter;
    }
    *consumed = length;
    return rest.substr(0, length);
  };

  size_t consumed = 0;
  if (spec.remove_extra_whitespaces) {
    while (!input.empty() && next_unit(input, &consumed) == " ") input.remove_prefix(consumed);
  }
  if (input.empty()) return normalized;  // all whitespace

  normalized.reserve(input.size() * 3);
  const std::string_view space = spec.escape_whitespaces ? kSpaceSymbol : std::string_view(" ");
  if (!ws_as_suffix && spec.add_dummy_prefix) normalized.append(space);

  bool is_prev_space = spec.remove_extra_whitespaces;
  while (!input.empty()) {
    std::string_view unit = next_unit(input, &consumed);
    // Leading spaces of a unit go when the previous unit ended with one.
    while (is_prev_space && !unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
    if (!unit.empty()) {
      for (const char c : unit) {
        if (spec.escape_whitespaces && c == ' ') {
          normalized.append(kSpaceSymbol);
        } else {
          normalized.push_back(c);
        }
      }
      is_prev_space = unit.back() == ' ';
    }
    input.remove_prefix(consumed);
    if (!spec.remove_extra_whitespaces) is_prev_space = false;
  }

  if (spec.remove_extra_whitespaces) {
    while (normalized.size() >= space.size() &&
           std::string_view(normalized).substr(normalized.size() - space.size()) == space) {
      normalized.resize(normalized.size() - space.size());
    }
  }
  if (ws_as_suffix && spec.add_dummy_prefix) normalized.append(space);
  return normalized;
}

std::vector<std::pair<std::string_view, int>> SentencePieceModel::EncodeNormalized(std::string_view normalized) const {
  struct Symbol {
    int prev;                // index of the previous live symbol, -1 at the start
    int next;                // index of the next live symbol, -1 at the end
    bool freeze;             // a user-defined symbol: never merged
    std::string_view piece;  // empty once merged into its left neighbour
  };
  struct SymbolPair {
    int left;
    int right;
    float score;
    size_t size;  // bytes of the merged piece; a stale pair no longer matches
  };
  // The highest score first; among equal scores the leftmost pair.
  const auto lower_priority = [](const SymbolPair& a, const SymbolPair& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::priority_queue<SymbolPair, std::vector<SymbolPair>, decltype(lower_priority)> agenda(lower_priority);

  std::vector<Symbol> symbols;
  symbols.reserve(normalized.size());
  // For unused pieces merged here: how they were (last) formed, so they can be
  // split back into their halves at the end.
  std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>> rev_merge;

  const auto maybe_add_pair = [&](int left, int right) {
    if (left == -1 || right == -1 || symbols[left].freeze || symbols[right].freeze) return;
    const std::string_view piece(symbols[left].piece.data(), symbols[left].piece.size() + symbols[right].piece.size());
    const auto it = pieces_.find(piece);
    if (it == pieces_.end()) return;
    agenda.push(SymbolPair{left, right, proto_.pieces[it->second].score, piece.size()});
    if (IsUnused(it->second)) rev_merge[piece] = {symbols[left].piece, symbols[right].piece};
  };

  // Characters (and whole user-defined symbols) are the initial symbols.
  for (std::string_view rest = normalized; !rest.empty();) {
    size_t length = MatchUserDefined(rest);
    const bool freeze = length > 0;
    if (!freeze) length = std::min(rest.size(), OneCharLen(rest.front()));
    const int index = static_cast<int>(symbols.size());
    rest.remove_prefix(length);
    symbols.push_back(
        Symbol{index - 1, rest.empty() ? -1 : index + 1, freeze, std::string_view(rest.data() - length, length)});
  }
  if (symbols.empty()) return {};

  for (size_t i = 1; i < symbols.size(); ++i) maybe_add_pair(static_cast<int>(i) - 1, static_cast<int>(i));

  while (!agenda.empty()) {
    const SymbolPair top = agenda.top();
    agenda.pop();
    Symbol& left = symbols[top.left];
    Symbol& right = symbols[top.right];
    if (left.piece.empty() || right.piece.empty() || left.piece.size() + right.piece.size() != top.size) continue;
    left.piece = std::string_view(left.piece.data(), top.size);
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.left;
    right.piece = std::string_view();
    maybe_add_pair(left.prev, top.left);
    maybe_add_pair(top.left, left.next);
  }

  std::vector<std::pair<std::string_view, int>> output;
  std::function<void(std::string_view)> resegment = [&](std::string_view w) {
    const int id = PieceToId(w);
    const auto it = IsUnused(id) ? rev_merge.find(w) : rev_merge.end();
    if (it == rev_merge.end()) {
      output.emplace_back(w, id);
      return;
    }
    resegment(it->second.first);
    resegment(it->second.second);
  };
  for (int index = 0; index != -1; index = symbols[index].next) resegment(symbols[index].piece);
  return output;
}

std::vector<int32_t> SentencePieceModel::Encode(std::string_view text) const {
  const std::string normalized = Normalize(text);
  if (normalized.empty()) return {};
  std::vector<int32_t> ids;
  bool is_prev_unk = false;
  for (const auto& [piece, id] : EncodeNormalized(normalized)) {
    // A symbol that resolves to a control piece makes SentencePiece's
    // consistency check fail, and its Encode returns no ids at all.
    if (IsControl(id)) return {};
    const bool is_unk = IsUnknown(id);
    if (is_unk && proto_.trainer_spec.byte_fallback) {
      for (const char b : piece) ids.push_back(byte_id_[static_cast<uint8_t>(b)]);
    } else if (!(is_unk && is_prev_unk)) {  // a run of unknowns is one <unk>
      ids.push_back(id);
    }
    is_prev_unk = is_unk;
  }
  return ids;
}

}  // namespace supra::tokenizer_internal

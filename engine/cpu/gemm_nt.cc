// y = x · wᵀ with both operands row-major along k (the nn.Linear layout), so
// every output is a dot product of two contiguous rows. A register tile of
// R rows of x by C rows of w keeps R·C four-lane accumulators live (8 of
// them: enough independent chains to hide the add latency) and loads each
// operand vector once per tile. k is cut into blocks that keep a tile's rows
// in L1 while the tile sweeps the rows of x.
//
// Every output element sees the same sequence of operations whatever tile
// shape covers it (lanes over a k block, lanes summed in a fixed order, the
// block's scalar tail, then added to the running value), so results do not
// depend on the batch size or on where a row sits in the batch.
#include <algorithm>
#include <array>
#include <utility>

#include "engine/cpu/ops.h"
#include "engine/cpu/vec.h"

namespace supra::cpu {
namespace {

constexpr int64_t kBlockK = 512;  // 2 KiB of each row per block
constexpr int kMaxTileRows = 4;
constexpr int kMaxTileCols = 8;

template <int R, int C>
void Tile(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t k, float* y, int64_t ldy, bool accumulate) {
  Vec4 acc[R][C];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[r][c] = Vec4{0, 0, 0, 0};
  }
  int64_t i = 0;
  for (; i + kLanes <= k; i += kLanes) {
    Vec4 xv[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) xv[r] = LoadVec(x + r * ldx + i);
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      const Vec4 wv = LoadVec(w + c * ldw + i);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[r][c] += xv[r] * wv;
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) {
      float sum = SumLanes(acc[r][c]);
      for (int64_t t = i; t < k; ++t) sum += x[r * ldx + t] * w[c * ldw + t];
      float* out = y + r * ldy + c;
      *out = accumulate ? *out + sum : sum;
    }
  }
}

using TileFn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*, int64_t, bool);

template <int R, size_t... Cs>
constexpr std::array<TileFn, sizeof...(Cs)> TileRow(std::index_sequence<Cs...>) {
  return {&Tile<R, static_cast<int>(Cs) + 1>...};
}

// kTiles[R - 1][C - 1] = Tile<R, C>.
constexpr std::array<std::array<TileFn, kMaxTileCols>, kMaxTileRows> kTiles = {
    TileRow<1>(std::make_index_sequence<kMaxTileCols>()), TileRow<2>(std::make_index_sequence<kMaxTileCols>()),
    TileRow<3>(std::make_index_sequence<kMaxTileCols>()), TileRow<4>(std::make_index_sequence<kMaxTileCols>())};

// Tile columns for a tile of `rows` rows: 8 accumulators in all.
constexpr int TileCols(int64_t rows) { return rows >= 4 ? 2 : rows == 3 ? 2 : rows == 2 ? 4 : 8; }

}  // namespace

void GemmNT(ConstMatrix x, ConstMatrix w, Matrix y, bool accumulate) {
  const int64_t n = x.rows, m = w.rows, k = x.cols;
  if (n == 0 || m == 0) return;
  if (k == 0) {  // an empty sum
    for (int64_t r = 0; r < n && !accumulate; ++r) std::fill(y.row(r), y.row(r) + m, 0.0f);
    return;
  }
  const int tile_rows = static_cast<int>(n < kMaxTileRows ? n : kMaxTileRows);
  const int tile_cols = TileCols(tile_rows);
  for (int64_t k0 = 0; k0 < k; k0 += kBlockK) {
    const int64_t kb = k - k0 < kBlockK ? k - k0 : kBlockK;
    const bool acc = accumulate || k0 > 0;
    for (int64_t c0 = 0; c0 < m; c0 += tile_cols) {
      const int cols = static_cast<int>(m - c0 < tile_cols ? m - c0 : tile_cols);
      for (int64_t r0 = 0; r0 < n; r0 += tile_rows) {
        const int rows = static_cast<int>(n - r0 < tile_rows ? n - r0 : tile_rows);
        kTiles[rows - 1][cols - 1](x.row(r0) + k0, x.stride, w.row(c0) + k0, w.stride, kb, y.row(r0) + c0, y.stride,
                                   acc);
      }
    }
  }
}

}  // namespace supra::cpu

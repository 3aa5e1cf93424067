// CUDA kernel of the fused categorical sampler (csrc/categorical.cpp on the CPU): temperature,
// optional top-k truncation and the Gumbel-max draw, one warp per row. The key of every column
// is the shared gumbel_key of fastgen/categorical.h on the column's Philox uniform (element
// (r, c) is uniform number r * cols + c of the call, csrc's counters), so the draws are bitwise
// the CPU's for the same (seed, offset).
//
// Work split inside a row's warp:
//  * top_k: the k-th largest logit is found by a most-significant-bit-first radix select on an
//    order-preserving integer image of the values (32 / 64 passes; each lane counts its strided
//    share of the columns, the warp adds the counts). What is left of k when the select ends is
//    how many columns equal to the k-th value are admitted (the CPU's ties_left).
//  * the draw: lane l takes the row's Philox blocks first + l, first + l + 32, ... (one Philox
//    evaluation feeds up to four columns, as in csrc/), keeps its best (key, column), and the
//    warp reduces the candidates. Ties at the k-th value are admitted in column order: a warp
//    prefix sum over each round of 32 blocks tells every lane how many tied columns lie before
//    its block, so in_top_k (categorical.h) sees the same budget as the CPU's serial scan.
//
// Argmax with ties to the lowest column: candidates are compared as (key, -column) pairs, a
// total order (keys are never NaN for finite logits), so the warp's reduction tree cannot
// change the winner; unadmitted columns compete with key -infinity exactly like the CPU's.
//
// Each piece of per-thread work is a host+device function so that tests/cuda/harness_categorical.cu
// replays the kernel's loops on the CPU and compares the draws with fastgen._C bitwise.
#include "fastgen/categorical.h"
#include "fastgen/params/categorical.h"
#include "fastgen/philox.h"
#include "fastgen/sampling.h"

namespace fastgen {
namespace gpu {

constexpr int kCategoricalLanes = 32;  // one warp per row

// ---- order-preserving integer images of the logits ---------------------------------------
// For finite x, y: x < y iff image(x) < image(y) and x == y iff image(x) == image(y). -0 is
// folded into +0 first, because the float comparisons of in_top_k (and the CPU's
// nth_element) treat them as one value.
template <typename T> struct OrderImage;
template <> struct OrderImage<float> {
  typedef uint32_t Bits;
  static constexpr int kBits = 32;
  static FG_HD Bits of(float x) {
    const uint32_t u = float_as_bits(x == 0.0f ? 0.0f : x);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  }
  static FG_HD float value(Bits k) { return bits_as_float((k & 0x80000000u) ? (k & 0x7FFFFFFFu) : ~k); }
};
template <> struct OrderImage<double> {
  typedef uint64_t Bits;
  static constexpr int kBits = 64;
  static FG_HD Bits of(double x) {
    const uint64_t u = double_as_bits(x == 0.0 ? 0.0 : x);
    return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
  }
  static FG_HD double value(Bits k) {
    return bits_as_double((k & 0x8000000000000000ull) ? (k & 0x7FFFFFFFFFFFFFFFull) : ~k);
  }
};

template <typename T> FG_HD const T* categorical_row(const CategoricalGpuParams& p, int64_t row) {
  return static_cast<const T*>(p.logits) + row * p.logits_stride;
}

// The CPU's rule: top_k 0 (none given) or cols (all of them) draws from the whole row.
FG_HD bool categorical_truncates(const CategoricalGpuParams& p) { return p.top_k > 0 && p.top_k < p.cols; }

// ---- top-k threshold: radix select ---------------------------------------------------------
// Lane `lane`'s share (columns lane, lane + lanes, ...) of the count of values whose image,
// masked by `mask`, equals `pattern`.
template <typename T> FG_HD int64_t count_matching(const CategoricalGpuParams& p, int64_t row, int64_t lane,
                                                   int64_t lanes, typename OrderImage<T>::Bits pattern,
                                                   typename OrderImage<T>::Bits mask) {
  const T* x = categorical_row<T>(p, row);
  int64_t n = 0;
  for (int64_t c = lane; c < p.cols; c += lanes) n += (OrderImage<T>::of(x[c]) & mask) == pattern ? 1 : 0;
  return n;
}

// One step of the select, from the top bit down. `prefix` holds the bits of the k-th largest
// image decided so far and `want` its rank among the values sharing them; `count` values share
// them with `bit` set. If at least `want` do, the k-th largest is among them; otherwise it is
// below them and they all rank above it.
template <typename Bits> FG_HD void select_bit(Bits bit, int64_t count, Bits& prefix, int64_t& want) {
  if (count >= want) {
    prefix |= bit;
  } else {
    want -= count;
  }
}

// The k-th largest value of a row and how many columns equal to it the top k admit (the second
// member of the CPU's top_k_threshold): the select's prefix and remaining rank when it ends.
template <typename T> struct TopKThreshold {
  T kth;
  int64_t ties;
};

// ---- the draw ------------------------------------------------------------------------------
// Philox blocks [first, end) holding row `row`'s elements row * cols .. row * cols + cols - 1;
// with cols % 4 != 0 a boundary block is shared with the neighbour row, each using its own lanes.
FG_HD int64_t categorical_first_block(int64_t row, int64_t cols) { return (row * cols) / 4; }
FG_HD int64_t categorical_end_block(int64_t row, int64_t cols) { return ((row + 1) * cols + 3) / 4; }

template <typename T> struct Candidate {
  T key;
  int64_t col;
};

// Loses to every real column, -infinity keys included (larger column).
template <typename T> FG_HD Candidate<T> no_candidate() {
  return Candidate<T>{-(T(1) / T(0)), static_cast<int64_t>(~0ull >> 1)};
}

// Whether a wins over b: the larger key, and on equal keys the lower column.
template <typename T> FG_HD bool beats(const Candidate<T>& a, const Candidate<T>& b) {
  return a.key > b.key || (a.key == b.key && a.col < b.col);
}

// How many of block `block`'s columns in row `row` equal the k-th value (for the warp's count
// of tied columns ahead of each block).
template <typename T> FG_HD int64_t ties_in_block(const CategoricalGpuParams& p, int64_t row, int64_t block, T kth) {
  const T* x = categorical_row<T>(p, row);
  const int64_t first = row * p.cols, last = first + p.cols;
  int64_t n = 0;
  for (int lane = 0; lane < 4; ++lane) {
    const int64_t i = 4 * block + lane;
    if (i >= first && i < last && x[i - first] == kth) ++n;
  }
  return n;
}

// The best (key, column) among block `block`'s columns in row `row`. With truncation,
// `ties_left` is how many columns equal to kth may still be admitted when this block starts
// (k's leftover minus the tied columns of earlier blocks; zero or negative: none).
template <typename T> FG_HD Candidate<T> categorical_block(const CategoricalGpuParams& p, int64_t row, int64_t block,
                                                           bool truncate, T kth, int64_t ties_left) {
  const Philox4 r = stream_block(p.stream, static_cast<uint64_t>(block));
  const T* x = categorical_row<T>(p, row);
  const T temperature = static_cast<T>(p.temperature);
  const int64_t first = row * p.cols, last = first + p.cols;
  Candidate<T> best = no_candidate<T>();
  for (int lane = 0; lane < 4; ++lane) {
    const int64_t i = 4 * block + lane;
    if (i < first || i >= last) continue;
    const int64_t c = i - first;
    Candidate<T> cand{gumbel_key(x[c], temperature, uniform_open01<T>(r.v[lane])), c};
    if (truncate && !in_top_k(x[c], kth, ties_left)) cand.key = -(T(1) / T(0));
    if (beats(cand, best)) best = cand;
  }
  return best;
}

}  // namespace gpu
}  // namespace fastgen

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
namespace fastgen {
namespace gpu {

constexpr unsigned kFullWarp = 0xffffffffu;

// Sum over the warp, every lane getting the total (butterfly).
__device__ __forceinline__ int64_t warp_total(int64_t v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(kFullWarp, v, off);
  return v;
}

// Inclusive prefix sum over the lanes (lane l gets lanes 0..l).
__device__ __forceinline__ int64_t warp_inclusive_scan(int64_t v, int lane) {
  for (int off = 1; off < 32; off <<= 1) {
    const int64_t up = __shfl_up_sync(kFullWarp, v, off);
    if (lane >= off) v += up;
  }
  return v;
}

// The warp's winning candidate, on every lane. `beats` is a strict total order on the
// candidates, so the butterfly's pairing does not matter.
template <typename T> __device__ __forceinline__ Candidate<T> warp_best(Candidate<T> c) {
  for (int off = 16; off > 0; off >>= 1) {
    const Candidate<T> other{__shfl_xor_sync(kFullWarp, c.key, off), __shfl_xor_sync(kFullWarp, c.col, off)};
    if (beats(other, c)) c = other;
  }
  return c;
}

template <typename T> __device__ TopKThreshold<T> warp_top_k_threshold(const CategoricalGpuParams& p, int64_t row,
                                                                       int lane) {
  typedef typename OrderImage<T>::Bits Bits;
  Bits prefix = 0, mask = 0;
  int64_t want = p.top_k;
  for (int b = OrderImage<T>::kBits - 1; b >= 0; --b) {
    const Bits bit = Bits(1) << b;
    mask |= bit;
    const int64_t count = warp_total(count_matching<T>(p, row, lane, kCategoricalLanes, prefix | bit, mask));
    select_bit(bit, count, prefix, want);
  }
  return TopKThreshold<T>{OrderImage<T>::value(prefix), want};
}

// Row `row` drawn by the calling warp (all 32 lanes, in step); lane 0 writes the result.
template <typename T> __device__ void categorical_warp(const CategoricalGpuParams& p, int64_t row, int lane) {
  const bool truncate = categorical_truncates(p);
  TopKThreshold<T> threshold{T(0), 0};
  if (truncate) threshold = warp_top_k_threshold<T>(p, row, lane);
  const int64_t end = categorical_end_block(row, p.cols);
  Candidate<T> best = no_candidate<T>();
  int64_t ties_behind = 0;  // tied columns in the blocks of earlier rounds
  for (int64_t base = categorical_first_block(row, p.cols); base < end; base += kCategoricalLanes) {
    const int64_t block = base + lane;
    int64_t ties_left = 0;
    if (truncate) {  // every lane takes part in the scan, with or without a block this round
      const int64_t mine = block < end ? ties_in_block<T>(p, row, block, threshold.kth) : 0;
      const int64_t upto = warp_inclusive_scan(mine, lane);
      ties_left = threshold.ties - ties_behind - (upto - mine);
      ties_behind += __shfl_sync(kFullWarp, upto, kCategoricalLanes - 1);
    }
    if (block < end) {
      const Candidate<T> cand = categorical_block<T>(p, row, block, truncate, threshold.kth, ties_left);
      if (beats(cand, best)) best = cand;
    }
  }
  best = warp_best(best);
  if (lane == 0) p.out[row] = best.col;
}

}  // namespace gpu
}  // namespace fastgen

// One warp per row, grid-stride over the rows (blockDim.x a multiple of 32). The row loop's
// bound is the same for the whole warp, so the shuffles always see all 32 lanes.
#define FG_CATEGORICAL_KERNEL(T, SUFFIX)                                                            \
  extern "C" __global__ void fg_sample_categorical_##SUFFIX(const fastgen::gpu::CategoricalGpuParams p) { \
    const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x >> 5);                      \
    const int lane = threadIdx.x & 31;                                                              \
    for (int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);   \
         row < p.rows; row += warps)                                                                \
      fastgen::gpu::categorical_warp<T>(p, row, lane);                                              \
  }

FG_CATEGORICAL_KERNEL(float, f32)
FG_CATEGORICAL_KERNEL(double, f64)
#undef FG_CATEGORICAL_KERNEL
#endif

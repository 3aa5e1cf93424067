// Host replay of the categorical sampler's kernel (kernels/categorical.cu): includes the .cu file,
// compiled by nvcc, and runs each row's warp as plain loops over its 32 lanes, calling the same
// host+device functions the lanes call (count_matching / select_bit for the top-k radix select,
// ties_in_block and categorical_block for the draw). Where the lanes talk to each other the
// replay does the same arithmetic serially: the warp's count (a sum), the prefix of tied columns
// (an exclusive scan in lane order, carried across rounds of 32 blocks) and the final choice
// among the lanes' candidates (`beats` is a total order, so the kernel's butterfly and this fold
// pick the same one). tests/cuda/test_cuda_categorical_host.py compares the draws with
// fastgen._C.sample_categorical. Not covered here: the shuffles and the launch (gpu tests do).
//
// usage: harness_categorical layout
//        harness_categorical DTYPE IN_FILE OUT_FILE ROWS COLS STRIDE TEMPERATURE TOP_K SEED OFFSET
//   IN_FILE: logits [ROWS, STRIDE] as raw DTYPE values; OUT_FILE: the draws, int64 [ROWS].
//   TEMPERATURE is parsed with strtod (pass a round-trip decimal, e.g. Python's repr).
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../../kernels/categorical.cu"

#include "harness_io.h"

using namespace fastgen::gpu;
using harness_io::read_file;
using harness_io::write_file;

namespace {


void layout() {
  SIZE(StreamParams); FIELD(StreamParams, rng); FIELD(StreamParams, seed); FIELD(StreamParams, offset);
  SIZE(CategoricalGpuParams); FIELD(CategoricalGpuParams, logits); FIELD(CategoricalGpuParams, out);
  FIELD(CategoricalGpuParams, rows); FIELD(CategoricalGpuParams, cols); FIELD(CategoricalGpuParams, logits_stride);
  FIELD(CategoricalGpuParams, temperature); FIELD(CategoricalGpuParams, top_k); FIELD(CategoricalGpuParams, stream);
}

// warp_top_k_threshold with the warp's sum done over the lanes in a loop.
template <typename T> TopKThreshold<T> replay_threshold(const CategoricalGpuParams& p, int64_t row) {
  typedef typename OrderImage<T>::Bits Bits;
  Bits prefix = 0, mask = 0;
  int64_t want = p.top_k;
  for (int b = OrderImage<T>::kBits - 1; b >= 0; --b) {
    const Bits bit = Bits(1) << b;
    mask |= bit;
    int64_t count = 0;
    for (int lane = 0; lane < kCategoricalLanes; ++lane)
      count += count_matching<T>(p, row, lane, kCategoricalLanes, prefix | bit, mask);
    select_bit(bit, count, prefix, want);
  }
  return TopKThreshold<T>{OrderImage<T>::value(prefix), want};
}

// categorical_warp, lane by lane.
template <typename T> int64_t replay_row(const CategoricalGpuParams& p, int64_t row) {
  const bool truncate = categorical_truncates(p);
  TopKThreshold<T> threshold{T(0), 0};
  if (truncate) threshold = replay_threshold<T>(p, row);
  const int64_t end = categorical_end_block(row, p.cols);
  std::vector<Candidate<T>> best(kCategoricalLanes, no_candidate<T>());
  int64_t ties_behind = 0;
  for (int64_t base = categorical_first_block(row, p.cols); base < end; base += kCategoricalLanes) {
    int64_t upto = 0;  // the inclusive scan, lane by lane
    std::vector<int64_t> ties_left(kCategoricalLanes, 0);
    for (int lane = 0; lane < kCategoricalLanes; ++lane) {
      const int64_t block = base + lane;
      if (!truncate) continue;
      const int64_t mine = block < end ? ties_in_block<T>(p, row, block, threshold.kth) : 0;
      upto += mine;
      ties_left[lane] = threshold.ties - ties_behind - (upto - mine);
    }
    ties_behind += upto;
    for (int lane = 0; lane < kCategoricalLanes; ++lane) {
      const int64_t block = base + lane;
      if (block >= end) continue;
      const Candidate<T> cand = categorical_block<T>(p, row, block, truncate, threshold.kth, ties_left[lane]);
      if (beats(cand, best[lane])) best[lane] = cand;
    }
  }
  Candidate<T> winner = best[0];
  for (int lane = 1; lane < kCategoricalLanes; ++lane)
    if (beats(best[lane], winner)) winner = best[lane];
  return winner.col;
}

template <typename T> int run(const std::vector<char>& in, const char* out_path, char** a) {
  const int64_t rows = std::atoll(a[0]), cols = std::atoll(a[1]), stride = std::atoll(a[2]);
  const double temperature = std::strtod(a[3], nullptr);
  const int64_t top_k = std::atoll(a[4]);
  const uint64_t seed = std::strtoull(a[5], nullptr, 10), offset = std::strtoull(a[6], nullptr, 10);
  if (static_cast<int64_t>(in.size()) != rows * stride * static_cast<int64_t>(sizeof(T))) {
    std::fprintf(stderr, "input holds %zu bytes, expected rows * stride values\n", in.size());
    return 2;
  }
  std::vector<int64_t> out(rows, -7);
  const CategoricalGpuParams p{in.data(), out.data(), rows, cols, stride, temperature, top_k,
                               StreamParams{nullptr, seed, offset}};
  for (int64_t r = 0; r < rows; ++r) out[r] = replay_row<T>(p, r);
  FILE* f = std::fopen(out_path, "wb");
  if (!f) { std::perror(out_path); return 2; }
  std::fwrite(out.data(), sizeof(int64_t), out.size(), f);
  std::fclose(f);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "layout") {
    layout();
    return 0;
  }
  if (argc != 11) {
    std::fprintf(stderr, "usage: harness_categorical layout | harness_categorical DTYPE IN OUT ROWS COLS STRIDE "
                         "TEMPERATURE TOP_K SEED OFFSET\n");
    return 2;
  }
  const std::string dtype = argv[1];
  const std::vector<char> in = read_file(argv[2]);
  if (dtype == "float32") return run<float>(in, argv[3], argv + 4);
  if (dtype == "float64") return run<double>(in, argv[3], argv + 4);
  std::fprintf(stderr, "unknown dtype %s\n", dtype.c_str());
  return 2;
}

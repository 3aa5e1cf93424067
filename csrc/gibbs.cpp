// Block Gibbs sampling of a Bernoulli-Bernoulli RBM on the CPU (the op `gibbs`): k steps
// v -> h -> v, the whole loop in compiled code. Step s draws the hidden states at stream offset
// offset + 2 s and the visible states at offset + 2 s + 1 (kernels/gibbs.cu and
// fastgen/_native/cuda_gibbs.py use the same counters).
//
// Two loops with the same draws: gibbs_dense puts every product on BLAS; gibbs_binary sends the
// products with a 0/1 operand to binary_matmul when binary_product_pays says so. W is the same at
// every step, and from one step to the next only some visible units change state: gibbs_binary
// then updates v @ W^T by the rows of the units that changed (+ turned on, - turned off) rather
// than summing over all the ones again. GibbsParams::binary_products picks the loop.
#include <algorithm>
#include <vector>

#include "aligned.h"
#include "fastgen.h"
#include "index_lists.h"
#include "philox_cpu.h"
#include "rbm_helpers.h"

namespace fastgen {
namespace cpu {
namespace {

using rbm_detail::at;
using rbm_detail::BinaryOperand;
using rbm_detail::bernoulli;
using rbm_detail::product;
using rbm_detail::sample_states_rows;
using rbm_detail::sigmoid_rows;
using rbm_detail::total;

// The chain with every product on BLAS.
template <typename T> void gibbs_dense(const GibbsParams<T>& p) {
  const int64_t n = p.rows, nv = p.rbm.n_visible, nh = p.rbm.n_hidden;
  if (n == 0) return;
  if (p.visible_out != p.visible_in) std::copy(p.visible_in, p.visible_in + n * nv, p.visible_out);
  std::vector<T> hidden(n * nh), visible(n * nv);
  T* v = p.visible_out;
  for (int step = 0; step < p.steps; ++step) {
    gemm<T>(false, true, n, nh, nv, T(1), v, nv, p.rbm.weights, nv, T(0), hidden.data(), nh);
    sample_states_rows(hidden.data(), hidden.data(), n, nh, p.rbm.hidden_bias, at(p.stream, 2 * step));
    gemm<T>(false, false, n, nv, nh, T(1), hidden.data(), nh, p.rbm.weights, nv, T(0), visible.data(), nv);
    if (p.clamp == nullptr) {
      sample_states_rows(visible.data(), v, n, nv, p.rbm.visible_bias, at(p.stream, 2 * step + 1));
      continue;
    }
    sample_states_rows(visible.data(), visible.data(), n, nv, p.rbm.visible_bias, at(p.stream, 2 * step + 1));
    // Clamped units keep their given value: v_out starts as a copy of v_in and is never
    // overwritten there, which also makes v_out == v_in (in place) safe.
    for (int64_t r = 0; r < n; ++r) {
      const uint8_t* mask = p.clamp + r * p.clamp_stride;
      T* vr = v + r * nv;
      const T* sr = visible.data() + r * nv;
#pragma omp simd
      for (int64_t c = 0; c < nv; ++c) vr[c] = mask[c] ? vr[c] : sr[c];
    }
  }
  if (p.hidden_probs_out != nullptr) {
    gemm<T>(false, true, n, nh, nv, T(1), v, nv, p.rbm.weights, nv, T(0), p.hidden_probs_out, nh);
    sigmoid_rows(p.hidden_probs_out, n, nh, p.rbm.hidden_bias);
  }
}

// Gibbs sampling keeps v @ W^T from step to step and adds the rows of W^T of the visible units
// that turned on and subtracts those that turned off, when those are at most this fraction of
// the ones (a change costs what a one of the full product costs, plus finding the changes).
// Sampled chains change a small fraction of their units a step (docs/performance.md, "Gibbs
// updates").
constexpr double kMaxGibbsChangeRatio = 0.75;
// Updates in a row before v @ W^T is summed afresh: 8 updates of ~30 changes add the rounding of
// ~240 terms to that of the first full sum (~100), the same order as the differences between
// the product methods.
constexpr int kMaxGibbsUpdates = 8;

// For each row, the columns whose bit differs between the masks before and after (ascending),
// with +1 where it is set after and -1 where it was set before: row r's at [starts[r], + counts[r])
// of indices and signs, the rows one after another (a row's worth of columns per row instead
// would put every row's few entries on a page of its own). Returns the total.
template <typename T>
int64_t state_changes(const uint64_t* before, const uint64_t* after, int64_t rows, int64_t words, int32_t* indices,
                      T* signs, int32_t* counts, int64_t* starts) {
  const bool parallel = rows * words >= kParallelMinElements / 16;
  int64_t total_changes = 0;
#pragma omp parallel if (parallel)
  {
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      int32_t k = 0;
      for (int64_t w = 0; w < words; ++w) k += __builtin_popcountll(before[r * words + w] ^ after[r * words + w]);
      counts[r] = k;
    }
#pragma omp single
    for (int64_t r = 0; r < rows; ++r) {
      starts[r] = total_changes;
      total_changes += counts[r];
    }
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const uint64_t* b = before + r * words;
      const uint64_t* a = after + r * words;
      int32_t* idx = indices + starts[r];
      T* sg = signs + starts[r];
      int32_t k = 0;
      for (int64_t w = 0; w < words; ++w) {
        for (uint64_t changed = b[w] ^ a[w]; changed != 0; changed &= changed - 1) {
          const int bit = __builtin_ctzll(changed);
          idx[k] = static_cast<int32_t>(w * 64 + bit);
          sg[k] = (a[w] >> bit) & 1 ? T(1) : T(-1);
          ++k;
        }
      }
    }
  }
  return total_changes;
}

// The chain with binary_matmul for the products whose operand is 0/1 (see rbm_binary.cpp).
template <typename T> void gibbs_binary(const GibbsParams<T>& p) {
  const int64_t n = p.rows, nv = p.rbm.n_visible, nh = p.rbm.n_hidden;
  if (n == 0) return;
  const rbm_detail::WeightLayouts<T> layouts(p.rbm.weights, nh, nv);
  const int64_t ldw = layouts.ldw, ldt = layouts.ldt;
  const AlignedVector<T>& W = layouts.W;
  const AlignedVector<T>& WT = layouts.WT;

  // W is the same at every step: the tables of h @ W read it from panels packed once, when there
  // are several steps and the tables would be taken for hidden states about half ones (sampled
  // hidden states usually are; the count of ones is not known before the first draw).
  AlignedVector<T> W_panels;
  if (p.steps >= 2 && binary_table_bits(n, nh, n * nh / 2) > 0) {
    W_panels.resize(table_panel_elements<T>(nh, nv));
    pack_table_panels<T>(W.data(), ldw, nh, nv, W_panels.data());
  }

  if (p.visible_out != p.visible_in) std::copy(p.visible_in, p.visible_in + n * nv, p.visible_out);
  T* v = p.visible_out;
  // hidden_pre = v @ W^T is kept apart from the hidden states: the next step may update it.
  AlignedVector<T> hidden_pre(n * ldt, T(0)), hidden(n * ldt, T(0)), visible(n * ldw, T(0));
  AlignedVector<int32_t> v_indices(n * nv), v_counts(n), h_indices(n * nh), h_counts(n);
  AlignedVector<uint64_t> h_masks(n * mask_words_for(nh));
  // The visible states as bit masks, two buffers: those hidden_pre was computed from (`basis`)
  // and the ones drawn since (`latest`); -1 where there are none (the caller's states when they
  // are not 0/1, and the clamped loop, which rebuilds its lists from merged states).
  const int64_t v_words = mask_words_for(nv);
  AlignedVector<uint64_t> v_masks(2 * n * v_words);
  AlignedVector<int32_t> change_indices, change_counts;
  AlignedVector<int64_t> change_starts;
  AlignedVector<T> change_signs;
  int basis = -1, latest = -1, updates_since_full = 0;
  // The starting states come from the caller: lists only if they are 0/1.
  int64_t v_nnz = binary_rows_from_dense<T>(v, n, nv, nv, v_indices.data(), v_counts.data(), nv);
  if (v_nnz >= 0 && p.clamp == nullptr) {
    for (int64_t r = 0; r < n; ++r)
      index_list_mask(v_indices.data() + r * nv, v_counts[r], v_words, v_masks.data() + r * v_words);
    latest = 0;
  }
  for (int step = 0; step < p.steps; ++step) {
    const BinaryOperand<T> vs{v, nv, v_indices.data(), v_counts.data(), nv, v_nnz, n, nv};
    // v @ W^T by the units that changed since hidden_pre was computed, when they are few enough;
    // from all of v otherwise, and after kMaxGibbsUpdates updates in a row, so that the rounding
    // of the running sums stays that of a sum of a few hundred terms.
    bool update = false;
    if (basis >= 0 && latest >= 0 && updates_since_full < kMaxGibbsUpdates) {
      if (change_counts.empty()) {
        change_indices.resize(n * nv);
        change_counts.resize(n);
        change_starts.resize(n);
        change_signs.resize(n * nv);
      }
      const int64_t changes = state_changes<T>(v_masks.data() + basis * n * v_words, v_masks.data() + latest * n * v_words,
                                               n, v_words, change_indices.data(), change_signs.data(),
                                               change_counts.data(), change_starts.data());
      update = static_cast<double>(changes) <= kMaxGibbsChangeRatio * static_cast<double>(v_nnz);
      if (update) {
        const BinaryRows changed{change_indices.data(), change_counts.data(), change_starts.data(), 0, n, nv};
        sparse_matmul<T>(changed, change_signs.data(), WT.data(), ldt, nh, nullptr, hidden_pre.data(), ldt, true);
      }
    }
    if (update) {
      ++updates_since_full;
    } else {
      product(vs, WT.data(), ldt, nh, hidden_pre.data(), ldt);
      updates_since_full = 0;
    }
    basis = latest;
    bernoulli<T>(hidden_pre.data(), ldt, false, hidden.data(), ldt, n, nh, p.rbm.hidden_bias, at(p.stream, 2 * step),
                 h_indices.data(), h_counts.data(), nh, h_masks.data());
    const BinaryOperand<T> hs{hidden.data(), ldt, h_indices.data(), h_counts.data(), nh, total(h_counts.data(), n),
                              n, nh, h_masks.data()};
    product(hs, W.data(), ldw, nv, visible.data(), ldw, W_panels.empty() ? nullptr : W_panels.data());
    const RandomStream sv = at(p.stream, 2 * step + 1);
    if (p.clamp == nullptr) {
      latest = basis == 0 ? 1 : 0;
      bernoulli<T>(visible.data(), ldw, false, v, nv, n, nv, p.rbm.visible_bias, sv, v_indices.data(),
                   v_counts.data(), nv, v_masks.data() + latest * n * v_words);
      v_nnz = total(v_counts.data(), n);
      continue;
    }
    bernoulli<T>(visible.data(), ldw, false, visible.data(), ldw, n, nv, p.rbm.visible_bias, sv, nullptr, nullptr, 0);
    // Clamped units keep their given value (v_out started as a copy of v_in), which may be
    // fractional: the lists are rebuilt from the merged states.
    for (int64_t r = 0; r < n; ++r) {
      const uint8_t* mask = p.clamp + r * p.clamp_stride;
      T* vr = v + r * nv;
      const T* sr = visible.data() + r * ldw;
#pragma omp simd
      for (int64_t c = 0; c < nv; ++c) vr[c] = mask[c] ? vr[c] : sr[c];
    }
    v_nnz = binary_rows_from_dense<T>(v, n, nv, nv, v_indices.data(), v_counts.data(), nv);
  }
  if (p.hidden_probs_out != nullptr) {
    const BinaryOperand<T> vs{v, nv, v_indices.data(), v_counts.data(), nv, v_nnz, n, nv};
    product(vs, WT.data(), ldt, nh, p.hidden_probs_out, nh);
    bernoulli<T>(p.hidden_probs_out, nh, true, nullptr, 0, n, nh, p.rbm.hidden_bias, p.stream, nullptr, nullptr, 0);
  }
}

}  // namespace

template <typename T> void gibbs(const GibbsParams<T>& p) {
  if (p.binary_products) return gibbs_binary(p);
  gibbs_dense(p);
}

template void gibbs<float>(const GibbsParams<float>&);
template void gibbs<double>(const GibbsParams<double>&);

}  // namespace cpu
}  // namespace fastgen

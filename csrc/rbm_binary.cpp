// The RBM loops of rbm.cpp with binary operands: every product in which one factor is a 0/1
// matrix (binarized data, sampled hidden states, sampled visible states of the chains) goes to
// binary_matmul, on index lists the sampler writes as it draws, whenever binary_product_pays
// says it beats the dense GEMM; the rest still goes to BLAS. Random draws and their offsets are
// exactly those of the dense loops, so for the same stream both produce the same samples up
// to the rounding differences of summing in another order.
//
// Both products of a Gibbs step need rows of the weights: h @ W takes rows of W [n_hidden,
// n_visible], v @ W^T rows of W^T [n_visible, n_hidden]. Both layouts are kept (cache-aligned
// copies); the gradient statistics come out in the W^T layout (one list of data rows per visible
// unit), are applied there, and W is refreshed from W^T by a blocked transpose once per batch.
//
// Gibbs sampling (rbm_gibbs_binary) has the same W at every step, and from one step to the next
// only some visible units change state: v @ W^T is then updated by the rows of the units that
// changed (+ turned on, - turned off) rather than summed over all the ones again.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "aligned.h"
#include "fastgen.h"
#include "index_lists.h"
#include "rbm_helpers.h"
#include "fastgen/math.h"
#include "philox_cpu.h"

namespace fastgen {
namespace cpu {
namespace {

using rbm_detail::apply_and_transpose;
using rbm_detail::at;
using rbm_detail::BinaryOperand;
using rbm_detail::bernoulli;
using rbm_detail::is_double;
using rbm_detail::product;
using rbm_detail::column_sums;
using rbm_detail::scale;
using rbm_detail::total;

// Before the statistics are added: VT = momentum * VT - decay * WT (momentum), or WT *= 1 - decay.
template <typename T> void decay_and_momentum(T* WT, T* VT, int64_t n, T momentum, T decay) {
  if (VT != nullptr) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinElements)
    for (int64_t i = 0; i < n; ++i) VT[i] = momentum * VT[i] - decay * WT[i];
  } else if (decay != T(0)) {
    const T keep = T(1) - decay;
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinElements)
    for (int64_t i = 0; i < n; ++i) WT[i] *= keep;
  }
}

// Gibbs sampling keeps v @ W^T from step to step and adds the rows of W^T of the visible units
// that turned on and subtracts those that turned off, when those are at most this fraction of
// the ones (a change costs what a one of the full product costs, plus finding the changes).
// Scenario D (binarized MNIST, 1,000 chains): about 30 changes a row a step against 97 ones;
// its 25 steps took 1.10x as long (paired medians, in-process) with the updates turned off.
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

}  // namespace

template <typename T> void rbm_train_batches_binary(const TrainParams<T>& p) {
  const int64_t nv = p.rbm.n_visible, nh = p.rbm.n_hidden;
  const rbm_detail::BatchShape shape(p);
  const int64_t max_batch = shape.max_batch, max_chains = shape.max_chains;
  const bool persistent = shape.persistent;
  if (max_batch == 0) return;
  // The two weight layouts; the caller's W is written back at the end.
  rbm_detail::WeightLayouts<T> layouts(p.rbm.weights, nh, nv);
  const int64_t ldw = layouts.ldw, ldt = layouts.ldt;
  AlignedVector<T>& W = layouts.W;
  AlignedVector<T>& WT = layouts.WT;
  const bool use_momentum = p.weights_velocity != nullptr;
  AlignedVector<T> VT(use_momentum ? nv * ldt : 0, T(0));
  if (use_momentum) transpose_matrix<T>(p.weights_velocity, nh, nv, nv, VT.data(), ldt);

  // Stacked [data ; chains] rows, as in the dense loop: one transposed product for the update.
  AlignedVector<T> hidden((max_batch + max_chains) * ldt, T(0)), visible((max_batch + max_chains) * ldw, T(0));
  std::vector<int32_t> visible_indices((max_batch + max_chains) * nv), visible_counts(max_batch + max_chains);
  std::vector<int32_t> chain_indices(max_chains * nh), chain_counts(max_chains);
  // The chains' bit masks, valid once the sampler has drawn the chains (not for the caller's).
  std::vector<uint64_t> chain_masks(max_chains * mask_words_for(nh));
  bool chain_masks_drawn = false;
  std::vector<int32_t> column_indices((max_batch + max_chains) * nv), column_counts(nv);
  std::vector<int64_t> column_starts(nv);
  std::vector<T> cd_chains(persistent ? 0 : max_batch * nh), bias_grad(std::max(nv, nh));
  T* chains = persistent ? p.persistent_chains : cd_chains.data();
  // Persistent chains come from the caller: usable as lists only if they are 0/1.
  int64_t chain_nnz = persistent ? binary_rows_from_dense<T>(chains, max_chains, nh, nh, chain_indices.data(),
                                                              chain_counts.data(), nh)
                                 : -1;
  const T lr = p.learning_rate;

  int64_t batch_index = 0;
  for (int64_t start = 0; start < p.n_samples; start += p.batch_size, ++batch_index) {
    const int64_t B = std::min(p.batch_size, p.n_samples - start);
    const int64_t C = persistent ? p.n_chains : B;
    const T* v = p.data + start * p.data_stride;
    const RandomStream s = at(p.stream, batch_index * shape.offsets_per_batch);
    T* hidden_pos = hidden.data();
    T* visible_pos = visible.data();
    T* hidden_neg = hidden_pos + B * ldt;
    T* visible_neg = visible_pos + B * ldw;
    int32_t* neg_indices = visible_indices.data() + B * nv;
    int32_t* neg_counts = visible_counts.data() + B;
    // The data rows are read where they are; they are copied above the chains only for the
    // stacked BLAS product of the update (see below).
    const BinaryOperand<T> data{v, p.data_stride, visible_indices.data(), visible_counts.data(), nv,
                                binary_rows_from_dense<T>(v, B, nv, p.data_stride, visible_indices.data(),
                                                          visible_counts.data(), nv),
                                B, nv};

    // Positive phase: P(h | v_data); CD-k also starts its chains here.
    product(data, WT.data(), ldt, nh, hidden_pos, ldt);
    if (persistent) {
      bernoulli<T>(hidden_pos, ldt, true, nullptr, 0, B, nh, p.rbm.hidden_bias, s, nullptr, nullptr, 0);
    } else {
      bernoulli<T>(hidden_pos, ldt, true, chains, nh, B, nh, p.rbm.hidden_bias, s, chain_indices.data(),
                   chain_counts.data(), nh, chain_masks.data());
      chain_masks_drawn = true;
      chain_nnz = total(chain_counts.data(), B);
    }

    // Negative phase: k block-Gibbs steps h -> v -> h from the chains.
    int64_t neg_nnz = 0;
    for (int step = 0; step < p.cd_k; ++step) {
      const BinaryOperand<T> h{chains, nh, chain_indices.data(), chain_counts.data(), nh, chain_nnz, C, nh,
                               chain_masks_drawn ? chain_masks.data() : nullptr};
      product(h, W.data(), ldw, nv, visible_neg, ldw);
      bernoulli<T>(visible_neg, ldw, false, visible_neg, ldw, C, nv, p.rbm.visible_bias, at(s, 1 + 2 * step),
                   neg_indices, neg_counts, nv);
      neg_nnz = total(neg_counts, C);
      const BinaryOperand<T> vk{visible_neg, ldw, neg_indices, neg_counts, nv, neg_nnz, C, nv};
      product(vk, WT.data(), ldt, nh, hidden_neg, ldt);
      if (step + 1 == p.cd_k && !persistent) {
        bernoulli<T>(hidden_neg, ldt, true, nullptr, 0, C, nh, p.rbm.hidden_bias, s, nullptr, nullptr, 0);
      } else {
        bernoulli<T>(hidden_neg, ldt, true, chains, nh, C, nh, p.rbm.hidden_bias, at(s, 2 + 2 * step),
                     chain_indices.data(), chain_counts.data(), nh, chain_masks.data());
        chain_masks_drawn = true;
        chain_nnz = total(chain_counts.data(), C);
      }
    }

    // Biases (no weight decay): gradients are differences of means. Then the hidden
    // probabilities are scaled into the update's factors (after their column sums are taken).
    const auto bias_updates = [&] {
      column_sums(bias_grad.data(), v, B, p.data_stride, T(1) / B, visible_neg, C, ldw, T(-1) / C, nv);
      sgd_momentum_update(p.rbm.visible_bias, p.visible_bias_velocity, bias_grad.data(), nv, lr, p.momentum, T(0));
      column_sums(bias_grad.data(), hidden_pos, B, ldt, T(1) / B, hidden_neg, C, ldt, T(-1) / C, nh);
      sgd_momentum_update(p.rbm.hidden_bias, p.hidden_bias_velocity, bias_grad.data(), nh, lr, p.momentum, T(0));
      scale(hidden_pos, B * ldt, lr / static_cast<T>(B));
      scale(hidden_neg, C * ldt, -lr / static_cast<T>(C));
    };

    // Weights, in the W^T layout: [v_data ; v_k]^T @ [P(h|v_data) lr/B ; P(h|v_k) (-lr/C)].
    T* target = use_momentum ? VT.data() : WT.data();
    const int64_t stacked_nnz = data.nnz >= 0 ? data.nnz + neg_nnz : -1;
    if (stacked_nnz >= 0 && binary_product_pays(nv, B + C, nh, stacked_nnz, is_double(T()))) {
      const BinaryRows parts[2] = {data.lists(), BinaryRows{neg_indices, neg_counts, nullptr, nv, C, nv}};
      const int64_t row_offsets[2] = {0, B};
      // Both are serial and independent: one thread sorts the lists by column while the other
      // does the biases (on MNIST about 3 % and 2 % of a one-thread epoch, which the second
      // thread used to wait through).
#pragma omp parallel sections if ((B + C) * (nv + nh) >= kParallelMinElements)
      {
#pragma omp section
        transpose_binary_rows(parts, row_offsets, 2, nv, column_indices.data(), column_counts.data(),
                              column_starts.data());
#pragma omp section
        bias_updates();
      }
      decay_and_momentum(WT.data(), use_momentum ? VT.data() : nullptr, nv * ldt, p.momentum, lr * p.weight_decay);
      const BinaryRows columns{column_indices.data(), column_counts.data(), column_starts.data(), 0, nv, B + C};
      binary_matmul<T>(columns, hidden_pos, ldt, nh, nullptr, target, ldt, /*accumulate=*/true);
    } else {
      bias_updates();
      decay_and_momentum(WT.data(), use_momentum ? VT.data() : nullptr, nv * ldt, p.momentum, lr * p.weight_decay);
      for (int64_t r = 0; r < B; ++r) std::copy(v + r * p.data_stride, v + r * p.data_stride + nv, visible_pos + r * ldw);
      gemm<T>(true, false, nv, nh, B + C, T(1), visible_pos, ldw, hidden_pos, ldt, T(1), target, ldt);
    }
    apply_and_transpose(WT.data(), use_momentum ? VT.data() : nullptr, nv, nh, ldt, W.data(), ldw);
  }

  for (int64_t j = 0; j < nh; ++j) std::copy(W.data() + j * ldw, W.data() + j * ldw + nv, p.rbm.weights + j * nv);
  if (use_momentum) transpose_matrix<T>(VT.data(), nv, nh, ldt, p.weights_velocity, nv);
}

template <typename T> void rbm_gibbs_binary(const GibbsParams<T>& p) {
  const int64_t n = p.rows, nv = p.rbm.n_visible, nh = p.rbm.n_hidden;
  if (n == 0) return;
  const rbm_detail::WeightLayouts<T> layouts(p.rbm.weights, nh, nv);
  const int64_t ldw = layouts.ldw, ldt = layouts.ldt;
  const AlignedVector<T>& W = layouts.W;
  const AlignedVector<T>& WT = layouts.WT;

  // W is the same at every step: the tables of h @ W read it from panels packed once, when there
  // are several steps and the tables would be taken for hidden states about half ones (sampled
  // hidden states usually are; the count of ones is not known before the first draw). Scenario
  // D, in-process pairs against the same loop without panels: 0.964 and 0.974.
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

template void rbm_train_batches_binary<float>(const TrainParams<float>&);
template void rbm_train_batches_binary<double>(const TrainParams<double>&);
template void rbm_gibbs_binary<float>(const GibbsParams<float>&);
template void rbm_gibbs_binary<double>(const GibbsParams<double>&);

}  // namespace cpu
}  // namespace fastgen

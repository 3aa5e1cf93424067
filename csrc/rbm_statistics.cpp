// One mini-batch's CD-k / PCD-k statistics with no parameter update, for trainers that sum them
// over shards before one step: the ranks of a data-parallel job (fastgen/models/data_parallel.py)
// and the chunks of an out-of-core batch. The products with a 0/1 operand go to binary_matmul
// when it pays, as in rbm_binary.cpp; the draws are those of the epoch loops for the same
// counters, each row and chain numbered from first_row / first_chain (its place in the batch).
#include <algorithm>
#include <vector>

#include "aligned.h"
#include "fastgen.h"
#include "index_lists.h"
#include "rbm_helpers.h"
#include "philox_cpu.h"

namespace fastgen {
namespace cpu {

using rbm_detail::at;
using rbm_detail::bernoulli;
using rbm_detail::BinaryOperand;
using rbm_detail::is_double;
using rbm_detail::product;
using rbm_detail::total;

namespace {

// out[j, i] += in[i, j] for in [rows, cols] (row stride ld), out [cols, rows]: in square tiles, so
// that both sides are read and written a cache line at a time.
template <typename T> void add_transposed(const T* in, int64_t rows, int64_t cols, int64_t ld, T* out) {
  constexpr int64_t kTile = 32;
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMinElements)
  for (int64_t j0 = 0; j0 < cols; j0 += kTile) {
    const int64_t j1 = std::min(cols, j0 + kTile);
    for (int64_t i0 = 0; i0 < rows; i0 += kTile) {
      const int64_t i1 = std::min(rows, i0 + kTile);
      for (int64_t j = j0; j < j1; ++j)
        for (int64_t i = i0; i < i1; ++i) out[j * rows + i] += in[i * ld + j];
    }
  }
}

}  // namespace

template <typename T> void rbm_batch_statistics(const StatisticsParams<T>& p) {
  const int64_t nv = p.rbm.n_visible, nh = p.rbm.n_hidden, B = p.rows;
  const bool persistent = p.persistent;
  const int64_t C = persistent ? (p.model_term ? p.n_chains : 0) : B;
  if (B + C == 0) return;
  // Rows of W (h @ W) and of W^T (v @ W^T), cache-aligned.
  const rbm_detail::WeightLayouts<T> layouts(p.rbm.weights, nh, nv);
  const int64_t ldw = layouts.ldw, ldt = layouts.ldt;
  // Stacked [data ; chains] rows: one product gives both terms of the weights' statistic.
  AlignedVector<T> hidden((B + C) * ldt, T(0)), visible((B + C) * ldw, T(0));
  std::vector<int32_t> visible_indices((B + C) * nv), visible_counts(B + C);
  std::vector<T> cd_chains(persistent || p.chains != nullptr ? 0 : B * nh);
  std::vector<int32_t> chain_indices(std::max<int64_t>(C, 1) * nh), chain_counts(std::max<int64_t>(C, 1));
  std::vector<uint64_t> chain_masks(std::max<int64_t>(C, 1) * mask_words_for(nh));
  bool chain_masks_drawn = false;
  T* chains = p.chains != nullptr ? p.chains : cd_chains.data();
  const int64_t first_chain = persistent ? p.first_chain : p.first_row;
  int64_t chain_nnz = persistent && C > 0 ? binary_rows_from_dense<T>(chains, C, nh, nh, chain_indices.data(),
                                                                       chain_counts.data(), nh)
                                          : -1;
  const RandomStream s = p.stream;
  T* hidden_pos = hidden.data();
  T* visible_pos = visible.data();
  T* hidden_neg = hidden_pos + B * ldt;
  T* visible_neg = visible_pos + B * ldw;
  int32_t* neg_indices = visible_indices.data() + B * nv;
  int32_t* neg_counts = visible_counts.data() + B;
  for (int64_t r = 0; r < B; ++r)
    std::copy(p.data + r * p.data_stride, p.data + r * p.data_stride + nv, visible_pos + r * ldw);
  const int64_t data_nnz = p.binary_products ? binary_rows_from_dense<T>(visible_pos, B, nv, ldw, visible_indices.data(),
                                                                        visible_counts.data(), nv)
                                             : -1;
  const BinaryOperand<T> data{visible_pos, ldw, visible_indices.data(), visible_counts.data(), nv, data_nnz, B, nv};

  // Positive phase: P(h | v_data); CD-k also starts its chains here.
  if (B > 0) {
    product(data, layouts.WT.data(), ldt, nh, hidden_pos, ldt);
    if (persistent) {
      bernoulli<T>(hidden_pos, ldt, true, nullptr, 0, B, nh, p.rbm.hidden_bias, s, nullptr, nullptr, 0);
    } else {
      bernoulli<T>(hidden_pos, ldt, true, chains, nh, B, nh, p.rbm.hidden_bias, s, chain_indices.data(),
                   chain_counts.data(), nh, chain_masks.data(), p.first_row);
      chain_masks_drawn = true;
      chain_nnz = p.binary_products ? total(chain_counts.data(), B) : -1;
    }
  }

  // Negative phase: k block-Gibbs steps h -> v -> h from the chains.
  int64_t neg_nnz = 0;
  for (int step = 0; C > 0 && step < p.cd_k; ++step) {
    const BinaryOperand<T> h{chains, nh, chain_indices.data(), chain_counts.data(), nh,
                             p.binary_products ? chain_nnz : -1, C, nh, chain_masks_drawn ? chain_masks.data() : nullptr};
    product(h, layouts.W.data(), ldw, nv, visible_neg, ldw);
    bernoulli<T>(visible_neg, ldw, false, visible_neg, ldw, C, nv, p.rbm.visible_bias, at(s, 1 + 2 * step),
                 neg_indices, neg_counts, nv, nullptr, first_chain);
    neg_nnz = p.binary_products ? total(neg_counts, C) : -1;
    const BinaryOperand<T> vk{visible_neg, ldw, neg_indices, neg_counts, nv, neg_nnz, C, nv};
    product(vk, layouts.WT.data(), ldt, nh, hidden_neg, ldt);
    if (step + 1 == p.cd_k && !persistent) {
      bernoulli<T>(hidden_neg, ldt, true, nullptr, 0, C, nh, p.rbm.hidden_bias, s, nullptr, nullptr, 0);
    } else {
      bernoulli<T>(hidden_neg, ldt, true, chains, nh, C, nh, p.rbm.hidden_bias, at(s, 2 + 2 * step),
                   chain_indices.data(), chain_counts.data(), nh, chain_masks.data(), first_chain);
      chain_masks_drawn = true;
      chain_nnz = p.binary_products ? total(chain_counts.data(), C) : -1;
    }
  }

  // Biases: the scaled column sums of both terms, added to the gradients.
  std::vector<T> sums(std::max(nv, nh));
  rbm_detail::column_sums(sums.data(), visible_pos, B, ldw, p.data_scale, visible_neg, C, ldw, -p.chains_scale, nv);
  for (int64_t i = 0; i < nv; ++i) p.grad_visible_bias[i] += sums[i];
  rbm_detail::column_sums(sums.data(), hidden_pos, B, ldt, p.data_scale, hidden_neg, C, ldt, -p.chains_scale, nh);
  for (int64_t j = 0; j < nh; ++j) p.grad_hidden_bias[j] += sums[j];

  // Weights: [P(h|v_data) data_scale ; P(h|v_k) (-chains_scale)]^T @ [v_data ; v_k], added to
  // grad_weights [n_hidden, n_visible]: binary (in the W^T layout, then added transposed) when it
  // pays, else one BLAS product straight into it.
  rbm_detail::scale(hidden_pos, B * ldt, p.data_scale);
  rbm_detail::scale(hidden_neg, C * ldt, -p.chains_scale);
  const int64_t stacked_nnz = data_nnz >= 0 && neg_nnz >= 0 ? data_nnz + neg_nnz : -1;
  if (stacked_nnz >= 0 && binary_product_pays(nv, B + C, nh, stacked_nnz, is_double(T()))) {
    std::vector<int32_t> column_indices((B + C) * nv), column_counts(nv);
    std::vector<int64_t> column_starts(nv);
    const BinaryRows parts[2] = {data.lists(), BinaryRows{neg_indices, neg_counts, nullptr, nv, C, nv}};
    const int64_t row_offsets[2] = {0, B};
    transpose_binary_rows(parts, row_offsets, 2, nv, column_indices.data(), column_counts.data(),
                          column_starts.data());
    AlignedVector<T> GT(nv * ldt);
    const BinaryRows columns{column_indices.data(), column_counts.data(), column_starts.data(), 0, nv, B + C};
    binary_matmul<T>(columns, hidden_pos, ldt, nh, nullptr, GT.data(), ldt);  // writes all of GT
    add_transposed(GT.data(), nv, nh, ldt, p.grad_weights);
  } else {
    gemm<T>(true, false, nh, nv, B + C, T(1), hidden_pos, ldt, visible_pos, ldw, T(1), p.grad_weights, nv);
  }
}

template void rbm_batch_statistics<float>(const StatisticsParams<float>&);
template void rbm_batch_statistics<double>(const StatisticsParams<double>&);

}  // namespace cpu
}  // namespace fastgen

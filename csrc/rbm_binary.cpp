// The CD/PCD loop of rbm.cpp with binary operands: every product in which one factor is a 0/1
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

template void rbm_train_batches_binary<float>(const TrainParams<float>&);
template void rbm_train_batches_binary<double>(const TrainParams<double>&);

}  // namespace cpu
}  // namespace fastgen

// CD-k / PCD-k for small mini-batches (scikit-learn's batch_size=10): one parallel region for the
// whole pass, in which every thread owns a fixed set of hidden units and everything about them.
//
// At 10 rows a batch the per-product loops of rbm.cpp and rbm_binary.cpp run each product on one
// thread (a parallel region per product costs more than the product), so the second core idled.
// Here the hidden units are cut into slices of kSliceColumns, and a thread keeps its slices'
// columns of W^T and rows of W, their biases, the chains' states and the hidden statistics for
// the whole pass. Of a Gibbs step only h -> v needs every hidden unit: each slice adds up its
// part of h @ W, and after one barrier every thread sums the slices' parts (in slice order, so
// the result does not depend on the number of threads) and draws the visible states itself.
// The visible side is small (n_visible values a row), so repeating it in every thread costs less
// than a second barrier; the visible bias is kept in a copy per thread, updated identically.
//
// Products are sums of selected rows (row_sums.h): the data rows by their nonzero entries (digits
// are about half zeros), the chains' states by their ones, and the weight statistics by per-visible-
// unit lists of the rows (data and chains stacked) in which that unit is nonzero. Random draws
// and their offsets are those of rbm.cpp's loop, element for element.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <new>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

#include "aligned.h"
#include "bernoulli_row.h"
#include "fastgen.h"
#include "index_lists.h"
#include "rbm_helpers.h"
#include "row_sums.h"

namespace fastgen {
namespace cpu {
namespace {

using rbm_detail::apply_and_transpose_columns;
using rbm_detail::at;
using rbm_detail::column_sums;

// Hidden units per slice: a whole number of vectors of either dtype, and the unit of the h @ W
// partial sums (fixed, so that their order of summation is too).
constexpr int64_t kSliceColumns = 64;

template <typename T> constexpr int64_t tile_columns() { return kTileVectors * Simd<T>::kLanes; }

// out[0, width) = init + sum_k (w[k] *) M[idx[k], 0, width), in register tiles.
template <typename T, bool kWeighted>
void sum_selected_rows(const int32_t* idx, const T* w, int32_t n, const T* M, int64_t ldm, const T* init, T* out,
                       int64_t width) {
  for (int64_t c = 0; c < width; c += tile_columns<T>()) {
    sum_rows<T, kWeighted>(idx, w, n, M + c, ldm, init ? init + c : nullptr, out + c,
                           std::min(tile_columns<T>(), width - c));
  }
}

// out[r, 0, width) = sum_k (values[r, k] *) M[indices[r, k], 0, width) for rows r < rows, whose
// lists sit at a fixed stride. Tile by tile, all rows, so that M's tile (K rows of it) is read
// from L1 by every row after the first: the tile is narrowed to 4 vectors where that keeps it
// within kL1TileBytes and 8 would not (64 visible units: 16 KiB).
template <typename T, bool kWeighted>
void rows_times_matrix(const int32_t* indices, const T* values, const int32_t* counts, int64_t list_stride,
                       int64_t rows, int64_t K, const T* M, int64_t ldm, T* out, int64_t ldo, int64_t width) {
  constexpr int64_t kL1TileBytes = 24 * 1024;
  constexpr int64_t kLanes = Simd<T>::kLanes;
  const int64_t row_bytes = kLanes * static_cast<int64_t>(sizeof(T));
  const int64_t tile = (K * kTileVectors * row_bytes > kL1TileBytes && K * 4 * row_bytes <= kL1TileBytes)
                           ? 4 * kLanes
                           : kTileVectors * kLanes;
  for (int64_t c = 0; c < width; c += tile) {
    const int64_t w = std::min(tile, width - c);
    for (int64_t r = 0; r < rows; ++r) {
      sum_rows<T, kWeighted>(indices + r * list_stride, kWeighted ? values + r * list_stride : nullptr, counts[r],
                             M + c, ldm, nullptr, out + r * ldo + c, w);
    }
  }
}

// The barrier between a Gibbs step's h @ W parts and their sum. It spins (pause, then yield)
// and never sleeps: an OpenMP barrier spins for GOMP_SPINCOUNT (5,000 as fastgen sets it) and then
// sleeps in the kernel, and a wait that outlasts it (the other thread briefly preempted on these
// shared machines) then costs a wake-up as well (docs/performance.md, "spin barrier").
class SpinBarrier {
 public:
  void reset(int threads) { threads_ = threads; }
  void wait() {
    const int generation = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == threads_) {
      arrived_.store(0, std::memory_order_relaxed);
      generation_.store(generation + 1, std::memory_order_release);
      return;
    }
    for (int spins = 0; generation_.load(std::memory_order_acquire) == generation; ++spins) {
      if (spins < kSpinsBeforeYield) {
#if defined(__x86_64__) || defined(__i386__)
        _mm_pause();
#endif
      } else {
        std::this_thread::yield();
      }
    }
  }

 private:
  static constexpr int kSpinsBeforeYield = 1 << 14;
  int threads_ = 1;
  alignas(64) std::atomic<int> arrived_{0};
  alignas(64) std::atomic<int> generation_{0};
};

// Batches per parallel region. The pass runs as a series of regions so that the team can shrink
// between them when the machine is busy; each region re-reads the parameters from the caller's
// arrays, so the result does not depend on where the pass is cut or on the teams chosen.
constexpr int64_t kChunkBatches = 32;

using Clock = std::chrono::steady_clock;

int64_t nanoseconds_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
}

}  // namespace

// The team governor. A full-team region whose threads spent more than kMaxWaitFraction of their
// time at the step barrier had a thread descheduled (another process, or NumPy's BLAS threads still
// spinning). If one thread has not been measured faster per batch, the next regions run on one
// thread, after which the full team is tried again: twice as many one-thread regions after each
// refusal, half as many after each accepted full-team region (a busy machine still lets some
// regions through). One-thread timings count only for the shape they were measured on
// (docs/performance.md, "sliced training under load").
namespace {
constexpr double kMaxWaitFraction = 0.3;
constexpr int kMinBackoffRegions = 4, kMaxBackoffRegions = 64;
std::atomic<bool> g_adaptive{true};
std::atomic<uint64_t> g_shape{0};
std::atomic<int> g_reduced_left{0};
std::atomic<int> g_backoff{kMinBackoffRegions};
std::atomic<int64_t> g_regions{0}, g_reduced_regions{0}, g_refused{0};
std::atomic<double> g_last_wait_fraction{0.0};
std::atomic<double> g_one_thread_ns_per_batch{0.0};  // running mean for g_shape, 0 when unmeasured

void forget_measurements() {
  g_reduced_left.store(0);
  g_backoff.store(kMinBackoffRegions);
  g_one_thread_ns_per_batch.store(0.0);
}
}  // namespace

int sliced_team_for_region(int full_team, uint64_t shape) {
  if (full_team <= 1 || !g_adaptive.load(std::memory_order_relaxed)) return full_team;
  if (g_shape.exchange(shape, std::memory_order_relaxed) != shape) forget_measurements();
  int left = g_reduced_left.load(std::memory_order_relaxed);
  while (left > 0) {
    if (g_reduced_left.compare_exchange_weak(left, left - 1, std::memory_order_relaxed)) {
      g_reduced_regions.fetch_add(1, std::memory_order_relaxed);
      return 1;
    }
  }
  return full_team;
}

void sliced_team_record(int team, int full_team, double wait_fraction, double ns_per_batch) {
  g_regions.fetch_add(1, std::memory_order_relaxed);
  // The fixed schedule's regions teach nothing to the adaptive one, which may run beside it.
  if (full_team <= 1 || !g_adaptive.load(std::memory_order_relaxed)) return;
  const double one_thread = g_one_thread_ns_per_batch.load(std::memory_order_relaxed);
  if (team == 1) {
    g_one_thread_ns_per_batch.store(one_thread > 0 ? 0.5 * (one_thread + ns_per_batch) : ns_per_batch,
                                    std::memory_order_relaxed);
    return;
  }
  g_last_wait_fraction.store(wait_fraction, std::memory_order_relaxed);
  const int backoff = g_backoff.load(std::memory_order_relaxed);
  if (wait_fraction > kMaxWaitFraction && (one_thread == 0 || ns_per_batch > one_thread)) {
    g_reduced_left.store(backoff, std::memory_order_relaxed);
    g_backoff.store(std::min(2 * backoff, kMaxBackoffRegions), std::memory_order_relaxed);
    g_refused.fetch_add(1, std::memory_order_relaxed);
  } else {
    g_backoff.store(std::max(backoff / 2, kMinBackoffRegions), std::memory_order_relaxed);
  }
}

SlicedTeamStats sliced_team_stats() {
  return SlicedTeamStats{g_regions.load(),   g_reduced_regions.load(),       g_refused.load(),
                         g_reduced_left.load(), g_backoff.load(),          g_last_wait_fraction.load(),
                         kMaxWaitFraction,     g_one_thread_ns_per_batch.load()};
}

void sliced_team_reset() {
  forget_measurements();
  g_regions.store(0);
  g_reduced_regions.store(0);
  g_refused.store(0);
  g_last_wait_fraction.store(0.0);
}

void set_sliced_adaptive(bool enabled) { g_adaptive.store(enabled); }
bool sliced_adaptive() { return g_adaptive.load(); }

namespace {

// param += v, v = momentum * v + lr * grad (v = lr * grad without velocity): the biases' step,
// on the calling thread.
template <typename T> void bias_step(T* param, T* velocity, const T* grad, int64_t n, T lr, T momentum) {
  if (velocity == nullptr) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) param[i] += lr * grad[i];
    return;
  }
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const T v = momentum * velocity[i] + lr * grad[i];
    velocity[i] = v;
    param[i] += v;
  }
}

}  // namespace

template <typename T> void rbm_train_batches_sliced(const TrainParams<T>& p) {
  const int64_t nv = p.rbm.n_visible, nh = p.rbm.n_hidden;
  const rbm_detail::BatchShape shape(p);
  const int64_t max_batch = shape.max_batch, max_chains = shape.max_chains;
  const bool persistent = shape.persistent;
  if (max_batch == 0) return;
  const int64_t n_slices = (nh + kSliceColumns - 1) / kSliceColumns;
  const bool use_momentum = p.weights_velocity != nullptr;
  const T lr = p.learning_rate, momentum = p.momentum;

  // The one thing the threads share: h @ W by slices, [2][n_slices][max_chains, ldw],
  // double-buffered by Gibbs step (a thread writes step s + 1's parts while another may still be
  // reading step s's).
  const int64_t ldw = padded_stride<T>(nv);
  const int64_t part_stride = max_chains * ldw;
  AlignedVector<T> partials(2 * n_slices * part_stride, T(0));

  int max_threads = 1;
#ifdef _OPENMP
  max_threads = omp_get_max_threads();
#endif
  const int full_team = static_cast<int>(std::min<int64_t>(max_threads, n_slices));
  const int64_t n_batches = (p.n_samples + p.batch_size - 1) / p.batch_size;
  // What a region's time per batch depends on, for the governor to compare like with like.
  const uint64_t shape_key = std::hash<std::string>{}(
      std::to_string(sizeof(T)) + ':' + std::to_string(nv) + ':' + std::to_string(nh) + ':' +
      std::to_string(max_batch) + ':' + std::to_string(max_chains) + ':' + std::to_string(p.cd_k));
  for (int64_t first_batch = 0; first_batch < n_batches; first_batch += kChunkBatches) {
    const int64_t end_batch = std::min(n_batches, first_batch + kChunkBatches);
    const int threads = sliced_team_for_region(full_team, shape_key);
    std::atomic<bool> allocation_failed{false};
    std::atomic<int64_t> barrier_wait_ns{0};
    SpinBarrier step_barrier;
    const Clock::time_point region_start = Clock::now();

#pragma omp parallel num_threads(threads)
    {
      int tid = 0, team = 1;
#ifdef _OPENMP
      tid = omp_get_thread_num();
      team = omp_get_num_threads();
#endif
#pragma omp single
      step_barrier.reset(team);
      const int64_t s0 = n_slices * tid / team, s1 = n_slices * (tid + 1) / team, own_slices = s1 - s0;
      const int64_t j0 = s0 * kSliceColumns, j1 = std::min(nh, s1 * kSliceColumns), width = j1 - j0;
      const auto slice_begin = [&](int64_t ls) { return ls * kSliceColumns; };  // local columns
      const auto slice_end = [&](int64_t ls) { return std::min(width, (ls + 1) * kSliceColumns); };

      // This thread's panel: hidden units [j0, j1) and everything indexed by them, at local column
      // j - j0, in memory of its own. Had the threads kept their columns of shared [nv, nh] arrays,
      // the hardware prefetchers would pull the neighbour's half of every row into the wrong core,
      // where the neighbour's next write has to take it back.
      const int64_t ldp = padded_stride<T>(width);
      AlignedVector<T> Wp, WTp, VTp, hidden, chains, hidden_bias, hidden_velocity, chain_values;
      AlignedVector<int32_t> chain_indices, chain_counts;
      AlignedVector<T> visible_bias, visible_velocity, visible_pre, visible_neg;
      std::vector<int32_t> data_indices, data_counts, neg_indices, neg_counts, column_rows, column_starts, column_fill;
      std::vector<T> data_values, column_values, grad, scratch;
      // Everything is allocated before the first barrier: a thread that cannot have its memory
      // says so there, and all of them leave together (an exception may not leave the region).
      try {
        Wp.assign(width * ldw, T(0));
        WTp.assign(nv * ldp, T(0));
        VTp.assign(use_momentum ? nv * ldp : 0, T(0));
        hidden.assign((max_batch + max_chains) * ldp, T(0));  // [P(h|data) ; P(h|v_k)]
        chains.assign(max_chains * ldp, T(0));                // hidden states
        hidden_bias.assign(p.rbm.hidden_bias + j0, p.rbm.hidden_bias + j1);
        if (p.hidden_bias_velocity != nullptr)
          hidden_velocity.assign(p.hidden_bias_velocity + j0, p.hidden_bias_velocity + j1);
        chain_indices.resize(own_slices * max_chains * kSliceColumns);
        chain_counts.resize(own_slices * max_chains);
        chain_values.resize(own_slices * max_chains * kSliceColumns);
        // Everything about the visible units, one copy per thread.
        visible_bias.assign(p.rbm.visible_bias, p.rbm.visible_bias + nv);
        if (p.visible_bias_velocity != nullptr)
          visible_velocity.assign(p.visible_bias_velocity, p.visible_bias_velocity + nv);
        visible_pre.resize(max_chains * ldw);
        visible_neg.resize(max_chains * ldw);
        data_indices.resize(max_batch * nv);
        data_counts.resize(max_batch);
        data_values.resize(max_batch * nv);
        neg_indices.resize(max_chains * nv);
        neg_counts.resize(max_chains);
        // Per visible unit, the stacked rows (data, then chains) in which it is nonzero, with the
        // factor each contributes to the weight statistics.
        column_rows.resize((max_batch + max_chains) * nv);
        column_values.resize((max_batch + max_chains) * nv);
        column_starts.resize(nv + 1);
        column_fill.resize(nv);
        grad.resize(std::max(nv, width));
        scratch.resize(std::max(nv, width));
      } catch (...) {
        allocation_failed.store(true);
      }
#pragma omp barrier
      if (!allocation_failed.load()) {
        for (int64_t j = 0; j < width; ++j)
          std::copy(p.rbm.weights + (j0 + j) * nv, p.rbm.weights + (j0 + j + 1) * nv, Wp.data() + j * ldw);
        transpose_matrix<T>(Wp.data(), width, nv, ldw, WTp.data(), ldp);
        if (use_momentum) transpose_matrix<T>(p.weights_velocity + j0 * nv, width, nv, nv, VTp.data(), ldp);
        if (persistent) {
          for (int64_t c = 0; c < max_chains; ++c)
            std::copy(p.persistent_chains + c * nh + j0, p.persistent_chains + c * nh + j1, chains.data() + c * ldp);
        }
        // The chains' ones by slice (local columns): chain c's in slice ls at chain_list(ls, c).
        // Lists of nonzero values instead while the chains are the caller's and not 0/1.
        const auto chain_list = [&](int64_t ls, int64_t c) {
          return chain_indices.data() + (ls * max_chains + c) * kSliceColumns;
        };
        const auto chain_count = [&](int64_t ls, int64_t c) -> int32_t& { return chain_counts[ls * max_chains + c]; };
        bool chains_weighted = false;
        for (int64_t c = 0; c < max_chains; ++c) {
          for (int64_t ls = 0; ls < own_slices; ++ls) {
            const int64_t a = slice_begin(ls);
            const T* row = chains.data() + c * ldp;
            int32_t* idx = chain_list(ls, c);
            bool binary = true;
            const int32_t n = append_nonzero_columns<true>(row + a, slice_end(ls) - a, a, idx, 0, &binary);
            chain_count(ls, c) = n;
            T* values = chain_values.data() + (idx - chain_indices.data());
            for (int32_t k = 0; k < n; ++k) values[k] = row[idx[k]];
            chains_weighted = chains_weighted || !binary;
          }
        }

        int parity = 0;
        int64_t waited_ns = 0;
        for (int64_t batch_index = first_batch; batch_index < end_batch; ++batch_index) {
          const int64_t start = batch_index * p.batch_size;
          const int64_t B = std::min(p.batch_size, p.n_samples - start);
          const int64_t C = persistent ? p.n_chains : B;
          const T* data = p.data + start * p.data_stride;
          const RandomStream stream = at(p.stream, batch_index * shape.offsets_per_batch);
          T* const hidden_pos = hidden.data();
          T* const hidden_neg = hidden.data() + B * ldp;

          for (int64_t r = 0; r < B; ++r) {
            const T* x = data + r * p.data_stride;
            int32_t* idx = data_indices.data() + r * nv;
            const int32_t n = append_nonzero_columns(x, nv, 0, idx, 0);
            data_counts[r] = n;
            for (int32_t k = 0; k < n; ++k) data_values[r * nv + k] = x[idx[k]];
          }

          // Positive phase on this thread's units: P(h | data); CD-k also draws its chains here.
          rows_times_matrix<T, true>(data_indices.data(), data_values.data(), data_counts.data(), nv, B, nv, WTp.data(),
                                     ldp, hidden_pos, ldp, width);
          for (int64_t r = 0; r < B; ++r) {
            T* h = hidden_pos + r * ldp;
            if (persistent) {
              bernoulli_logits_range<T, true, true, false>(h, hidden_bias.data(), h, nullptr, 0, 0, width, stream);
              continue;
            }
            for (int64_t ls = 0; ls < own_slices; ++ls) {
              chain_count(ls, r) = bernoulli_logits_range<T, true, true, true>(
                   h, hidden_bias.data(), h, chains.data() + r * ldp, r * nh + j0, slice_begin(ls), slice_end(ls),
                   stream, chain_list(ls, r));
            }
          }
          if (!persistent) chains_weighted = false;

          // Negative phase: k block-Gibbs steps h -> v -> h from the chains.
          for (int step = 0; step < p.cd_k; ++step, parity ^= 1) {
            T* const parts = partials.data() + parity * n_slices * part_stride;
            for (int64_t c = 0; c < C; ++c) {
              for (int64_t ls = 0; ls < own_slices; ++ls) {
                const int32_t* idx = chain_list(ls, c);
                T* out = parts + (s0 + ls) * part_stride + c * ldw;
                if (chains_weighted) {
                   sum_selected_rows<T, true>(idx, chain_values.data() + (idx - chain_indices.data()),
                                              chain_count(ls, c), Wp.data(), ldw, nullptr, out, nv);
                } else {
                  sum_selected_rows<T, false>(idx, nullptr, chain_count(ls, c), Wp.data(), ldw, nullptr, out, nv);
                }
              }
            }
            const Clock::time_point wait_start = Clock::now();
            step_barrier.wait();
            waited_ns += nanoseconds_since(wait_start);
            // Every thread: v_k ~ P(v | h) from the slices' parts, summed in slice order.
            for (int64_t c = 0; c < C; ++c) {
              T* pre = visible_pre.data() + c * ldw;
              std::copy(parts + c * ldw, parts + c * ldw + nv, pre);
              for (int64_t s = 1; s < n_slices; ++s) {
                const T* part = parts + s * part_stride + c * ldw;
#pragma omp simd
                for (int64_t i = 0; i < nv; ++i) pre[i] += part[i];
              }
              neg_counts[c] = bernoulli_logits_range<T, true, false, true>(
                   pre, visible_bias.data(), nullptr, visible_neg.data() + c * ldw, c * nv, 0, nv,
                   at(stream, 1 + 2 * step), neg_indices.data() + c * nv);
            }
            // This thread's units of P(h | v_k), and the chains' next states there.
            const bool last = step + 1 == p.cd_k;
            rows_times_matrix<T, false>(neg_indices.data(), nullptr, neg_counts.data(), nv, C, nv, WTp.data(), ldp,
                                        hidden_neg, ldp, width);
            for (int64_t c = 0; c < C; ++c) {
              T* h = hidden_neg + c * ldp;
              if (last && !persistent) {
                bernoulli_logits_range<T, true, true, false>(h, hidden_bias.data(), h, nullptr, 0, 0, width, stream);
                continue;
              }
              for (int64_t ls = 0; ls < own_slices; ++ls) {
                chain_count(ls, c) = bernoulli_logits_range<T, true, true, true>(
                    h, hidden_bias.data(), h, chains.data() + c * ldp, c * nh + j0, slice_begin(ls), slice_end(ls),
                    at(stream, 2 + 2 * step), chain_list(ls, c));
              }
            }
            chains_weighted = false;
          }

          // Biases (no weight decay): gradients are differences of means.
          column_sums(grad.data(), hidden_pos, B, ldp, T(1) / B, hidden_neg, C, ldp, T(-1) / C, 0, width,
                          scratch.data());
          bias_step(hidden_bias.data(), hidden_velocity.empty() ? nullptr : hidden_velocity.data(), grad.data(),
                    width, lr, momentum);
          column_sums(grad.data(), data, B, p.data_stride, T(1) / B, visible_neg.data(), C, ldw, T(-1) / C, 0, nv,
                          scratch.data());
          bias_step(visible_bias.data(), visible_velocity.empty() ? nullptr : visible_velocity.data(), grad.data(),
                    nv, lr, momentum);

          // Weights, this thread's columns of W^T: lr * (v_data^T P(h|data) / B - v_k^T P(h|v_k) / C),
          // one list of stacked rows per visible unit, the row scales carried by the list values.
          std::fill(column_fill.begin(), column_fill.end(), 0);
          for (int64_t r = 0; r < B; ++r)
            for (int32_t k = 0; k < data_counts[r]; ++k) ++column_fill[data_indices[r * nv + k]];
          for (int64_t c = 0; c < C; ++c)
            for (int32_t k = 0; k < neg_counts[c]; ++k) ++column_fill[neg_indices[c * nv + k]];
          column_starts[0] = 0;
          for (int64_t i = 0; i < nv; ++i) {
            column_starts[i + 1] = column_starts[i] + column_fill[i];
            column_fill[i] = column_starts[i];
          }
          const T data_scale = lr / static_cast<T>(B), model_scale = -lr / static_cast<T>(C);
          for (int64_t r = 0; r < B; ++r) {
            for (int32_t k = 0; k < data_counts[r]; ++k) {
              const int32_t slot = column_fill[data_indices[r * nv + k]]++;
              column_rows[slot] = static_cast<int32_t>(r);
              column_values[slot] = data_values[r * nv + k] * data_scale;
            }
          }
          for (int64_t c = 0; c < C; ++c) {
            for (int32_t k = 0; k < neg_counts[c]; ++k) {
              const int32_t slot = column_fill[neg_indices[c * nv + k]]++;
              column_rows[slot] = static_cast<int32_t>(B + c);
              column_values[slot] = model_scale;
            }
          }
          const T decay = lr * p.weight_decay, keep = T(1) - decay;
          T* const target = use_momentum ? VTp.data() : WTp.data();
          for (int64_t i = 0; i < nv; ++i) {
            T* row = target + i * ldp;
            if (use_momentum) {
              const T* w = WTp.data() + i * ldp;
#pragma omp simd
              for (int64_t j = 0; j < width; ++j) row[j] = momentum * row[j] - decay * w[j];
            } else if (decay != T(0)) {
#pragma omp simd
              for (int64_t j = 0; j < width; ++j) row[j] *= keep;
            }
            const int32_t first = column_starts[i];
            sum_selected_rows<T, true>(column_rows.data() + first, column_values.data() + first,
                                       column_starts[i + 1] - first, hidden.data(), ldp, row, row, width);
          }
          apply_and_transpose_columns(WTp.data(), use_momentum ? VTp.data() : nullptr, nv, ldp, Wp.data(), ldw, 0,
                                      width);
        }

        // This thread's part of the results back to the caller.
        for (int64_t j = 0; j < width; ++j)
          std::copy(Wp.data() + j * ldw, Wp.data() + j * ldw + nv, p.rbm.weights + (j0 + j) * nv);
        if (use_momentum) transpose_matrix<T>(VTp.data(), nv, width, ldp, p.weights_velocity + j0 * nv, nv);
        if (persistent) {
          for (int64_t c = 0; c < max_chains; ++c)
            std::copy(chains.data() + c * ldp, chains.data() + c * ldp + width, p.persistent_chains + c * nh + j0);
        }
        std::copy(hidden_bias.begin(), hidden_bias.end(), p.rbm.hidden_bias + j0);
        if (!hidden_velocity.empty())
          std::copy(hidden_velocity.begin(), hidden_velocity.end(), p.hidden_bias_velocity + j0);
        if (tid == 0) {
          std::copy(visible_bias.begin(), visible_bias.end(), p.rbm.visible_bias);
          if (!visible_velocity.empty())
            std::copy(visible_velocity.begin(), visible_velocity.end(), p.visible_bias_velocity);
        }
        barrier_wait_ns.fetch_add(waited_ns, std::memory_order_relaxed);
      }
    }
    if (allocation_failed.load()) throw std::bad_alloc();
    const double region_ns = static_cast<double>(std::max<int64_t>(1, nanoseconds_since(region_start)));
    sliced_team_record(threads, full_team, static_cast<double>(barrier_wait_ns.load()) / (threads * region_ns),
                       region_ns / static_cast<double>(end_batch - first_batch));
  }
}

template void rbm_train_batches_sliced<float>(const TrainParams<float>&);
template void rbm_train_batches_sliced<double>(const TrainParams<double>&);

}  // namespace cpu
}  // namespace fastgen

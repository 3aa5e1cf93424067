// fastgen CPU kernels: one declaration per kernel, shapes in comments.
// Kernels trust their input: fastgen/ops validates type, shape, dtype and values once, before
// any of these runs. Matrices are row-major with an explicit row stride (in elements), so a
// row slice of a C-contiguous array can be passed without a copy.
// Explicit instantiations exist for float and double only (see the bottom of each .cpp).
#pragma once
#include <cstdint>

namespace fastgen {
namespace cpu {

// Position in the Philox stream: key = seed; a call consumes the offsets it documents.
struct RandomStream {
  uint64_t seed;
  uint64_t offset;
};

// ---- sampling.cpp --------------------------------------------------------------------------

// out[i] = uniform on [0, 1) for element i of stream (seed, offset).           // out: [n]
template <typename T> void fill_uniform(T* out, int64_t n, RandomStream stream);
// out[i] = standard normal for element i of stream (seed, offset).             // out: [n]
template <typename T> void fill_normal(T* out, int64_t n, RandomStream stream);
// Raw 32-bit Philox words, element i = lane i % 4 of block i / 4.               // out: [n]
void fill_bits(uint32_t* out, int64_t n, RandomStream stream);

template <typename T> struct BernoulliParams {
  const T* input;    // [rows, cols]  logits (from_logits) or probabilities
  const T* bias;     // [cols] added to the logits, or nullptr
  T* probs;          // [rows, cols]  sigmoid(input + bias), or nullptr (from_logits only)
  T* states;         // [rows, cols]  0/1 samples, or nullptr
  int64_t rows, cols;
  int64_t input_stride, probs_stride, states_stride;  // row strides
  bool from_logits;
  RandomStream stream;  // consumes 1 offset; element (r, c) uses index (first_row + r) * cols + c
  // Optional, with states: the ones of each row as index lists, written during the draw (so the
  // next product can use binary_matmul): indices [rows, indices_stride >= cols], counts [rows].
  int32_t* indices = nullptr;
  int32_t* counts = nullptr;
  int64_t indices_stride = 0;
  // Optional, with the lists: the states of each row as a bit mask, bit c of words
  // [r * w, (r + 1) * w) set when state (r, c) is 1, w = mask_words_for(cols).
  uint64_t* masks = nullptr;
  // Row r draws as row first_row + r of a larger matrix would (a shard of a data-parallel batch).
  int64_t first_row = 0;
};
// Fused bias add + sigmoid + Bernoulli draw. input may alias probs (in-place).
template <typename T> void sample_bernoulli(const BernoulliParams<T>& p);

template <typename T> struct GaussianParams {
  const T* mean;     // [rows, cols]
  const T* bias;     // [cols] added to the mean, or nullptr
  const T* stddev;   // [cols] per-column standard deviation, or nullptr to use stddev_scalar
  T stddev_scalar;
  T* out;            // [rows, cols]  may alias mean
  int64_t rows, cols;
  int64_t mean_stride, out_stride;
  RandomStream stream;  // consumes 1 offset; element (r, c) uses index (first_row + r) * cols + c
  int64_t first_row = 0;  // as BernoulliParams::first_row
};
// out = mean + bias + stddev * eps, eps ~ N(0, 1).
template <typename T> void sample_gaussian(const GaussianParams<T>& p);

// ---- binary.cpp ----------------------------------------------------------------------------

// The ones of a 0/1 matrix [rows, cols], row by row: row r's column indices, ascending, are
// indices[start(r) : start(r) + counts[r]]. Rows either sit at a fixed stride (starts == nullptr,
// start(r) = r * stride; what the sampler writes) or anywhere (starts[r]; what a transpose makes).
struct BinaryRows {
  const int32_t* indices;
  const int32_t* counts;   // [rows]
  const int64_t* starts;   // [rows] or nullptr
  int64_t stride;
  int64_t rows, cols;
  // The same rows as bit masks (mask_words_for(cols) words each, as BernoulliParams::masks), or
  // nullptr: spares rebuilding them.
  const uint64_t* masks = nullptr;
  int64_t start(int64_t r) const { return starts ? starts[r] : r * stride; }
};
// Words per row of the bit masks: one spare, so that a field read across a word boundary at the
// end of a row reads zeros.
inline int64_t mask_words_for(int64_t cols) { return cols / 64 + 1; }

// out[r, :] = bias + sum over the ones (r, k) of a of M[k, :]  =  bias + a @ M, with no multiply;
// with accumulate, out += a @ M instead (bias ignored). panels: M once more, packed by
// pack_table_panels, or nullptr; where the product goes through subset-sum tables their rows are
// read from it (one contiguous stream per column tile instead of a cache line per row of M).
template <typename T> void binary_matmul(
    const BinaryRows& a,     // [rows, K]
    const T* M, int64_t ldm,  // [K, N]
    int64_t N,
    const T* bias,           // [N] or nullptr
    T* out, int64_t ldo,     // [rows, N]
    bool accumulate = false,
    const T* panels = nullptr);  // [table_panel_elements(K, N)] or nullptr

// M [K, N] as column panels one vector wide (the tables' tiles): panel t holds columns
// [t * lanes, (t + 1) * lanes) of every row, zero past N. For a product with the same M many times
// (the Gibbs steps).
template <typename T> int64_t table_panel_elements(int64_t K, int64_t N);
template <typename T> void pack_table_panels(const T* M, int64_t ldm, int64_t K, int64_t N, T* panels);

// Whether the RBM loops should use binary_matmul rather than BLAS for a [rows, K] 0/1 operand
// with nnz ones times a [K, N] matrix: its density against binary_max_density() (see binary.cpp
// for the measurement behind the default).
bool binary_product_pays(int64_t rows, int64_t K, int64_t N, int64_t nnz, bool is_double);
void set_binary_max_density(double density);
double binary_max_density();
// Whether binary_matmul may sum through subset-sum tables when its cost model prefers them
// (default true; binary.cpp). The results differ from the one-by-one sums by rounding only.
void set_binary_tables(bool enabled);
// The group size binary_matmul's tables would use for a [rows, K] operand with nnz ones (0: none).
int binary_table_bits(int64_t rows, int64_t K, int64_t nnz);

// Index lists of the ones of x (written at stride `stride`, counts[r] per row). Returns the
// number of ones, or -1 if any value is neither 0 nor 1 (the lists are then incomplete).
template <typename T> int64_t binary_rows_from_dense(
    const T* x, int64_t rows, int64_t cols, int64_t ld,  // x: [rows, cols]
    int32_t* indices, int32_t* counts, int64_t stride);  // indices: [rows, stride], counts: [rows]

// The column lists of parts stacked along the rows (part p's row r is row row_offsets[p] + r):
// column c's rows, ascending, are col_indices[col_starts[c] : col_starts[c] + col_counts[c]].
// Returns the number of ones. col_indices: [total ones], col_counts / col_starts: [cols].
int64_t transpose_binary_rows(const BinaryRows* parts, const int64_t* row_offsets, int n_parts, int64_t cols,
                              int32_t* col_indices, int32_t* col_counts, int64_t* col_starts);

// A sparse matrix [a.rows, a.cols] as index lists a (as above) plus the value of each listed
// entry, laid out like a.indices (entry k of row r at values[a.start(r) + k]):
// out[r, :] = bias + sum over row r's entries of value * M[k, :]  =  bias + a @ M, each output
// element summed in index order by one thread (binary_matmul's tiles, one multiply-add per entry);
// with accumulate, out += a @ M instead (bias ignored).
template <typename T> void sparse_matmul(
    const BinaryRows& a, const T* values,  // [rows, K]
    const T* M, int64_t ldm,               // [K, N]
    int64_t N,
    const T* bias,                         // [N] or nullptr
    T* out, int64_t ldo,                   // [rows, N]
    bool accumulate = false);

// The column lists of a sparse a (as transpose_binary_rows, one part), values carried along:
// column c's rows, ascending, are col_indices[col_starts[c] : + col_counts[c]] and their values
// the same range of col_values. Returns the number of entries.
template <typename T> int64_t transpose_sparse_rows(const BinaryRows& a, const T* values, int32_t* col_indices,
                                                    T* col_values, int32_t* col_counts, int64_t* col_starts);

// out[c, r] = in[r, c], blocked.                       in: [rows, cols], out: [cols, rows]
template <typename T> void transpose_matrix(const T* in, int64_t rows, int64_t cols, int64_t ldi, T* out, int64_t ldo);

// ---- sparse_linear.cpp ------------------------------------------------------------------------

// A linear layer whose input has many exact zeros (pixels of MNIST-like images): y = x @ w_t + b
// with w_t stored [in, out], so that each nonzero x[r, k] picks the contiguous row w_t[k, :].
// Both passes first count x's nonzeros (and check it is finite); above max_density they leave the
// product to the caller's dense GEMM, which wins there. Each output element is summed by one
// thread in a fixed order (independent of the thread count).
enum SparseLinearStatus : int { kSparseLinearDone = 0, kSparseLinearTooDense = 1, kSparseLinearNotFinite = 2 };
template <typename T> struct SparseLinearParams {
  const T* x;          // [rows, in] contiguous
  int64_t rows, in, out;
  double max_density;  // nonzeros / (rows * in) above which the pass returns kSparseLinearTooDense
};
// y [rows, out] = bias + x @ w_t (w_t [in, out], bias [out] or nullptr). Returns a status; y is
// written only for kSparseLinearDone.
template <typename T> int sparse_linear_forward(const SparseLinearParams<T>& p, const T* w_t, const T* bias, T* y);
// grad_b [out] (when not nullptr) = grad_y summed over rows, ascending, whatever the density;
// grad_w_t [in, out] (when not nullptr) = x^T @ grad_y (for each k the rows with x[r, k] != 0,
// ascending) unless x is denser than max_density (kSparseLinearTooDense, grad_w_t untouched).
// grad_y [rows, out].
template <typename T>
int sparse_linear_backward(const SparseLinearParams<T>& p, const T* grad_y, T* grad_w_t, T* grad_b);

// ---- data_summary.cpp ------------------------------------------------------------------------

template <typename T> struct DataSummary {
  bool finite;  // no NaN or infinity; min and max are meaningful only when true
  T min, max;   // +inf and -inf for an empty matrix
};
// One pass over x [rows, cols] (row stride ld): finiteness, range and, when column_sums is not
// nullptr, column_sums [cols] = the sum of each column in float64 (summed in fixed blocks of rows,
// so the same for every thread count).
template <typename T>
DataSummary<T> summarize_rows(const T* x, int64_t rows, int64_t cols, int64_t ld, double* column_sums);
// Whether x [n] holds no NaN or infinity (the ops' input check).
template <typename T> bool all_finite(const T* x, int64_t n);

// ---- rbm.cpp -------------------------------------------------------------------------------

// The parameters of a Bernoulli-Bernoulli RBM, in scikit-learn's layout.
template <typename T> struct RBMWeights {
  T* weights;        // [n_hidden, n_visible]
  T* visible_bias;   // [n_visible]
  T* hidden_bias;    // [n_hidden]
  int64_t n_visible, n_hidden;
};

template <typename T> struct GibbsParams {
  RBMWeights<T> rbm;
  const T* visible_in;    // [rows, n_visible] starting visible states
  T* visible_out;         // [rows, n_visible] visible states after `steps` steps (may alias visible_in)
  T* hidden_probs_out;    // [rows, n_hidden] P(h | v_out) after the last step, or nullptr
  const uint8_t* clamp;   // [rows or 1, n_visible] 1 = keep visible_in's value, or nullptr
  int64_t clamp_stride;   // 0 to broadcast one mask row
  int64_t rows;
  int steps;
  RandomStream stream;    // consumes 2 offsets per step: h then v
  bool binary_products = true;  // products with sampled (0/1) states go to binary_matmul when it pays
};
// gibbs.cpp: k steps of block Gibbs sampling v -> h -> v, whole loop in compiled code.
template <typename T> void gibbs(const GibbsParams<T>& p);

template <typename T> struct TrainParams {
  RBMWeights<T> rbm;
  // Momentum buffers, same shapes as the parameters; nullptr when momentum == 0.
  T* weights_velocity;
  T* visible_bias_velocity;
  T* hidden_bias_velocity;
  // Persistent chains (hidden states) for PCD, [n_chains, n_hidden]; nullptr means CD-k.
  T* persistent_chains;
  int64_t n_chains;
  const T* data;          // [n_samples, n_visible]
  int64_t n_samples, data_stride;
  int64_t batch_size;     // consecutive slices of batch_size rows, the last may be shorter
  int cd_k;
  T learning_rate, momentum, weight_decay;
  RandomStream stream;    // consumes (2 * cd_k + 1) offsets per batch
  bool binary_products = true;  // products with a 0/1 operand go to binary_matmul when it pays
  // With binary_products: small batches take rbm_train_batches_sliced (see kSlicedMaxRows).
  bool hidden_slices = true;
};
// One pass of CD-k / PCD-k over `data` in consecutive mini-batches, with the parameter update
// (learning rate, momentum, L2 weight decay) after every batch. Gradient estimate per batch:
//   dW = <h v^T>_data - <h v^T>_model, both means over their own rows.
template <typename T> void rbm_train_batches(const TrainParams<T>& p);

// rbm_statistics.cpp: one mini-batch's CD-k / PCD-k statistics and no update, added into the
// gradient buffers, for trainers that sum them over shards (data-parallel ranks, out-of-core
// chunks) before one step:
//   grad_weights      += data_scale * P(h|v)^T v - chains_scale * P(h|v_k)^T v_k
//   grad_visible_bias += data_scale * sum_rows v - chains_scale * sum_chains v_k
//   grad_hidden_bias  += data_scale * sum_rows P(h|v) - chains_scale * sum_chains P(h|v_k)
template <typename T> struct StatisticsParams {
  RBMWeights<T> rbm;         // read only
  const T* data;             // [rows, n_visible], row stride data_stride
  int64_t rows, data_stride;
  // PCD: the persistent chains [n_chains, n_hidden], advanced in place. CD (persistent false):
  // the chains are the rows, restarted from h ~ P(h | v); chains is nullptr or [rows, n_hidden]
  // to receive the last hidden states drawn.
  T* chains;
  int64_t n_chains;
  bool persistent;
  int cd_k;
  T data_scale, chains_scale;
  T* grad_weights;           // [n_hidden, n_visible]
  T* grad_visible_bias;      // [n_visible]
  T* grad_hidden_bias;       // [n_hidden]
  RandomStream stream;       // consumes 2 * cd_k + 1 offsets, as one batch of rbm_train_batches
  int64_t first_row = 0;     // row r draws as row first_row + r of the whole batch
  int64_t first_chain = 0;   // chain m as chain first_chain + m of all of them (PCD)
  bool binary_products = true;
  bool model_term = true;    // PCD: false adds the data term only (a batch's later chunks)
};
template <typename T> void rbm_batch_statistics(const StatisticsParams<T>& p);

// rbm_binary.cpp: the same loop with binary_matmul for the products whose operand is 0/1;
// rbm_train_batches hands over to it when p.binary_products is set.
template <typename T> void rbm_train_batches_binary(const TrainParams<T>& p);

// rbm_sliced.cpp: the training loop for small batches, one parallel region per pass with the
// hidden units split among the threads; rbm_train_batches hands over to it (when
// p.binary_products and p.hidden_slices are set, and binary_max_density() > 0) for batches of at
// most kSlicedMaxRows rows of data and chains together: above that the per-product loop wins
// (docs/performance.md, "sliced training").
constexpr int64_t kSlicedMaxRows = 64;
template <typename T> void rbm_train_batches_sliced(const TrainParams<T>& p);

// The sliced loop's team governor: a pass runs as regions of a few dozen batches, each on the full
// team unless a recent full-team region's threads waited too long at the step barrier (a busy
// machine) and one thread has not been measured slower, in which case it runs on one thread. The
// choice never changes the result.
struct SlicedTeamStats {
  int64_t regions;          // parallel regions run since the last reset
  int64_t reduced_regions;  // of which on one thread instead of the full team
  int64_t refusals;         // full-team regions that sent the next ones to one thread
  int reduced_left;         // one-thread regions still to run before the full team is tried again
  int backoff;              // one-thread regions after the next refusal
  double last_wait_fraction;  // of the last full-team region: barrier wait / (threads * wall time)
  double max_wait_fraction;   // the limit
  double one_thread_ns_per_batch;  // running mean of one-thread regions for the current shape, or 0
};
int sliced_team_for_region(int full_team, uint64_t shape);  // threads for the next region
// What a region measured: its team, the team it could have had, barrier wait, wall time per batch.
void sliced_team_record(int team, int full_team, double wait_fraction, double ns_per_batch);
SlicedTeamStats sliced_team_stats();
void sliced_team_reset();
void set_sliced_adaptive(bool enabled);  // false: always the full team (the bench's "before" rows)
bool sliced_adaptive();

// The exact pseudo-likelihood sum_i log P(v_i | v_-i) of each row.
template <typename T> void rbm_pseudo_likelihood(
    const RBMWeights<T>& rbm,
    const T* visible,           // [rows, n_visible]
    const T* hidden_preact,     // [rows, n_hidden] = visible @ weights.T + hidden_bias
    T* out,                     // [rows]
    int64_t rows);

// Fused momentum step: velocity = momentum * velocity + lr * (grad - weight_decay * param);
// param += velocity. With velocity == nullptr: param += lr * (grad - weight_decay * param).
template <typename T> void sgd_momentum_update(
    T* param,             // [n]
    T* velocity,          // [n] or nullptr
    const T* grad,        // [n]
    int64_t n, T learning_rate, T momentum, T weight_decay);

// ---- ais.cpp -------------------------------------------------------------------------------

template <typename T> struct AISParams {
  RBMWeights<T> rbm;            // the target RBM B (read only)
  const T* base_visible_bias;   // [n_visible] visible bias b_A of the base-rate RBM (no W, no c)
  const double* betas;          // [n_betas] inverse temperatures, 0 = betas[0] <= ... <= betas[n_betas-1] = 1
  int64_t n_betas;              // >= 2
  int64_t n_chains;
  double* log_weights;          // [n_chains] out: each chain's log importance weight
  T* visible_out;               // [n_chains, n_visible] the chains' last states, or nullptr
  RandomStream stream;          // consumes 2 * n_betas - 3 offsets: v_0, then h and v at each inner beta
  bool binary_products = true;  // products with the sampled (0/1) states go to binary_matmul when it pays
  int64_t first_chain = 0;      // chain m draws as chain first_chain + m of a larger run (one rank's share)
};
// AIS from the base-rate RBM to the target (formulas in kernels/include/fastgen/ais.h):
// log Z_B ~ log Z_A + log mean exp(log_weights), accumulated in double.
template <typename T> void rbm_ais(const AISParams<T>& p);

template <typename T> struct RAISEParams {
  RBMWeights<T> rbm;            // the target RBM B (read only)
  const T* base_visible_bias;   // [n_visible] visible bias b_A of the base-rate RBM
  const double* betas;          // [n_betas] inverse temperatures, 0 = betas[0] <= ... <= betas[n_betas-1] = 1
  int64_t n_betas;              // >= 2
  const T* data;                // [n_rows, n_visible] 0/1 rows the chains start from
  int64_t n_rows;
  int64_t chains_per_row;       // >= 1
  double* log_weights;          // [n_rows, chains_per_row] out: sum_k log p*_beta_k-1(x_k-1) - log p*_beta_k(x_k-1)
  RandomStream stream;          // consumes 2 * (n_betas - 1) offsets: h and v at each beta from 1 down
  bool binary_products = true;
  int64_t first_chain = 0;      // as AISParams::first_chain (chain of row r, copy j: r * chains_per_row + j)
};
// Reverse AIS (RAISE) from each data row down to the base-rate RBM, chains_per_row chains per
// row: log P(x) ~ -F(x) - log Z_A + log mean exp(log_weights[row]), accumulated in double.
template <typename T> void rbm_raise(const RAISEParams<T>& p);

// ---- categorical.cpp -----------------------------------------------------------------------

template <typename T> struct CategoricalParams {
  const T* logits;        // [rows, cols] unnormalised log-probabilities, finite
  int64_t* out;           // [rows] the drawn column of each row, in [0, cols)
  int64_t rows, cols;     // cols >= 1
  int64_t logits_stride;  // row stride of logits
  T temperature;          // > 0: draws from softmax(logits / temperature)
  int64_t top_k;          // 1..cols: only the k largest logits of a row compete (ties: lower
                          // columns first); 0 or cols: all of them
  RandomStream stream;    // consumes 1 offset; element (r, c) uses index r * cols + c
};
// One categorical draw per row, Gumbel-max (kernels/include/fastgen/categorical.h) with the
// temperature and the top-k truncation fused: one pass over each row (plus a partial
// selection with top_k). Column c's uniform does not depend on top_k or on the other rows.
template <typename T> void sample_categorical(const CategoricalParams<T>& p);

// ---- reparam.cpp ---------------------------------------------------------------------------

template <typename T> struct ReparamParams {
  const T* mu;          // [rows, cols]
  const T* logvar;      // [rows, cols]
  T* z;                 // [rows, cols] out: mu + exp(logvar / 2) * eps (contiguous)
  T* kl;                // [rows] out: sum over cols of KL(N(mu, exp(logvar)) || N(0, 1)), or nullptr
  int64_t rows, cols;
  int64_t mu_stride, logvar_stride;  // row strides
  RandomStream stream;  // consumes 1 offset; eps of element (r, c) is normal number (first_row + r) * cols + c
  int64_t first_row;    // the rows' place in a larger batch (a data-parallel rank's share), else 0
};
// Returns which inputs hold a NaN or infinity (bit 0: mu, bit 1: logvar), found for free: such an
// element makes its row's KL sum non-finite, and only rows whose sum is non-finite are searched.
template <typename T> int reparameterize_forward(const ReparamParams<T>& p);

template <typename T> struct ReparamBackwardParams {
  const T* grad_z;      // [rows, cols] or nullptr (z unused)
  const T* grad_kl;     // [rows] or nullptr (kl unused)
  const T* mu;          // [rows, cols]
  const T* logvar;      // [rows, cols]
  T* grad_mu;           // [rows, cols] out
  T* grad_logvar;       // [rows, cols] out
  int64_t rows, cols;   // all contiguous
  RandomStream stream;  // the forward's: eps is drawn again, not stored
  int64_t first_row;    // the forward's
};
template <typename T> void reparameterize_backward(const ReparamBackwardParams<T>& p);

// ---- pool.cpp ------------------------------------------------------------------------------
// Images are [planes, H, W] with planes = batch * channels, each plane contiguous; indices are
// flat positions h * W + w inside the input plane of the pooling (torch's convention).

struct PoolGeometry {
  int64_t planes, in_h, in_w, out_h, out_w;
  int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;  // out = (in + 2 pad - kernel) / stride + 1
};
// out, indices: [planes, out_h, out_w]; the first maximum of each window (padding never wins).
template <typename T> void max_pool2d_forward(const PoolGeometry& g, const T* in, T* out, int64_t* indices);
// dst [planes, dst_plane] = 0, then dst[plane][indices[i]] (+)= src[plane][i] for src [planes, src_plane]:
// max unpooling (assign) and max pooling's backward (accumulate, fixed order).
template <typename T> void scatter_planes(const T* src, const int64_t* indices, int64_t planes, int64_t src_plane,
                                          T* dst, int64_t dst_plane, bool accumulate);
// dst [planes, dst_plane] = src [planes, src_plane] at indices [planes, dst_plane]: max unpooling's backward.
template <typename T> void gather_planes(const T* src, int64_t src_plane, const int64_t* indices, int64_t planes,
                                         int64_t dst_plane, T* dst);
// Average unpooling, in [planes, h, w] -> out [planes, h * kh, w * kw] (each value fills its block),
// and its adjoint (block sums).
template <typename T> void avg_unpool2d_forward(const T* in, int64_t planes, int64_t h, int64_t w, int64_t kh,
                                                int64_t kw, T* out);
template <typename T> void avg_unpool2d_backward(const T* grad_out, int64_t planes, int64_t h, int64_t w, int64_t kh,
                                                 int64_t kw, T* grad_in);

// ---- conv.cpp ------------------------------------------------------------------------------
// Transposed convolution, x [batch, in_c, in_h, in_w] * weight [in_c, out_c, kernel_h, kernel_w]
// -> out [batch, out_c, out_h, out_w], out_h = (in_h - 1) stride_h - 2 pad_h + kernel_h + output_padding_h.
// The caller computes cols = weight^T @ X, X = x as [in_c, batch * in_h * in_w] (one GEMM).

struct ConvTransposeGeometry {
  int64_t batch, in_c, in_h, in_w, out_c, out_h, out_w;
  int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
};
template <typename T> struct ConvTransposeParams {
  ConvTransposeGeometry geometry;
  const T* cols;    // [out_c * kernel_h * kernel_w, batch * in_h * in_w]
  const T* bias;    // [out_c] or nullptr
  T* out;           // [batch, out_c, out_h, out_w]
  int activation;   // fastgen::Activation (kernels/include/fastgen/activation.h)
  T slope;          // leaky_relu's negative slope
};
// The output pass: gather the contributions of cols, add the bias, apply the activation.
template <typename T> void conv_transpose2d_output(const ConvTransposeParams<T>& p);
template <typename T> struct ConvTransposeForwardParams {
  ConvTransposeGeometry geometry;
  const T* x;       // [batch, in_c, in_h, in_w] contiguous
  const T* weight;  // [in_c, out_c, kernel_h, kernel_w] contiguous
  const T* bias;    // [out_c] or nullptr
  T* out;           // [batch, out_c, out_h, out_w]
  int activation;   // fastgen::Activation
  T slope;          // leaky_relu's negative slope
  bool parallel_chunks;    // the caller made BLAS single-threaded: one thread per chunk, GEMM included
  int64_t chunk_elements;  // cols buffer size per chunk of images (0: the default)
};
// The whole forward: per chunk of images, cols = weight^T @ X (BLAS, gemm below) into a buffer
// that stays in cache, then the output pass over those images. With parallel_chunks the chunks
// are spread over the OpenMP threads (each thread's GEMM runs on that thread); otherwise they
// run in turn, each GEMM on BLAS's threads and each output pass on OpenMP's. Returns 1 if x holds
// a NaN or infinity (checked as each chunk is read for its GEMM; out is then not meaningful), else 0.
template <typename T> int conv_transpose2d_forward(const ConvTransposeForwardParams<T>& p);
// Backward: cols [out_c * kernel_h * kernel_w, batch * in_h * in_w] gathered from grad [batch, out_c, out_h, out_w];
// then grad_x = weight @ cols and grad_weight = X @ cols^T (BLAS, by the caller).
template <typename T> void conv_transpose2d_im2col(const ConvTransposeGeometry& g, const T* grad, T* cols);
template <typename T> struct ConvTransposeBackwardParams {
  ConvTransposeGeometry geometry;
  const T* grad;       // [batch, out_c, out_h, out_w] contiguous, the activation's derivative already applied
  const T* x;          // [batch, in_c, in_h, in_w] contiguous
  const T* weight;     // [in_c, out_c, kernel_h, kernel_w] contiguous
  T* grad_x;           // [batch, in_c, in_h, in_w], or nullptr when not wanted
  T* grad_weight;      // [in_c, out_c, kernel_h, kernel_w]
  bool parallel_chunks;    // as in the forward: one thread per group of chunks, single-threaded GEMMs
  int64_t chunk_elements;  // as in the forward (0: the default)
};
// The whole backward, chunked like the forward: per chunk of images the gradient's im2col into a
// buffer that stays in cache, then grad_x = weight @ cols and grad_weight += X @ cols^T (BLAS);
// grad_weight summed in an order fixed by the shape (the same bits on any thread count).
template <typename T> void conv_transpose2d_backward(const ConvTransposeBackwardParams<T>& p);
// grad_in = grad_out * act'(x), from the activation's output y.                     // all [n]
template <typename T> void activation_backward(const T* grad_out, const T* y, int64_t n, int activation, T slope,
                                               T* grad_in);

// ---- elbo.cpp ------------------------------------------------------------------------------
// The ELBO's reconstruction log-likelihoods, summed per sample (kernels/include/fastgen/elbo.h).
// All arrays contiguous. Bernoulli decoders give logits; Gaussian decoders a mean and a
// log-variance that is per element (logvar_mode 2: [rows, cols]), per feature (1: [cols]) or
// absent (0: unit variance, log-variance 0).
template <typename T> struct BernoulliLikelihoodParams {
  const T* x;       // [rows, cols] data in [0, 1]
  const T* logits;  // [rows, cols]
  int64_t rows, cols;
};
template <typename T> void bernoulli_log_likelihood(const BernoulliLikelihoodParams<T>& p, T* out);  // out [rows]
// The same sums and, in the same pass, grad_logits [rows, cols] = x - sigmoid(l) (the gradient for
// a unit upstream gradient): training needs both, and one pass replaces a second over the data.
template <typename T>
void bernoulli_log_likelihood_with_grad(const BernoulliLikelihoodParams<T>& p, T* out, T* grad_logits);
// grad_logits [rows, cols] = g[r] * (x - sigmoid(l)); grad_x (or nullptr) = g[r] * l.    // g [rows]
template <typename T> void bernoulli_log_likelihood_backward(const BernoulliLikelihoodParams<T>& p, const T* g,
                                                             T* grad_logits, T* grad_x);
template <typename T> struct GaussianLikelihoodParams {
  const T* x;       // [rows, cols]
  const T* mean;    // [rows, cols]
  const T* logvar;  // see logvar_mode
  int logvar_mode;
  int64_t rows, cols;
};
template <typename T> void gaussian_log_likelihood(const GaussianLikelihoodParams<T>& p, T* out);  // out [rows]
// grad_mean [rows, cols]; grad_logvar shaped like logvar (per-feature: summed over rows) or
// nullptr; grad_x [rows, cols] or nullptr.                                                // g [rows]
template <typename T> void gaussian_log_likelihood_backward(const GaussianLikelihoodParams<T>& p, const T* g,
                                                            T* grad_mean, T* grad_logvar, T* grad_x);

// ---- blas.cpp ------------------------------------------------------------------------------

// Row-major GEMM: C[M, N] = alpha * op(A)[M, K] @ op(B)[K, N] + beta * C.
template <typename T> void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                                const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C,
                                int64_t ldc);
// Install the Fortran-ABI ?gemm entry points (taken from SciPy's cython_blas at import).
void set_blas(void* sgemm, void* dgemm);

// blas_threads.cpp: OpenBLAS's caller-managed threading hook, run on fastgen's OpenMP team. Its
// address is what openblas_set_threads_callback_function takes.
void run_blas_jobs(int sync, void (*job)(int thread_number, void* job, int job_data), int jobs, size_t job_size,
                   void* job_array, int job_data) noexcept;
uintptr_t blas_jobs_callback_address();
struct BlasJobStats {
  int64_t calls;                // threaded BLAS calls run through the hook
  int64_t calls_on_own_threads;  // of which on threads started for the call (no OpenMP team possible)
};
BlasJobStats blas_jobs_stats();
// Test hook: `jobs` jobs that each wait for all the others, run through the hook (from inside an
// OpenMP region if asked); true if they all met.
bool blas_jobs_meet(int jobs, bool inside_parallel_region);
bool blas_ready();

}  // namespace cpu
}  // namespace fastgen

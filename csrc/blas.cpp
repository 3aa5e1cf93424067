// GEMMs go to the BLAS SciPy ships (OpenBLAS in the wheels): its Fortran ?gemm entry points are
// exported as PyCapsules by scipy.linalg.cython_blas, and fastgen/_C's import hands them here.
// That gives compiled loops an optimised BLAS without linking one at build time.
#include <algorithm>
#include <stdexcept>

#include "fastgen.h"

namespace fastgen {
namespace cpu {
namespace {

using sgemm_fn = void (*)(const char*, const char*, const int*, const int*, const int*, const float*,
                          const float*, const int*, const float*, const int*, const float*, float*,
                          const int*);
using dgemm_fn = void (*)(const char*, const char*, const int*, const int*, const int*, const double*,
                          const double*, const int*, const double*, const int*, const double*,
                          double*, const int*);
sgemm_fn g_sgemm = nullptr;
dgemm_fn g_dgemm = nullptr;

template <typename T> struct Gemm;
template <> struct Gemm<float> { static sgemm_fn fn() { return g_sgemm; } };
template <> struct Gemm<double> { static dgemm_fn fn() { return g_dgemm; } };

}  // namespace

void set_blas(void* sgemm, void* dgemm) {
  g_sgemm = reinterpret_cast<sgemm_fn>(sgemm);
  g_dgemm = reinterpret_cast<dgemm_fn>(dgemm);
}
bool blas_ready() { return g_sgemm != nullptr && g_dgemm != nullptr; }

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  auto fn = Gemm<T>::fn();
  if (fn == nullptr) throw std::runtime_error("fastgen: BLAS entry points were not installed");
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T.
  const char ta = trans_b ? 'T' : 'N', tb = trans_a ? 'T' : 'N';
  const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
  const int la = static_cast<int>(std::max<int64_t>(ldb, 1));
  const int lb = static_cast<int>(std::max<int64_t>(lda, 1));
  const int lc = static_cast<int>(std::max<int64_t>(ldc, 1));
  fn(&ta, &tb, &m, &n, &k, &alpha, B, &la, A, &lb, &beta, C, &lc);
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                           const double*, int64_t, double, double*, int64_t);

}  // namespace cpu
}  // namespace fastgen

/* A host stand-in for the part of cuBLAS's C API that fastgen/_native/cublas.py calls: the same
 * symbols and argument lists, column-major GEMMs on host pointers, and getters for what the
 * last call was given (handle stream, workspace). Built by tests/cuda/test_cuda_toolchain.py. */
#include <stddef.h>
#include <stdint.h>

static void* last_stream;
static void* last_workspace;
static size_t last_workspace_bytes;
static int handles_made;
static int fail_next_gemm;

void* fake_last_stream(void) { return last_stream; }
void* fake_last_workspace(void) { return last_workspace; }
size_t fake_last_workspace_bytes(void) { return last_workspace_bytes; }
int fake_handles_made(void) { return handles_made; }
void fake_fail_next_gemm(int status) { fail_next_gemm = status; }

int cublasCreate_v2(void** handle) { *handle = (void*)(intptr_t)(0x1000 + ++handles_made); return 0; }
int cublasSetStream_v2(void* handle, void* stream) { (void)handle; last_stream = stream; return 0; }
int cublasSetWorkspace_v2(void* handle, void* ws, size_t bytes) {
  (void)handle; last_workspace = ws; last_workspace_bytes = bytes; return 0;
}
int cublasGetVersion_v2(void* handle, int* version) { (void)handle; *version = 130100; return 0; }

#define FAKE_GEMM(NAME, T)                                                                          \
  int NAME(void* handle, int transa, int transb, int m, int n, int k, const T* alpha, const T* A,    \
           int lda, const T* B, int ldb, const T* beta, T* C, int ldc) {                            \
    (void)handle;                                                                                   \
    if (fail_next_gemm) { int s = fail_next_gemm; fail_next_gemm = 0; return s; }                   \
    for (int j = 0; j < n; ++j)                                                                     \
      for (int i = 0; i < m; ++i) {                                                                 \
        double acc = 0;                                                                             \
        for (int p = 0; p < k; ++p) {                                                               \
          double a = transa ? A[p + (size_t)i * lda] : A[i + (size_t)p * lda];                     \
          double b = transb ? B[j + (size_t)p * ldb] : B[p + (size_t)j * ldb];                     \
          acc += a * b;                                                                             \
        }                                                                                           \
        T* c = &C[i + (size_t)j * ldc];                                                             \
        *c = (T)(*alpha * acc + (*beta == 0 ? 0 : *beta * *c));                                    \
      }                                                                                             \
    return 0;                                                                                       \
  }

FAKE_GEMM(cublasSgemm_v2, float)
FAKE_GEMM(cublasDgemm_v2, double)

// Buffers aligned to a cache line, and row strides padded to one, so that every row of the
// RBM's weight copies starts on a 64-byte boundary (a vector load never splits across lines).
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace fastgen {
namespace cpu {

constexpr std::size_t kCacheLine = 64;

template <typename T> struct CacheAlignedAllocator {
  using value_type = T;
  CacheAlignedAllocator() = default;
  template <typename U> CacheAlignedAllocator(const CacheAlignedAllocator<U>&) {}
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(kCacheLine)));
  }
  void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t(kCacheLine)); }
  template <typename U> bool operator==(const CacheAlignedAllocator<U>&) const { return true; }
  template <typename U> bool operator!=(const CacheAlignedAllocator<U>&) const { return false; }
};

template <typename T> using AlignedVector = std::vector<T, CacheAlignedAllocator<T>>;

// n rounded up to an odd number of whole cache lines of T. Odd, because the binary products
// keep a block of rows of these copies in L1 (a slice of each row): at a stride of an even
// number of lines -- 2048 bytes for 500 float32 hidden units or 256 float64 ones -- those slices
// fall into a fraction of L1's sets and evict each other long before L1 is full.
template <typename T> constexpr int64_t padded_stride(int64_t n) {
  constexpr int64_t per_line = static_cast<int64_t>(kCacheLine / sizeof(T));
  const int64_t lines = (n + per_line - 1) / per_line;
  return (lines % 2 == 0 && lines > 0 ? lines + 1 : lines) * per_line;
}

}  // namespace cpu
}  // namespace fastgen

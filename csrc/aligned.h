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

// n rounded up to whole cache lines of T.
template <typename T> constexpr int64_t padded_stride(int64_t n) {
  constexpr int64_t per_line = static_cast<int64_t>(kCacheLine / sizeof(T));
  return (n + per_line - 1) / per_line * per_line;
}

}  // namespace cpu
}  // namespace fastgen

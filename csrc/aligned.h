// Buffers aligned to a cache line, and row strides padded to one, so that every row of the
// RBM's weight copies starts on a 64-byte boundary (a vector load never splits across lines).
//
// Large buffers (kLargeBufferBytes and up) are kept when freed and handed out again to the next
// request of the same rounded size (aligned.cpp): the loops allocate their working arrays per
// call, and on a VM faulting fresh pages in can cost more than the work (docs/performance.md,
// "buffer cache"). Blocks of 2 MiB and more are asked to be
// backed by transparent huge pages (one fault and one TLB entry per 2 MiB where the kernel allows).
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace fastgen {
namespace cpu {

constexpr std::size_t kCacheLine = 64;
constexpr std::size_t kLargeBufferBytes = std::size_t(256) << 10;

// Cache-line aligned memory of at least `bytes`; large blocks come from (and free_buffer returns
// them to) the cache of freed blocks. free_buffer must get the size allocate_buffer was given.
void* allocate_buffer(std::size_t bytes);
void free_buffer(void* p, std::size_t bytes) noexcept;
// Frees every cached block; returns the bytes released.
std::size_t release_cached_buffers() noexcept;
// Bytes held in cached (free) blocks.
std::size_t cached_buffer_bytes() noexcept;
// Whether freed blocks are kept at all (not in AddressSanitizer builds).
bool buffer_cache_enabled() noexcept;

template <typename T> struct CacheAlignedAllocator {
  using value_type = T;
  CacheAlignedAllocator() = default;
  template <typename U> CacheAlignedAllocator(const CacheAlignedAllocator<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(allocate_buffer(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { free_buffer(p, n * sizeof(T)); }
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

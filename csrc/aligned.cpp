// The cache of large freed buffers behind allocate_buffer (aligned.h).
#include "aligned.h"

#include <pthread.h>

#include <cstdlib>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace fastgen {
namespace cpu {
namespace {

constexpr std::size_t kHugePage = std::size_t(2) << 20;
// Freed blocks kept at most, in bytes: enough for the working arrays of a few calls at the
// benchmark shapes, little against the data they are run on.
constexpr std::size_t kCacheCapacity = std::size_t(256) << 20;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kCaching = false;  // reused blocks would hide use-after-free from the sanitizer
#else
constexpr bool kCaching = true;
#endif

// Large requests are rounded up, so that a block freed by one call fits the same request of the
// next: to whole huge pages from 2 MiB on, to 64 KiB below.
std::size_t rounded(std::size_t bytes) {
  const std::size_t unit = bytes >= kHugePage ? kHugePage : std::size_t(64) << 10;
  return (bytes + unit - 1) / unit * unit;
}

struct BlockCache {
  std::mutex mutex;
  std::vector<std::pair<std::size_t, void*>> blocks;  // (rounded size, block), last freed last
  std::size_t bytes = 0;
};

BlockCache& cache() {
  static BlockCache* c = new BlockCache;  // never destroyed: buffers may be freed during exit
  return *c;
}

// fork() copies the mutex as it is; held by another thread at that moment, it would stay locked
// in the child for ever. So the forking thread holds it across fork() and releases both copies.
void lock_cache_before_fork() { cache().mutex.lock(); }
void unlock_cache_after_fork() { cache().mutex.unlock(); }
[[maybe_unused]] const int fork_handlers_registered =
    pthread_atfork(lock_cache_before_fork, unlock_cache_after_fork, unlock_cache_after_fork);

void* new_large_block(std::size_t size) {
  const std::size_t alignment = size >= kHugePage ? kHugePage : kCacheLine;
  void* p = std::aligned_alloc(alignment, size);
  if (p == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (size >= kHugePage) madvise(p, size, MADV_HUGEPAGE);  // advice only: failure changes nothing
#endif
  return p;
}

}  // namespace

void* allocate_buffer(std::size_t bytes) {
  if (bytes < kLargeBufferBytes) return ::operator new(bytes, std::align_val_t(kCacheLine));
  const std::size_t size = rounded(bytes);
  if (kCaching) {
    BlockCache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    for (std::size_t i = c.blocks.size(); i-- > 0;) {
      if (c.blocks[i].first == size) {
        void* p = c.blocks[i].second;
        c.blocks.erase(c.blocks.begin() + static_cast<std::ptrdiff_t>(i));
        c.bytes -= size;
        return p;
      }
    }
  }
  return new_large_block(size);
}

void free_buffer(void* p, std::size_t bytes) noexcept {
  if (p == nullptr) return;
  if (bytes < kLargeBufferBytes) {
    ::operator delete(p, std::align_val_t(kCacheLine));
    return;
  }
  const std::size_t size = rounded(bytes);
  if (kCaching) {
    BlockCache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    // Oldest blocks go first when the new one would not fit.
    while (!c.blocks.empty() && c.bytes + size > kCacheCapacity) {
      std::free(c.blocks.front().second);
      c.bytes -= c.blocks.front().first;
      c.blocks.erase(c.blocks.begin());
    }
    if (size <= kCacheCapacity) {
      try {
        c.blocks.emplace_back(size, p);
        c.bytes += size;
        return;
      } catch (...) {
      }
    }
  }
  std::free(p);
}

std::size_t release_cached_buffers() noexcept {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  const std::size_t released = c.bytes;
  for (auto& block : c.blocks) std::free(block.second);
  c.blocks.clear();
  c.bytes = 0;
  return released;
}

bool buffer_cache_enabled() noexcept { return kCaching; }

std::size_t cached_buffer_bytes() noexcept {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.bytes;
}

}  // namespace cpu
}  // namespace fastgen

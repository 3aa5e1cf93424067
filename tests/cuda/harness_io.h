// File and struct-layout helpers shared by the host harnesses (harness*.cu): each harness
// reads its inputs from a raw binary file written by its pytest driver, writes its outputs the
// same way, and prints the offsets of the params structs so the driver can compare them with the
// Python-side layouts.
#pragma once
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace harness_io {

// The bytes of `path`; "-" means no input (an empty buffer).
inline std::vector<char> read_file(const char* path) {
  std::vector<char> data;
  if (std::string(path) == "-") return data;
  FILE* f = std::fopen(path, "rb");
  if (!f) { std::perror(path); std::exit(2); }
  char buf[1 << 16];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) data.insert(data.end(), buf, buf + got);
  std::fclose(f);
  return data;
}

inline void write_file(const char* path, const void* data, size_t bytes) {
  FILE* f = std::fopen(path, "wb");
  if (!f) { std::perror(path); std::exit(2); }
  std::fwrite(data, 1, bytes, f);
  std::fclose(f);
}

}  // namespace harness_io

#define FIELD(S, F) std::printf("%s.%s %zu\n", #S, #F, offsetof(S, F))
#define SIZE(S) std::printf("%s %zu\n", #S, sizeof(S))

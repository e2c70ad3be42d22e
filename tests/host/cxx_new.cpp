// C++ operator new/delete under the preloaded host: every form resolves to
// libhakmem.so (not libstdc++'s wrappers), blocks come from the host
// (malloc_usable_size knows them), alignment is honoured, and failure
// keeps the standard's behaviour: the new handler runs, then std::bad_alloc
// is thrown, and the nothrow forms return nullptr.
#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

static int failures;
#define CHECK(c)                                                              \
  do {                                                                        \
    if (!(c)) {                                                               \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
      failures++;                                                             \
    }                                                                         \
  } while (0)

static const char *owner_of(const char *symbol) {
  void *f = dlsym(RTLD_DEFAULT, symbol);
  Dl_info info;
  if (!f || !dladdr(f, &info) || !info.dli_fname) return "?";
  return info.dli_fname;
}

static int handler_calls;
static void one_shot_handler() {
  handler_calls++;
  std::set_new_handler(nullptr);  // the next failure throws
}

struct alignas(256) Wide {
  char bytes[700];
};

int main() {
  alarm(60);  // a new handler loop that never ends fails here, not in CI's timeout
  const char *forms[] = {"_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnwmSt11align_val_t",
                         "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdlPvSt11align_val_t",
                         "_ZdlPvmSt11align_val_t"};
  for (const char *f : forms) {
    const char *lib = owner_of(f);
    if (!std::strstr(lib, "hakmem")) {
      std::fprintf(stderr, "%s resolves to %s, not libhakmem\n", f, lib);
      failures++;
    }
  }

  // Plain, array, sized and nothrow forms: the blocks are the host's.
  for (size_t n : {1, 24, 100, 1000, 5000, 100000, 3000000}) {
    char *p = new char[n];
    std::memset(p, 0x5a, n);
    CHECK(malloc_usable_size(p) >= n);
    delete[] p;
    auto *q = static_cast<char *>(::operator new(n));
    q[n - 1] = 1;
    ::operator delete(q, n);
    char *r = new (std::nothrow) char[n];
    CHECK(r != nullptr);
    delete[] r;
  }
  int *zero = new int[0];
  CHECK(zero != nullptr);
  delete[] zero;
  delete static_cast<int *>(nullptr);

  // Over-aligned types take the align_val_t forms.
  std::vector<Wide *> wide;
  for (int i = 0; i < 64; i++) {
    Wide *w = new Wide;
    CHECK((reinterpret_cast<uintptr_t>(w) & 255) == 0);
    w->bytes[699] = 1;
    wide.push_back(w);
  }
  for (Wide *w : wide) delete w;
  void *page = ::operator new(10, std::align_val_t(4096));
  CHECK((reinterpret_cast<uintptr_t>(page) & 4095) == 0);
  ::operator delete(page, std::align_val_t(4096));
  void *page2 = ::operator new[](100, std::align_val_t(65536), std::nothrow);
  CHECK(page2 && (reinterpret_cast<uintptr_t>(page2) & 65535) == 0);
  ::operator delete[](page2, std::align_val_t(65536));

  // Containers churn through the operators.
  std::vector<std::string> strings;
  for (int i = 0; i < 20000; i++) strings.push_back(std::string(i % 300, 'x') + std::to_string(i));
  CHECK(strings[12345].size() == 12345 % 300 + 5);

  // Failure: nothrow gives nullptr, the handler runs once, then bad_alloc.
  const size_t huge = (size_t)1 << 62;
  CHECK(::operator new(huge, std::nothrow) == nullptr);
  CHECK(::operator new(huge, std::align_val_t(64), std::nothrow) == nullptr);
  std::set_new_handler(one_shot_handler);
  bool thrown = false;
  try {
    void *p = ::operator new(huge);
    ::operator delete(p);
  } catch (const std::bad_alloc &) {
    thrown = true;
  }
  CHECK(thrown);
  CHECK(handler_calls == 1);
  thrown = false;
  try {
    void *p = ::operator new[](huge, std::align_val_t(128));
    ::operator delete[](p, std::align_val_t(128));
  } catch (const std::bad_alloc &) {
    thrown = true;
  }
  CHECK(thrown);

  if (failures) {
    std::fprintf(stderr, "cxx_new: %d check(s) failed\n", failures);
    return 1;
  }
  std::printf("cxx_new: ok\n");
  return 0;
}

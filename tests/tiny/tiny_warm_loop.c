/*
 * tiny_warm_loop STACK [ITERATIONS]: malloc(256) + free in a warm loop
 * through the host's dispatch. STACK is superslab, unified, ring or
 * ring+unified. For instructions per pair:
 *   valgrind --tool=callgrind --toggle-collect=warm_loop \
 *       bin/tiny_warm_loop unified 1000000
 * then Ir / ITERATIONS.
 */
#include "tiny_test.h"

#include <string.h>

__attribute__((noinline)) void warm_loop(long n, size_t size)
{
    for (long i = 0; i < n; i++) {
        void *p = harness_malloc(size);
        __asm__ volatile("" : : "r"(p) : "memory");
        harness_free(p);
    }
}

int main(int argc, char **argv)
{
    enum tiny_stack st = STACK_COUNT;
    for (enum tiny_stack s = 0; s < STACK_COUNT; s++)
        if (argc > 1 && !strcmp(argv[1], tiny_stack_name(s)))
            st = s;
    if (st == STACK_COUNT) {
        fprintf(stderr, "usage: %s superslab|unified|ring|ring+unified [iterations] [size]\n",
                argv[0]);
        return 2;
    }
    long n = argc > 2 ? atol(argv[2]) : 1000000;
    size_t size = argc > 3 ? (size_t)atol(argv[3]) : 256;
    tiny_open(st, NULL, NULL, NULL);
    harness_free(harness_malloc(size)); /* warm: the first call sets up */
    warm_loop(n, size);
    struct hak_stats s = harness_stats(tiny_top());
    CHECK_EQ(s.allocs, (uint64_t)n + 1);
    printf("%s: %ld pairs of malloc(%zu)+free\n", argv[1], n, size);
    return 0;
}

/* The huge-page filler (huge_filler.h): placement of spans in 2 MB pages. */
#include "huge_filler.h"

#define HF_BIN_SCAN 8 /* pages looked at per bin for the most used */

static uint32_t longest_free(uint32_t used)
{
    uint32_t x = ~used, n = 0;
    while (x) { /* each step shortens every run of ones by one */
        x &= x << 1;
        n++;
    }
    return n;
}

static inline uint32_t run_mask(uint32_t n)
{
    return n >= 32 ? HF_FULL_MASK : (1u << n) - 1;
}

/* The first granule index, a multiple of align_g, starting n free ones. */
static int find_run(uint32_t used, uint32_t n, uint32_t align_g)
{
    uint32_t mask = run_mask(n);
    for (uint32_t i = 0; i + n <= HF_GRANULES; i += align_g)
        if (!(used & (mask << i)))
            return (int)i;
    return -1;
}

static inline uint32_t hash_of(uintptr_t base)
{
    return (uint32_t)(base >> HAK_HUGE_SHIFT) & (HF_HASH_BUCKETS - 1);
}

static void bin_unlink(struct hf_filler *f, struct hf_page *pg)
{
    if (pg->prev)
        pg->prev->next = pg->next;
    else
        f->bin[pg->bin] = pg->next;
    if (pg->next)
        pg->next->prev = pg->prev;
    pg->prev = pg->next = NULL;
}

/* Put a page on the bin of its longest free run (most recent first), or
 * on none when it is wholly free. */
static void bin_place(struct hf_filler *f, struct hf_page *pg)
{
    pg->bin = longest_free(pg->used);
    if (pg->bin >= HF_GRANULES)
        return;
    pg->prev = NULL;
    pg->next = f->bin[pg->bin];
    if (pg->next)
        pg->next->prev = pg;
    f->bin[pg->bin] = pg;
}

int hf_init(struct hf_filler *f, const struct hak_host *host)
{
    f->host = host;
    f->hash = host->meta_alloc(HF_HASH_BUCKETS * sizeof *f->hash);
    return f->hash ? 0 : -1;
}

struct hf_page *hf_add(struct hf_filler *f, uintptr_t base, uint32_t used)
{
    struct hf_page *pg = f->spare;
    if (pg)
        f->spare = pg->next;
    else if (!(pg = f->host->meta_alloc(sizeof *pg)))
        return NULL;
    *pg = (struct hf_page){.base = base, .used = used};
    uint32_t h = hash_of(base);
    pg->hash_next = f->hash[h];
    f->hash[h] = pg;
    f->pages++;
    bin_place(f, pg);
    if (used)
        f->free_granules += HF_GRANULES - (uint32_t)__builtin_popcount(used);
    return pg;
}

struct hf_page *hf_find(const struct hf_filler *f, const void *p)
{
    uintptr_t base = (uintptr_t)p & ~(uintptr_t)(HAK_HUGE_PAGE - 1);
    for (struct hf_page *pg = f->hash[hash_of(base)]; pg; pg = pg->hash_next)
        if (pg->base == base)
            return pg;
    return NULL;
}

void hf_remove(struct hf_filler *f, struct hf_page *pg)
{
    struct hf_page **at = &f->hash[hash_of(pg->base)];
    while (*at != pg)
        at = &(*at)->hash_next;
    *at = pg->hash_next;
    f->pages--;
    pg->next = f->spare;
    f->spare = pg;
}

static void *take(struct hf_filler *f, struct hf_page *pg, int at, uint32_t n)
{
    if (pg->bin < HF_GRANULES) {
        bin_unlink(f, pg);
        f->free_granules -= n;
    } else {
        f->free_granules += HF_GRANULES - n; /* a free page comes into use */
    }
    pg->used |= run_mask(n) << at;
    bin_place(f, pg);
    return (void *)(pg->base + ((uintptr_t)at << HAK_GRANULE_SHIFT));
}

void *hf_alloc(struct hf_filler *f, uint32_t n, uint32_t align_g)
{
    for (uint32_t b = n; b < HF_GRANULES; b++) {
        struct hf_page *best = NULL;
        int best_at = -1, best_used = -1, seen = 0;
        for (struct hf_page *pg = f->bin[b]; pg && seen < HF_BIN_SCAN; pg = pg->next, seen++) {
            int at = find_run(pg->used, n, align_g);
            int used = __builtin_popcount(pg->used);
            if (at >= 0 && used > best_used) {
                best = pg;
                best_at = at;
                best_used = used;
            }
        }
        if (best)
            return take(f, best, best_at, n);
    }
    return NULL;
}

void *hf_alloc_from(struct hf_filler *f, struct hf_page *pg, uint32_t n, uint32_t align_g)
{
    int at = find_run(pg->used, n, align_g);
    return at < 0 ? NULL : take(f, pg, at, n);
}

int hf_free(struct hf_filler *f, struct hf_page *pg, const void *p, uint32_t n)
{
    uintptr_t off = (uintptr_t)p - pg->base;
    if ((off & (HAK_GRANULE - 1)) || n == 0 || (off >> HAK_GRANULE_SHIFT) + n > HF_GRANULES)
        return -1;
    uint32_t mask = run_mask(n) << (off >> HAK_GRANULE_SHIFT);
    if ((pg->used & mask) != mask)
        return -1;
    if (pg->bin < HF_GRANULES)
        bin_unlink(f, pg);
    uint32_t free_before = HF_GRANULES - (uint32_t)__builtin_popcount(pg->used);
    pg->used &= ~mask;
    if (!pg->used) {
        f->free_granules -= free_before; /* leaves the partly used pages */
        pg->bin = HF_GRANULES;
        return 1;
    }
    f->free_granules += n;
    bin_place(f, pg);
    return 0;
}

/*
 * The huge-page filler: 2 MB pages cut into spans of whole 64 KB granules,
 * 32 per page, one bit each. Shared by huge_span (with a cache of wholly
 * free pages) and os_pages (huge = madvise, pages returned at once).
 *
 * Placement (after Temeraire's HugeFiller): a span goes to the partly used
 * page whose longest free run is the smallest that fits, the most used of
 * those; a free page is broken only when no partly used page has room.
 * Pages are binned by their longest free run, so a request looks at the
 * bins from its length up and at a few pages per bin.
 *
 * Not thread-safe: the caller holds its lock. Descriptors and the address
 * hash come from host->meta_alloc and are recycled, never freed.
 */
#ifndef HAKMEM_HUGE_FILLER_H
#define HAKMEM_HUGE_FILLER_H

#include <box_api/hakmem_box.h>

#define HF_GRANULES ((uint32_t)(HAK_HUGE_PAGE / HAK_GRANULE)) /* 32 */
#define HF_FULL_MASK 0xFFFFFFFFu
#define HF_HASH_BUCKETS 4096u

struct hf_page {
    uintptr_t base;
    uint32_t used; /* one bit per granule */
    uint32_t bin;  /* longest free run; HF_GRANULES: wholly free, on no bin */
    struct hf_page *prev, *next; /* its bin's list, or the caller's free list */
    struct hf_page *hash_next;
    uint64_t freed_ns; /* when it became wholly free */
    uint32_t dirty;    /* granules handed out before (os_pages zeroes them on reuse) */
};

struct hf_filler {
    const struct hak_host *host;
    struct hf_page *bin[HF_GRANULES]; /* [0]: full pages; [1..31]: partly used */
    struct hf_page **hash;
    struct hf_page *spare;   /* recycled descriptors */
    uint64_t pages;          /* pages known (in a bin or wholly free) */
    uint64_t free_granules;  /* free granules of pages in use (not wholly free) */
};

/* 0, or -1 when no metadata memory. */
int hf_init(struct hf_filler *f, const struct hak_host *host);
/* Register a page of HAK_HUGE_PAGE bytes at base, with `used` granules
 * taken; a wholly free page is returned for the caller to keep (bin ==
 * HF_GRANULES). NULL when no metadata memory. */
struct hf_page *hf_add(struct hf_filler *f, uintptr_t base, uint32_t used);
/* The page holding p, or NULL. */
struct hf_page *hf_find(const struct hf_filler *f, const void *p);
/* Forget a page (wholly free, on no bin); its descriptor is recycled. */
void hf_remove(struct hf_filler *f, struct hf_page *pg);
/* A span of n granules (1..31) aligned to align_g granules (a power of two
 * <= 32) from a partly used page, or NULL when none has room. */
void *hf_alloc(struct hf_filler *f, uint32_t n, uint32_t align_g);
/* The same from a page the caller gives (wholly free, on no bin). */
void *hf_alloc_from(struct hf_filler *f, struct hf_page *pg, uint32_t n, uint32_t align_g);
/* Give back n granules at p. 1: the page became wholly free (off its bin,
 * for the caller to keep or release); 0: still partly used; -1: the
 * granules were not all in use (a double free), nothing changed. */
int hf_free(struct hf_filler *f, struct hf_page *pg, const void *p, uint32_t n);

#endif

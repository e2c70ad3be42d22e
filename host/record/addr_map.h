/* An open-addressing map from addresses (never 0) to block slots, for the
 * converter: linear probing, backward-shift deletion, grown at half full. */
#ifndef HAKMEM_ADDR_MAP_H
#define HAKMEM_ADDR_MAP_H

#include <stdint.h>
#include <stdlib.h>

struct addr_map {
    uint64_t *keys;
    uint32_t *vals;
    size_t cap, count; /* cap a power of two */
};

static inline size_t addr_hash(uint64_t k, size_t mask)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (size_t)k & mask;
}

static inline int addr_map_init(struct addr_map *m, size_t cap)
{
    m->cap = cap;
    m->count = 0;
    m->keys = calloc(cap, sizeof *m->keys);
    m->vals = calloc(cap, sizeof *m->vals);
    return m->keys && m->vals ? 0 : -1;
}

static inline void addr_map_free(struct addr_map *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
}

/* The slot of k, or -1. */
static inline int64_t addr_map_get(const struct addr_map *m, uint64_t k)
{
    size_t mask = m->cap - 1;
    for (size_t i = addr_hash(k, mask);; i = (i + 1) & mask) {
        if (m->keys[i] == k)
            return m->vals[i];
        if (!m->keys[i])
            return -1;
    }
}

static inline int addr_map_put(struct addr_map *m, uint64_t k, uint32_t v);

static inline int addr_map_grow(struct addr_map *m)
{
    struct addr_map bigger;
    if (addr_map_init(&bigger, m->cap * 2))
        return -1;
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i])
            addr_map_put(&bigger, m->keys[i], m->vals[i]);
    addr_map_free(m);
    *m = bigger;
    return 0;
}

static inline int addr_map_put(struct addr_map *m, uint64_t k, uint32_t v)
{
    if ((m->count + 1) * 2 > m->cap && addr_map_grow(m))
        return -1;
    size_t mask = m->cap - 1;
    for (size_t i = addr_hash(k, mask);; i = (i + 1) & mask) {
        if (m->keys[i] == k) {
            m->vals[i] = v;
            return 0;
        }
        if (!m->keys[i]) {
            m->keys[i] = k;
            m->vals[i] = v;
            m->count++;
            return 0;
        }
    }
}

/* Removes k; returns its slot or -1. */
static inline int64_t addr_map_del(struct addr_map *m, uint64_t k)
{
    size_t mask = m->cap - 1;
    size_t i = addr_hash(k, mask);
    while (m->keys[i] != k) {
        if (!m->keys[i])
            return -1;
        i = (i + 1) & mask;
    }
    int64_t v = m->vals[i];
    /* Shift back the entries of the run that belong before the hole. */
    for (size_t j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
        size_t home = addr_hash(m->keys[j], mask);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            i = j;
        }
    }
    m->keys[i] = 0;
    m->count--;
    return v;
}

#endif

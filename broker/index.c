/* index.c - an open-addressing hash index: linear probing, growth from stored hashes, removal by backward shift. */
#include "index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define INDEX_MIN_SLOTS 16

/* Full above five eighths: a lookup of a missing key then probes about
 * three slots on average (16 bytes each, four to a cache line). */
static bool too_full(size_t entries, size_t slots)
{
    return entries * 8 > slots * 5;
}

static uint64_t rotl(uint64_t v, int r)
{
    return (v << r) | (v >> (64 - r));
}

/* The finalizer of MurmurHash3 (x64): every input bit flips each output
 * bit with probability about one half. */
static uint64_t avalanche(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

uint64_t index_hash_bytes(const void *p, size_t len)
{
    const uint64_t k1 = 0x87c37b91114253d5ULL, k2 = 0x4cf5ad432745937fULL;
    const unsigned char *s = p;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)len * k2);
    /* eight bytes at a time, each word scrambled before it is mixed in */
    for (; len >= 8; s += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h ^= rotl(w * k1, 31) * k2;
        h = rotl(h, 27) * 5 + 0x52dce729;
    }
    if (len) {
        uint64_t w = 0;
        memcpy(&w, s, len);
        h ^= rotl(w * k1, 31) * k2;
    }
    return avalanche(h);
}

uint64_t index_hash_u64(uint64_t v)
{
    /* SplitMix64's output function; each step can be undone */
    v = (v ^ (v >> 30)) * 0xbf58476d1ce4e5b9ULL;
    v = (v ^ (v >> 27)) * 0x94d049bb133111ebULL;
    return v ^ (v >> 31);
}

/* Puts an entry in the first free slot from its hash's; there must be one. */
static void place(struct index_slot *slots, size_t mask, uint64_t hash, void *entry)
{
    size_t i = (size_t)hash & mask;
    while (slots[i].entry)
        i = (i + 1) & mask;
    slots[i] = (struct index_slot){.hash = hash, .entry = entry};
}

/* Moves every entry into twice as many slots (INDEX_MIN_SLOTS at first).
 * Returns 0, or -ENOMEM with the index as it was. */
static int grow(struct index *ix)
{
    size_t old = ix->slots ? ix->mask + 1 : 0;
    size_t n = old ? old * 2 : INDEX_MIN_SLOTS;
    if (n < old || n > SIZE_MAX / sizeof(struct index_slot))
        return -ENOMEM;
    struct index_slot *slots = calloc(n, sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < old; i++)
        if (ix->slots[i].entry)
            place(slots, n - 1, ix->slots[i].hash, ix->slots[i].entry);
    free(ix->slots);
    ix->slots = slots;
    ix->mask = n - 1;
    return 0;
}

int index_add(struct index *ix, uint64_t hash, void *entry)
{
    if (!ix->slots || too_full(ix->n + 1, ix->mask + 1)) {
        int rc = grow(ix);
        if (rc < 0)
            return rc;
    }
    place(ix->slots, ix->mask, hash, entry);
    ix->n++;
    return 0;
}

void *index_find(const struct index *ix, uint64_t hash, index_match_fn match, const void *key)
{
    if (!ix->slots)
        return NULL;
    for (size_t i = (size_t)hash & ix->mask; ix->slots[i].entry; i = (i + 1) & ix->mask)
        if (ix->slots[i].hash == hash && match(ix->slots[i].entry, key))
            return ix->slots[i].entry;
    return NULL;
}

bool index_remove(struct index *ix, uint64_t hash, const void *entry)
{
    if (!ix->slots)
        return false;
    size_t mask = ix->mask;
    size_t hole = (size_t)hash & mask;
    while (ix->slots[hole].entry != entry) {
        if (!ix->slots[hole].entry)
            return false;
        hole = (hole + 1) & mask;
    }
    /* Close the hole: each entry after it, up to the next empty slot,
     * moves back into the hole unless its home slot lies after the hole
     * (cyclically), where moving it would put it before its home and
     * out of reach of its lookups. */
    for (size_t j = (hole + 1) & mask; ix->slots[j].entry; j = (j + 1) & mask) {
        size_t home = (size_t)ix->slots[j].hash & mask;
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            ix->slots[hole] = ix->slots[j];
            hole = j;
        }
    }
    ix->slots[hole] = (struct index_slot){0};
    ix->n--;
    return true;
}

void index_free(struct index *ix)
{
    free(ix->slots);
    *ix = (struct index){0};
}

/* index.h - an open-addressing hash index from 64-bit hashes to pointers, and the hashes to key it by.
 *
 * A contiguous array of slots, each holding an entry's full hash and its
 * pointer, probed linearly from the slot the hash picks. A lookup reads
 * slots, not the entries they point to, until it meets the entry's own
 * hash: a missing key costs a few slots on one or two cache lines,
 * whatever the entries. Growing rehashes from the stored hashes and
 * never touches an entry. Removal shifts the entries after it back, so
 * there are no tombstones and a lookup never probes past an empty slot.
 *
 * The index does not own its entries and does not know their keys: the
 * caller hashes the key (index_hash_bytes, index_hash_u64) and tells a
 * match from a collision with a callback. Entries are non-NULL pointers;
 * the same pointer may be added under several hashes, or twice under
 * one (the caller's mistake: lookups then find one of the two). No I/O.
 *
 * A zeroed struct index is a valid empty index that holds no memory.
 */
#ifndef GD_BROKER_INDEX_H
#define GD_BROKER_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct index_slot {
    uint64_t hash;
    void *entry; /* NULL: the slot is empty */
};

struct index {
    struct index_slot *slots;
    size_t mask; /* slots - 1; the number of slots is a power of two */
    size_t n;    /* entries */
};

/* Tells whether `entry` has the key `key` that the caller looks up. */
typedef bool (*index_match_fn)(const void *entry, const void *key);

/* A hash of `len` bytes; never fails. The same bytes give the same hash
 * in every process (there is no seed). */
uint64_t index_hash_bytes(const void *p, size_t len);

/* A hash of a 64-bit number, such as a sequential id: a bijection, so two
 * numbers never share a hash. */
uint64_t index_hash_u64(uint64_t v);

/* Adds `entry` (non-NULL) under `hash`, growing the index when it is more
 * than about five eighths full. Returns 0, or -ENOMEM when growing failed;
 * the index is then as it was. */
int index_add(struct index *ix, uint64_t hash, void *entry);

/* The entry under `hash` for which match(entry, key) is true, or NULL.
 * `match` is only called for entries with the very same hash. */
void *index_find(const struct index *ix, uint64_t hash, index_match_fn match, const void *key);

/* Removes `entry` from under `hash` (compared by pointer, no callback).
 * Returns true, or false when it was not there. Never fails; the index
 * does not shrink. */
bool index_remove(struct index *ix, uint64_t hash, const void *entry);

/* The number of entries. */
static inline size_t index_count(const struct index *ix)
{
    return ix->n;
}

/* Frees the slots, not the entries, and leaves `ix` empty; accepts an
 * empty index. */
void index_free(struct index *ix);

#endif

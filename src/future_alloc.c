/*
 * future_alloc.c -- where futures come from: slabs, per-thread magazines and a depot.
 *
 * Futures are carved from slabs and, once freed, go to per-thread magazines (no atomics),
 * exchanged whole with a global depot under a mutex once per MAG_SIZE frees or allocations
 * (see below).  So steady-state submission never calls malloc.  The depot's memory goes
 * back to the system when the last executor is freed (cf__futures_trim), and at unload.
 *
 * Lock order: the depot mutex is a leaf.  fork() takes it around the fork
 * (cf__futures_fork_*), so a child never finds it held by a thread it does not have.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <stdlib.h>
#include <sys/mman.h>

/* ---- recycling ---------------------------------------------------------------------- */

/*
 * Magazines (Bonwick's): a thread keeps two arrays of free futures, `loaded` and
 * `previous`, and exchanges whole arrays with a global depot only when both are full (on
 * free) or both empty (on allocation).  An array, not a list threaded through the futures:
 * with a million futures in flight they are not in cache, and popping a linked list would
 * be one dependent cache miss per allocation.  From an array the next futures' addresses
 * are known ahead, so they are prefetched while the current one is used.
 *
 * Slabs: new futures are carved, a magazine at a time, from 256 KiB mappings, back to back,
 * never malloc'd one by one.  A program with a million futures in flight streams through
 * them twice (submitting, then collecting), far out of cache; back to back, each future is
 * one line the hardware prefetcher sees coming, where malloc's spacing (its header plus
 * the alignment: one future per 128 bytes) doubles the traffic and breaks the stream.
 * Measured: 1,000,000 submits then waits went from 120-160 to 75-95 ns per task.  A slab
 * goes back to the system when cf__futures_trim finds every future carved from it back
 * in the depot.  Under AddressSanitizer futures are malloc'd one by one instead, so that
 * LeakSanitizer still names a future somebody never released.
 */
#define MAG_SIZE 254 /* two words of header: a magazine is 2 KiB */
#define PREFETCH_AHEAD 4

#if defined(__SANITIZE_ADDRESS__)
#define CF__FUTURE_SLABS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CF__FUTURE_SLABS 0
#endif
#endif
#ifndef CF__FUTURE_SLABS
#define CF__FUTURE_SLABS 1
#endif

typedef struct magazine {
    struct magazine *next;
    size_t count;
    cf_future *items[MAG_SIZE];
} magazine;

typedef struct future_cache {
    magazine *loaded, *previous;
    bool registered; /* the thread-exit hook is armed */
} future_cache;

static CF__THREAD_LOCAL future_cache cache;

#define SLAB_SIZE ((size_t)256 << 10)

/* A slab's first cache line; its futures follow. */
typedef struct slab {
    struct slab *next;
    size_t carved;  /* futures handed out so far, from the start */
    size_t present; /* cf__futures_trim's count of them found back in the depot */
} slab;

#define SLAB_CAPACITY ((SLAB_SIZE - CF__CACHELINE) / sizeof(cf_future))

static struct {
    pthread_mutex_t lock;
    magazine *full, *empty;
    cf_future *loose; /* freed when no magazine could be had (linked by `next`) */
    slab *slabs;      /* every slab; new futures are carved from the first */
} depot = {PTHREAD_MUTEX_INITIALIZER, NULL, NULL, NULL, NULL};

static pthread_once_t exit_hook_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_hook_key;

static void depot_put(magazine **list, magazine *m)
{
    pthread_mutex_lock(&depot.lock);
    m->next = *list;
    *list = m;
    pthread_mutex_unlock(&depot.lock);
}

static magazine *depot_take(magazine **list)
{
    pthread_mutex_lock(&depot.lock);
    magazine *m = *list;
    if (m)
        *list = m->next;
    pthread_mutex_unlock(&depot.lock);
    return m;
}

static void depot_put_any(magazine *m)
{
    if (m)
        depot_put(m->count ? &depot.full : &depot.empty, m);
}

void cf__futures_fork_prepare(void)
{
    pthread_mutex_lock(&depot.lock);
}

void cf__futures_fork_after(void)
{
    pthread_mutex_unlock(&depot.lock);
}

/* Hands the thread's magazines to the depot: at thread exit, so nothing is stranded, and
 * before a trim, so the trimming thread's own futures count as returned. */
static void cache_flush(void *unused)
{
    (void)unused;
    depot_put_any(cache.loaded);
    depot_put_any(cache.previous);
    cache.loaded = cache.previous = NULL;
}

static void create_exit_hook(void)
{
    pthread_key_create(&exit_hook_key, cache_flush);
}

static void arm_exit_hook(void)
{
    pthread_once(&exit_hook_once, create_exit_hook);
    pthread_setspecific(exit_hook_key, &cache); /* any non-NULL value arms the hook */
    cache.registered = true;
}

#if CF__FUTURE_SLABS

static slab *slab_of(cf_future *f)
{
    return (slab *)((uintptr_t)f & ~(uintptr_t)(SLAB_SIZE - 1));
}

/* A new slab, aligned to its size so that slab_of() finds it from any of its futures. */
static slab *slab_map(void)
{
    char *p = mmap(NULL, 2 * SLAB_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    char *s = (char *)(((uintptr_t)p + SLAB_SIZE - 1) & ~(uintptr_t)(SLAB_SIZE - 1));
    if (s > p)
        munmap(p, (size_t)(s - p));
    munmap(s + SLAB_SIZE, (size_t)(p + SLAB_SIZE - s));
    return (slab *)s;
}

/* Fills m with new futures from the first slab, mapping one when it is used up.  Called
 * with the depot lock held (mapping is rare: once per 4095 futures ever in flight). */
static void carve(magazine *m)
{
    slab *sl = depot.slabs;
    if (!sl || sl->carved == SLAB_CAPACITY) {
        if (!(sl = slab_map()))
            return;
        sl->carved = 0;
        sl->next = depot.slabs;
        depot.slabs = sl;
    }
    cf_future *first = (cf_future *)((char *)sl + CF__CACHELINE);
    /* Highest address first in the array, so that allocation, popping from the end,
     * walks the slab upwards. */
    while (m->count < MAG_SIZE && sl->carved < SLAB_CAPACITY)
        m->items[m->count++] = first + (SLAB_CAPACITY - 1 - sl->carved++);
}

#else /* one by one, for LeakSanitizer */

static void carve(magazine *m)
{
    cf_future *f = aligned_alloc(CF__CACHELINE, sizeof *f);
    if (f)
        m->items[m->count++] = f;
}

#endif

static magazine *empty_magazine(void)
{
    magazine *m = depot_take(&depot.empty);
    if (!m && (m = malloc(sizeof *m)))
        m->count = 0;
    return m;
}

/* A magazine of futures nobody holds: loose ones first, else new ones.  NULL when out of
 * memory. */
static magazine *fresh_magazine(void)
{
    magazine *m = empty_magazine();
    if (!m)
        return NULL;
    pthread_mutex_lock(&depot.lock);
    for (; depot.loose && m->count < MAG_SIZE; depot.loose = depot.loose->u.next)
        m->items[m->count++] = depot.loose;
    if (m->count == 0)
        carve(m);
    pthread_mutex_unlock(&depot.lock);
    if (m->count == 0) {
        depot_put(&depot.empty, m);
        return NULL;
    }
    return m;
}

/* Both of the thread's magazines are empty (allocating) or full (freeing): `previous` goes
 * to the depot's `give` list and m becomes `loaded`. */
static void load_magazine(magazine *m, magazine **give)
{
    if (!cache.registered)
        arm_exit_hook();
    if (cache.previous)
        depot_put(give, cache.previous);
    cache.previous = cache.loaded;
    cache.loaded = m;
}

static void swap_magazines(void)
{
    magazine *m = cache.loaded;
    cache.loaded = cache.previous;
    cache.previous = m;
}

cf_future *cf__future_cache_get(void)
{
    magazine *m = cache.loaded;
    if (CF__UNLIKELY(!m || m->count == 0)) {
        if (cache.previous && cache.previous->count) {
            swap_magazines();
        } else {
            magazine *full = depot_take(&depot.full);
            if (!full && !(full = fresh_magazine()))
                return NULL;
            load_magazine(full, &depot.empty);
        }
        m = cache.loaded;
    }
    cf_future *f = m->items[--m->count];
    if (m->count >= PREFETCH_AHEAD)
        __builtin_prefetch(m->items[m->count - PREFETCH_AHEAD], 1, 3);
    return f;
}

void cf__future_cache_put(cf_future *f)
{
    magazine *m = cache.loaded;
    if (CF__UNLIKELY(!m || m->count == MAG_SIZE)) {
        if (cache.previous && cache.previous->count == 0) {
            swap_magazines();
        } else {
            magazine *empty = empty_magazine();
            if (!empty) {
                pthread_mutex_lock(&depot.lock); /* no memory for a magazine: keep f loose */
                f->u.next = depot.loose;
                depot.loose = f;
                pthread_mutex_unlock(&depot.lock);
                return;
            }
            load_magazine(empty, &depot.full);
        }
        m = cache.loaded;
    }
    m->items[m->count++] = f;
}

#if CF__FUTURE_SLABS

static void count_present(slab *slabs, magazine *full, cf_future *loose)
{
    for (slab *sl = slabs; sl; sl = sl->next)
        sl->present = 0;
    for (magazine *m = full; m; m = m->next)
        for (size_t i = 0; i < m->count; i++)
            slab_of(m->items[i])->present++;
    for (cf_future *f = loose; f; f = f->u.next)
        slab_of(f)->present++;
}

static bool slab_unused(const slab *sl)
{
    return sl->present == sl->carved;
}

/* True if f goes with the trim: its slab is unused, and unmap_unused will unmap it. */
static bool retire(cf_future *f)
{
    return slab_unused(slab_of(f));
}

/* Unmaps the unused slabs; returns the others, in order. */
static slab *unmap_unused(slab *slabs)
{
    slab *kept = NULL, **tail = &kept;
    for (slab *sl = slabs, *next; sl; sl = next) {
        next = sl->next;
        if (slab_unused(sl)) {
            munmap(sl, SLAB_SIZE);
        } else {
            *tail = sl;
            tail = &sl->next;
        }
    }
    *tail = NULL;
    return kept;
}

#else

static void count_present(slab *slabs, magazine *full, cf_future *loose)
{
    (void)slabs, (void)full, (void)loose;
}

static bool retire(cf_future *f)
{
    free(f);
    return true;
}

static slab *unmap_unused(slab *slabs)
{
    return slabs; /* always NULL: there are none */
}

#endif

/*
 * Gives the memory of recycled futures back: every future in the depot whose slab has all
 * its futures there (or, under AddressSanitizer, every one).  The calling thread's
 * magazines go to the depot first; other live threads keep theirs, and a slab with a future
 * in them, or one still held, stays mapped until a later trim finds it whole.
 */
void cf__futures_trim(void)
{
    cache_flush(NULL);
    pthread_mutex_lock(&depot.lock);
    magazine *full = depot.full, *empty = depot.empty;
    cf_future *loose = depot.loose;
    slab *slabs = depot.slabs;
    depot.full = depot.empty = NULL;
    depot.loose = NULL;
    depot.slabs = NULL;
    pthread_mutex_unlock(&depot.lock);

    count_present(slabs, full, loose);
    magazine *kept_full = NULL;
    for (magazine *m = full, *next; m; m = next) {
        next = m->next;
        size_t n = 0;
        for (size_t i = 0; i < m->count; i++)
            if (!retire(m->items[i]))
                m->items[n++] = m->items[i];
        m->count = n;
        if (n) {
            m->next = kept_full;
            kept_full = m;
        } else {
            free(m);
        }
    }
    cf_future *kept_loose = NULL;
    for (cf_future *f = loose, *next; f; f = next) {
        next = f->u.next;
        if (!retire(f)) {
            f->u.next = kept_loose;
            kept_loose = f;
        }
    }
    slabs = unmap_unused(slabs);
    for (magazine *m = empty, *next; m; m = next) {
        next = m->next;
        free(m);
    }

    /* Back, behind whatever other threads added meanwhile (the first slab stays the one
     * being carved). */
    pthread_mutex_lock(&depot.lock);
    while (kept_full) {
        magazine *m = kept_full;
        kept_full = m->next;
        m->next = depot.full;
        depot.full = m;
    }
    while (kept_loose) {
        cf_future *f = kept_loose;
        kept_loose = f->u.next;
        f->u.next = depot.loose;
        depot.loose = f;
    }
    slab **tail = &depot.slabs;
    while (*tail)
        tail = &(*tail)->next;
    *tail = slabs;
    pthread_mutex_unlock(&depot.lock);
}

__attribute__((destructor)) static void trim_at_unload(void)
{
    cf__futures_trim();
}


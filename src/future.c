/*
 * future.c -- the future, which is also the task record, from allocation to recycling.
 *
 * State: one 32-bit atomic word holds the public state (PENDING, RUNNING, CANCELLED,
 * FINISHED) and three flags: LOCK (a tiny spin lock over the callback list), CBS (the list
 * is not empty) and WAITERS (some thread sleeps on the word with futex).  Leaving PENDING or
 * RUNNING is a CAS, so exactly one party starts or cancels a task and exactly one completes
 * it; the first outcome is the only outcome.  The completer writes the outcome fields before
 * its CAS (release) and readers load the word with acquire, so a done future's fields are
 * immutable and readable without locks.
 *
 * Callbacks: appended under LOCK while the future is not done.  The completer's CAS never
 * succeeds while LOCK is held, so after it, nobody appends; the completer then detaches the
 * whole list under LOCK and runs it outside, in order.  Removing a callback (an abandoned
 * wait) succeeds only while it is still listed; otherwise the completer owns it.
 *
 * Waking: a waiter sets WAITERS with a CAS against the value it saw and sleeps on that
 * value, so a completion between its check and its sleep makes the sleep return at once.
 * The completer calls futex_wake only if WAITERS was set: completing an unwatched future
 * costs one CAS and no system call.
 *
 * Recycling: futures are carved from slabs and, once freed, go to per-thread magazines (no
 * atomics), exchanged whole with a global depot under a mutex once per MAG_SIZE frees or
 * allocations (see below).  So steady-state submission never calls malloc.  The depot's
 * memory goes back to the system when the last executor is freed, and at unload.
 *
 * Lock order: a future's LOCK is a leaf (no other lock is taken while holding it; callbacks
 * run after it is released).  The depot mutex is a leaf too; fork() takes it around the
 * fork (cf__futures_fork_*), so a child never finds it held by a thread it does not have.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <stddef.h>

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>

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

static cf_future *cache_get(void)
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

static void cache_put(cf_future *f)
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

cf_future *cf__future_alloc(uint32_t refs)
{
    cf_future *f = cache_get();
    if (CF__UNLIKELY(!f))
        return NULL;
    atomic_init(&f->state, CF_PENDING);
    atomic_init(&f->refs, refs);
    f->kind = CF__TASK_POINTER;
    f->bounded = false;
    f->fork_gen = cf__fork_gen;
    f->outcome = 0;
    f->arg = NULL;
    f->value = NULL;
    f->cb_head = NULL;
    f->u.data = NULL;
    f->extra = NULL;
    return f;
}

cf__future_extra *cf__future_extra_get(cf_future *f)
{
    if (!f->extra)
        f->extra = calloc(1, sizeof *f->extra);
    return f->extra;
}

void cf__future_set_error(cf_future *f, int outcome, int code, char *message)
{
    f->outcome = outcome;
    cf__future_extra *x = cf__future_extra_get(f);
    if (x) {
        x->code = code;
        x->message = message;
    } else {
        free(message); /* out of memory: the outcome still tells what happened */
    }
}

cf_future *cf_future_retain(cf_future *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

void cf_future_release(cf_future *f)
{
    if (!f)
        return;
    /* The last reference needs no read-modify-write: holding it, nobody else can change the
     * count (the acquire pairs with the release of whoever dropped the previous one). */
    if (atomic_load_explicit(&f->refs, memory_order_acquire) != 1 &&
        atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (f->kind == CF__TASK_BYTES) {
        if (f->extra && f->extra->value_mapped) {
            munmap(f->value, f->extra->value_len);
            if (f->extra->value_home)
                f->extra->value_home->take_back(f->extra->value_home, f->extra->value_fd);
        } else
            free(f->value);
        free(f->arg); /* the input, if the task never completed (never submitted) */
    }
    if (f->extra) {
        free(f->extra->message);
        free(f->extra);
    }
    cache_put(f);
}

/* ---- state transitions -------------------------------------------------------------- */

static uint32_t lock_list(cf_future *f)
{
    uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
    for (;;) {
        if (s & CF__ST_LOCK) {
            cf__cpu_relax();
            s = atomic_load_explicit(&f->state, memory_order_relaxed);
        } else if (atomic_compare_exchange_weak_explicit(&f->state, &s, s | CF__ST_LOCK,
                                                         memory_order_acquire,
                                                         memory_order_relaxed)) {
            return s | CF__ST_LOCK;
        }
    }
}

static void unlock_list(cf_future *f, bool has_callbacks)
{
    if (has_callbacks)
        atomic_fetch_or_explicit(&f->state, CF__ST_CBS, memory_order_relaxed);
    else
        atomic_fetch_and_explicit(&f->state, ~CF__ST_CBS, memory_order_relaxed);
    atomic_fetch_and_explicit(&f->state, ~CF__ST_LOCK, memory_order_release);
}

bool cf__future_start(cf_future *f)
{
    uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
    for (;;) {
        if ((s & CF__ST_MASK) != CF_PENDING)
            return false;
        if (s & CF__ST_LOCK) {
            cf__cpu_relax();
            s = atomic_load_explicit(&f->state, memory_order_relaxed);
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(&f->state, &s, (s & ~CF__ST_MASK) | CF_RUNNING,
                                                  memory_order_acquire, memory_order_relaxed))
            return true;
    }
}

/*
 * Runs the list in the completing thread; callbacks that users add meanwhile (CF__ST_CALLING
 * is set) are appended and run here too, after those already there, until a look under the
 * lock finds the list empty and clears the flag.  The completing party holds a reference,
 * so f outlives the callbacks even when one of them drops the caller's.
 */
static void run_callbacks(cf_future *f)
{
    for (;;) {
        lock_list(f);
        cf__callback *cb = f->cb_head;
        f->cb_head = NULL;
        if (!cb)
            atomic_fetch_and_explicit(&f->state, ~CF__ST_CALLING, memory_order_relaxed);
        unlock_list(f, false);
        if (!cb)
            return;
        while (cb) {
            cf__callback *next = cb->next; /* cb may be gone once its fn returns */
            cb->fn(cb, f);
            cb = next;
        }
    }
}

/*
 * A recorded task's event must be in the executor's log before anybody can see the future
 * done: the list lock (which every transition waits for) is taken while the future is
 * still in `from`, the event appended, and `final` published with the lock's release in
 * one CAS.  Returns the state before that CAS, or 0 if the future was not in `from`.
 */
static uint32_t complete_recorded(cf_future *f, cf_state from, cf_state final)
{
    uint32_t s = lock_list(f);
    if ((s & CF__ST_MASK) != (uint32_t)from) {
        unlock_list(f, f->cb_head != NULL);
        return 0;
    }
    cf__events_record(f, final == CF_CANCELLED ? CF_ECANCELLED : f->outcome);
    for (;;) { /* waiters may set their bit meanwhile */
        uint32_t next = (s & ~(CF__ST_MASK | CF__ST_WAITERS | CF__ST_LOCK)) | (uint32_t)final;
        if (f->cb_head)
            next |= CF__ST_CALLING;
        if (atomic_compare_exchange_weak_explicit(&f->state, &s, next, memory_order_acq_rel,
                                                  memory_order_relaxed))
            return s | 1u << 31;
    }
}

bool cf__future_complete(cf_future *f, cf_state from, cf_state final)
{
    uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
    if (CF__UNLIKELY(f->extra && f->extra->recorder)) {
        if (!(s = complete_recorded(f, from, final)))
            return false;
    } else {
        for (;;) {
            if ((s & CF__ST_MASK) != (uint32_t)from)
                return false;
            if (s & CF__ST_LOCK) {
                cf__cpu_relax();
                s = atomic_load_explicit(&f->state, memory_order_relaxed);
                continue;
            }
            uint32_t next = (s & ~(CF__ST_MASK | CF__ST_WAITERS)) | (uint32_t)final;
            if (s & CF__ST_CBS) /* set with the done state: no add can slip in before */
                next |= CF__ST_CALLING;
            if (atomic_compare_exchange_weak_explicit(&f->state, &s, next,
                                                      memory_order_acq_rel,
                                                      memory_order_relaxed))
                break;
        }
    }
    if (f->kind == CF__TASK_BYTES) {
        free(f->arg); /* nobody reads the input once the task is over */
        f->arg = NULL;
    }
    if (s & CF__ST_WAITERS)
        cf__futex_wake(&f->state, INT_MAX);
    if (s & CF__ST_CBS)
        run_callbacks(f);
    return true;
}

bool cf__future_fail_pending(cf_future *f, int outcome, int code, const char *message)
{
    /* Own the future first (PENDING -> RUNNING), so no canceller can race the writes. */
    if (!cf__future_start(f))
        return false;
    cf__future_set_error(f, outcome, code, message ? strdup(message) : NULL);
    return cf__future_complete(f, CF_RUNNING, CF_FINISHED);
}

/* Appends cb unless the future is done; a user's callback (`ordered`) is also appended while
 * the completing thread still runs the list, so that it runs after the ones added before. */
static bool add_callback(cf_future *f, cf__callback *cb, bool ordered)
{
    uint32_t s = lock_list(f);
    if (cf__state_done(s) && !(ordered && (s & CF__ST_CALLING))) {
        unlock_list(f, f->cb_head != NULL);
        return false;
    }
    cb->next = NULL;
    cf__callback **link = &f->cb_head; /* lists are short: a tail pointer is not worth a
                                           second cache line per future */
    while (*link)
        link = &(*link)->next;
    *link = cb;
    unlock_list(f, true);
    return true;
}

bool cf__future_add_callback(cf_future *f, cf__callback *cb)
{
    return add_callback(f, cb, false);
}

bool cf__future_remove_callback(cf_future *f, cf__callback *cb)
{
    lock_list(f);
    cf__callback *prev = NULL, *c = f->cb_head;
    while (c && c != cb) {
        prev = c;
        c = c->next;
    }
    if (c) {
        if (prev)
            prev->next = c->next;
        else
            f->cb_head = c->next;
    }
    unlock_list(f, f->cb_head != NULL);
    return c != NULL;
}

/* ---- waiting ------------------------------------------------------------------------ */

/* A worker's wait for one future: a condition its completion signals. */
typedef struct future_cond {
    cf__cond cond;
    cf__callback node;
    cf_future *f;
    _Atomic int fired;
} future_cond;

static bool future_cond_met(cf__cond *c)
{
    future_cond *fc = (future_cond *)c;
    return cf__state_done(atomic_load(&fc->f->state));
}

static void future_cond_fired(cf__callback *self, cf_future *f)
{
    (void)f;
    future_cond *fc = (future_cond *)((char *)self - offsetof(future_cond, node));
    cf__cond_signal(&fc->cond);
    atomic_store_explicit(&fc->fired, 1, memory_order_release);
}

/* In a worker that can help: run other tasks until f is done (see current.c). */
static int help_until_done(cf_future *f, int64_t deadline)
{
    future_cond fc = {.node.fn = future_cond_fired, .f = f};
    atomic_init(&fc.fired, 0);
    cf__cond_init(&fc.cond, future_cond_met);
    if (!cf__future_add_callback(f, &fc.node))
        return 0;
    int rc = cf__cond_wait(&fc.cond, deadline);
    if (!cf__future_remove_callback(f, &fc.node))
        while (!atomic_load_explicit(&fc.fired, memory_order_acquire))
            cf__cpu_relax();
    return rc;
}

int cf__future_wait_until(cf_future *f, int64_t deadline)
{
    uint32_t s = atomic_load_explicit(&f->state, memory_order_acquire);
    if (cf__state_done(s))
        return 0;
    if (CF__UNLIKELY(f->fork_gen != cf__fork_gen))
        return CF_EFORKED; /* its task runs in the parent, if anywhere: never here */
    if (CF__UNLIKELY(cf__current.ex && cf__current.ex->backend->help_wait))
        return help_until_done(f, deadline);
    cf__spin spin = {0}; /* at most the thread's spin budget (park.c), never past the deadline */
    int64_t left = deadline - cf__now_ns();
    while (cf__spin_step(&spin, left)) {
        if (cf__state_done(atomic_load_explicit(&f->state, memory_order_acquire))) {
            cf__spin_end(true);
            return 0;
        }
    }
    cf__spin_end(false);
    for (;;) {
        s = atomic_load_explicit(&f->state, memory_order_acquire);
        if (cf__state_done(s))
            return 0;
        if (!(s & CF__ST_WAITERS)) {
            if (!atomic_compare_exchange_weak_explicit(&f->state, &s, s | CF__ST_WAITERS,
                                                       memory_order_relaxed,
                                                       memory_order_relaxed))
                continue;
            s |= CF__ST_WAITERS;
        }
        if (cf__futex_wait(&f->state, s, deadline) == CF_ETIMEDOUT)
            return cf__state_done(atomic_load_explicit(&f->state, memory_order_acquire))
                       ? 0
                       : CF_ETIMEDOUT;
    }
}

static int wait_timeout(cf_future *f, double timeout)
{
    if (CF__BAD_TIMEOUT(timeout))
        return CF_EINVAL;
    if (cf__state_done(atomic_load_explicit(&f->state, memory_order_acquire)))
        return 0;
    return cf__future_wait_until(f, cf__deadline(timeout));
}

/* ---- public API --------------------------------------------------------------------- */

cf_state cf_future_state(const cf_future *f)
{
    return (cf_state)(atomic_load_explicit(&((cf_future *)f)->state, memory_order_acquire) &
                      CF__ST_MASK);
}

int cf_future_done(const cf_future *f)
{
    return cf__state_done(atomic_load_explicit(&((cf_future *)f)->state, memory_order_acquire));
}

int cf_future_cancel(cf_future *f)
{
    if (!f)
        return CF_EINVAL;
    if (cf__future_complete(f, CF_PENDING, CF_CANCELLED))
        return 0;
    cf_state st = cf_future_state(f);
    if (st == CF_RUNNING && f->extra && f->extra->owner && f->fork_gen != cf__fork_gen)
        return CF_EFORKED; /* its worker is the parent's */
    if (st == CF_RUNNING && f->extra && f->extra->owner)
        return f->extra->owner->backend->cancel_running(f->extra->owner, f);
    return st == CF_CANCELLED ? 0 : CF_EBUSY;
}

void cf_future_set_data(cf_future *f, void *data)
{
    f->u.data = data;
}

void *cf_future_data(const cf_future *f)
{
    return f->u.data;
}

long cf_future_pid(const cf_future *f)
{
    return f && f->extra ? __atomic_load_n(&f->extra->pid, __ATOMIC_RELAXED) : 0;
}

int cf_future_wait(cf_future *f, double timeout)
{
    return f ? wait_timeout(f, timeout) : CF_EINVAL;
}

int cf_future_result(cf_future *f, double timeout, void **value)
{
    if (!f)
        return CF_EINVAL;
    int rc = wait_timeout(f, timeout);
    if (rc)
        return rc;
    rc = cf__future_outcome(f);
    if (rc == 0 && value)
        *value = f->value;
    return rc;
}

int cf_future_bytes(cf_future *f, double timeout, const void **data, size_t *len)
{
    if (!f)
        return CF_EINVAL;
    int rc = wait_timeout(f, timeout);
    if (rc)
        return rc;
    rc = cf__future_outcome(f);
    if (rc == 0) {
        if (data)
            *data = f->value;
        if (len)
            *len = f->extra ? f->extra->value_len : 0;
    }
    return rc;
}

int cf_future_error(const cf_future *f, int *code, const char **message)
{
    if (!f)
        return CF_EINVAL;
    if (!cf_future_done(f))
        return CF_ETIMEDOUT;
    int rc = cf__future_outcome(f);
    bool failed = rc != 0 && rc != CF_ECANCELLED;
    if (code)
        *code = failed && f->extra ? f->extra->code : 0;
    if (message)
        *message = failed && f->extra ? f->extra->message : NULL;
    return rc;
}

typedef struct user_callback {
    cf__callback base;
    cf_done_fn fn;
    void *data;
} user_callback;

static void run_user_callback(cf__callback *self, cf_future *f)
{
    user_callback *ucb = (user_callback *)self;
    ucb->fn(f, ucb->data);
    free(ucb);
}

int cf_future_add_callback(cf_future *f, cf_done_fn fn, void *data)
{
    if (!f || !fn)
        return CF_EINVAL;
    uint32_t s = atomic_load_explicit(&f->state, memory_order_acquire);
    if (!cf__state_done(s) || (s & CF__ST_CALLING)) {
        user_callback *ucb = malloc(sizeof *ucb);
        if (!ucb)
            return CF_ENOMEM;
        ucb->base.fn = run_user_callback;
        ucb->fn = fn;
        ucb->data = data;
        if (add_callback(f, &ucb->base, true))
            return 0;
        free(ucb);
    }
    fn(f, data);
    return 0;
}

/* ---- task context ------------------------------------------------------------------- */

int cf_fail(cf_ctx *ctx, int code, const char *fmt, ...)
{
    if (code == 0)
        code = -1;
    if (!ctx)
        return code;
    free(ctx->message);
    ctx->message = NULL;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&ctx->message, fmt, ap) < 0)
            ctx->message = NULL;
        va_end(ap);
    }
    return code;
}

void *cf_ctx_output(cf_ctx *ctx, size_t len)
{
    if (!ctx->out_is_shared)
        free(ctx->out);
    ctx->out = ctx->out_shared ? ctx->out_shared(len) : NULL;
    ctx->out_is_shared = ctx->out != NULL;
    if (!ctx->out)
        ctx->out = malloc(len ? len : 1);
    ctx->out_len = ctx->out ? len : 0;
    return ctx->out;
}

int cf_ctx_set_output(cf_ctx *ctx, const void *data, size_t len)
{
    void *buf = cf_ctx_output(ctx, len);
    if (!buf)
        return CF_ENOMEM;
    if (len)
        memcpy(buf, data, len);
    return 0;
}

cf_executor *cf_ctx_executor(const cf_ctx *ctx)
{
    return ctx->ex;
}

int cf_ctx_worker(const cf_ctx *ctx)
{
    return ctx->worker;
}

void cf__ctx_reset(cf_ctx *ctx)
{
    free(ctx->message);
    if (!ctx->out_is_shared)
        free(ctx->out);
    ctx->out_is_shared = false;
    ctx->message = NULL;
    ctx->out = NULL;
    ctx->out_len = 0;
}

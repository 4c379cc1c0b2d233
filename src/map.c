/*
 * map.c -- fn over n inputs, results in input order, through a handful of runner tasks.
 *
 * A map is not n submissions.  It submits at most `workers` runner tasks; each runner
 * claims a range of positions with one CAS on `next_claim` and runs them back to back,
 * writing each outcome into a slot.  An explicit chunk is exactly the size of every range
 * (the last one may be shorter).  CF_CHUNK_AUTO paces each runner by time: its first range
 * is one position, and each next one is sized from how long the runner took per position
 * since its previous claim, so that a range lasts about PACE_NS, growing at most twofold
 * per claim and never past remaining / (4 * runners) (no runner is left with a long tail).
 * Slow positions therefore go out one at a time, as separate submissions would (guided
 * scheduling alone handed the first 12 of 100 positions to one runner: with those 0.1 s
 * each and the rest 1 ms, 1.20 s against 0.65 s for one submission per position), and
 * tiny ones in ranges of thousands (one CAS and one clock read per range).
 *
 * Results: slot i % window belongs to position i.  A slot is two words, the mark and the
 * value, so a million positions take 16 MB and the consumer reads one line per four of
 * them; the rare failure moves its outcome, code and message into a record the value
 * points to, and a bytes map keeps its lengths in an array of their own.  A runner
 * publishes a slot by storing its mark, published(i, failed); the consumer (cf_map_next)
 * reads positions in order, spins briefly (yielding to runners that may share its CPU),
 * and sleeps on the `progress` futex only after announcing the position it waits for in
 * `consumer_waits_for`; a runner wakes it only when it publishes that very position, so a
 * consumer that keeps up costs runners nothing and a sleeping one costs one wake-up.
 * "Publish, then read consumer_waits_for" against "announce, then re-check the slot" is a
 * store-load pair on each side: the runner's half is cf__fence_light (free) and the
 * consumer's, taken only on its way to sleep, cf__fence_heavy, so publishing a position
 * costs a plain store and no locked instruction.  A map with a deadline publishes with an
 * exchange instead, which also tells the runner whether the consumer gave the position up.
 *
 * Backpressure: with max_in_flight, window = max_in_flight slots and runners never claim a
 * position >= consumed + window; a runner that cannot claim returns.  Its done-callback
 * decrements `active` and, if there is room again, wakes the consumer, which starts
 * runners again (restart_runners).  Memory is O(window + workers) whatever n is.
 * Ordering: runner side "active--, then read consumed"; consumer side "consumed++, then
 * read active"; both sequentially consistent, so one of them sees the other's update and
 * a map never stalls with room and no runner.
 *
 * A consumer that is itself a worker of the same pool claims and runs positions itself
 * while it waits, so a map inside a task cannot deadlock the pool.
 *
 * Runner futures are kept (retained) so cf_map_free can wait for them, and each runner's
 * `fired` mark tells when its callback has finished touching the map.  Locks: none.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PACE_NS 100000 /* what a CF_CHUNK_AUTO range should last: 100 us */

typedef struct slot {
    _Atomic size_t seq; /* published(i, failed) once position i's outcome is in */
    void *value;        /* the result; of a failure, its failure record */
} slot;

/* A failed position's outcome, owned by its slot until the consumer takes it. */
typedef struct failure {
    int outcome;
    int code;
    char *message;
} failure;

/* Stands in for a failure record that could not be allocated (never freed or written). */
static failure no_memory = {CF_ENOMEM, 0, NULL};

typedef struct runner_ref {
    cf__callback done; /* on the runner's future: active--, wake the consumer */
    cf_future *future;
    struct cf_map *map;
    _Atomic int fired; /* the callback's last touch of the map and of this struct */
} runner_ref;

struct cf_map {
    _Atomic size_t next_claim CF__ALIGNED; /* first position nobody has claimed */
    _Atomic size_t consumed CF__ALIGNED;   /* positions handed to the consumer */
    _Atomic uint32_t progress CF__ALIGNED; /* futex word of the consumer */
    _Atomic size_t consumer_waits_for;     /* position + 1 the consumer sleeps on, or 0 */
    _Atomic int active;                    /* runners whose futures are not done */
    _Atomic int stop;                      /* freed or past the deadline: claim nothing */

    cf_executor *ex;
    bool bytes;
    cf_fn fn;
    const cf_function *bytes_fn;
    void *const *inputs;
    const cf_bytes *bytes_inputs;
    size_t n;
    size_t window;      /* positions that may be claimed beyond those consumed */
    size_t slot_mask;   /* bounded: slots are a power of two >= window; else unused */
    bool bounded;
    bool may_abandon;   /* has a deadline: the consumer may give positions up */
    size_t chunk;       /* items per range; 0: CF_CHUNK_AUTO, paced by time */
    int runners_max;
    int64_t deadline;
    void (*discard)(void *value);
    slot *slots;
    size_t *lens;       /* bytes maps: each slot's value length; else NULL */
    size_t nslots;

    /* Consumer-only state. */
    runner_ref **runners;
    size_t runners_len, runners_cap;
    int start_error;    /* why runners could not be started again (0: they could) */
    bool timed_out;
    size_t pos;         /* next position to return */
    int last_code;
    char *last_message;
    void *last_value;   /* bytes maps: owned until the next call */
    size_t last_len;
};

void cf_map_opts_init(cf_map_opts *opts)
{
    opts->chunk = CF_CHUNK_AUTO;
    opts->max_in_flight = 0;
    opts->timeout = CF_FOREVER;
    opts->discard = NULL;
}

/* ---- slots ------------------------------------------------------------------------ */

/*
 * A big map's slot array (16 MB for a million positions) is mapped on its own with huge
 * pages requested: its pages are fresh for every map, and faulting them in 4 KiB at a time
 * cost the runners a fifth of their time.  A small one comes from malloc.
 */
#define BIG_ARRAY (2u << 20)

static void *alloc_array(size_t bytes)
{
    if (bytes < BIG_ARRAY)
        return calloc(1, bytes);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, bytes, MADV_HUGEPAGE); /* a hint: without it, 4 KiB pages */
    return p;
}

static void free_array(void *p, size_t bytes)
{
    if (bytes < BIG_ARRAY)
        free(p);
    else if (p)
        munmap(p, bytes);
}

static void free_slots(cf_map *m)
{
    free_array(m->slots, m->nslots * sizeof *m->slots);
    free_array(m->lens, m->nslots * sizeof *m->lens);
}

static int alloc_slots(cf_map *m, bool bytes)
{
    m->slots = alloc_array(m->nslots * sizeof *m->slots);
    if (bytes)
        m->lens = alloc_array(m->nslots * sizeof *m->lens);
    if (!m->slots || (bytes && !m->lens)) {
        free_slots(m);
        return CF_ENOMEM;
    }
    return 0;
}

/* ---- runners ------------------------------------------------------------------------ */

/* Position i's slot index: its own when unbounded, else a ring (a mask, not a division). */
static size_t slot_index(const cf_map *m, size_t i)
{
    return m->bounded ? (i & m->slot_mask) : i;
}

static slot *slot_of(cf_map *m, size_t i)
{
    return &m->slots[slot_index(m, i)];
}

/* The mark of position i once published: never 0 (a fresh slot), never another position's
 * mark, and the failure flag in its low bit. */
static size_t published(size_t i, bool failed)
{
    return 2 * (i + 1) + failed;
}

static size_t claim_limit(cf_map *m)
{
    if (!m->bounded)
        return m->n;
    size_t limit = atomic_load(&m->consumed) + m->window;
    return limit < m->n ? limit : m->n;
}

/* The size of pace's next range under CF_CHUNK_AUTO (see the design note). */
static size_t paced_size(cf_map *m, cf__map_pace *pace, size_t c)
{
    int64_t now = cf__now_ns();
    size_t size = 1;
    if (pace->last) {
        int64_t per_item = (now - pace->claimed_ns) / (int64_t)pace->last;
        size = per_item > 0 ? (size_t)(PACE_NS / per_item) : 2 * pace->last;
        if (size > 2 * pace->last)
            size = 2 * pace->last;
        size_t guided = (m->n - c) / (4 * (size_t)m->runners_max);
        if (size > guided)
            size = guided;
        if (size < 1)
            size = 1;
    }
    pace->claimed_ns = now;
    pace->last = size;
    return size;
}

bool cf__map_claim(cf_map *m, cf__map_pace *pace, size_t *lo, size_t *hi)
{
    size_t c = atomic_load_explicit(&m->next_claim, memory_order_relaxed);
    size_t want = m->chunk ? m->chunk : paced_size(m, pace, c);
    for (;;) {
        if (atomic_load_explicit(&m->stop, memory_order_relaxed) ||
            (atomic_load_explicit(&m->ex->flags, memory_order_relaxed) & CF__EX_CANCEL_PENDING))
            return false;
        size_t limit = claim_limit(m);
        if (c >= limit)
            return false;
        size_t size = want < limit - c ? want : limit - c;
        if (atomic_compare_exchange_weak(&m->next_claim, &c, c + size)) {
            *lo = c;
            *hi = c + size;
            return true;
        }
    }
}

static void wake_consumer(cf_map *m)
{
    atomic_fetch_add(&m->progress, 1);
    cf__futex_wake(&m->progress, 1);
}

/* The mark of a position the consumer gave up on (deadline): its top bit is set, which no
 * published mark's is. */
static size_t abandoned(size_t i)
{
    return ~(i + 1);
}

static void free_failure(failure *f)
{
    if (f != &no_memory) {
        free(f->message);
        free(f);
    }
}

/* Frees what a slot published with `mark` holds that nobody will receive. */
static void dispose_slot(cf_map *m, slot *s, size_t mark)
{
    if (mark & 1)
        free_failure(s->value);
    else if (m->bytes)
        free(s->value);
    else if (m->discard)
        m->discard(s->value);
}

/* Makes position i's slot, its value already written, visible to the consumer. */
static void publish_slot(cf_map *m, size_t i, slot *s, bool failed)
{
    size_t mark = published(i, failed);
    if (m->may_abandon) {
        /* An exchange, to learn whether the consumer gave this position up meanwhile: then
         * the result is ours to dispose of.  Sequentially consistent: a full fence too. */
        if (atomic_exchange(&s->seq, mark) == abandoned(i)) {
            dispose_slot(m, s, mark);
            return;
        }
    } else {
        atomic_store_explicit(&s->seq, mark, memory_order_release);
        cf__fence_light();
    }
    if (atomic_load_explicit(&m->consumer_waits_for, memory_order_relaxed) == i + 1)
        wake_consumer(m);
}

/* Writes position i's outcome into its slot: the value, or a failure record. */
static bool fill_slot(cf_map *m, size_t i, int outcome, int code, char *message, void *value,
                      size_t len)
{
    size_t k = slot_index(m, i);
    if (outcome == 0) {
        m->slots[k].value = value;
        if (m->lens)
            m->lens[k] = len;
        return false;
    }
    failure *f = malloc(sizeof *f);
    if (f) {
        f->outcome = outcome;
        f->code = code;
        f->message = message;
    } else {
        free(message);
        f = &no_memory;
    }
    m->slots[k].value = f;
    return true;
}

void cf__map_publish(cf_map *m, size_t i, int outcome, int code, char *message, void *value,
                     size_t len)
{
    bool failed = fill_slot(m, i, outcome, code, message, value, len);
    publish_slot(m, i, slot_of(m, i), failed);
}

const cf_function *cf__map_function(const cf_map *m)
{
    return m->bytes_fn;
}

bool cf__map_stopped(const cf_map *m)
{
    return atomic_load(&((cf_map *)m)->stop);
}

int64_t cf__map_deadline(const cf_map *m)
{
    return m->deadline;
}

cf_bytes cf__map_input(const cf_map *m, size_t i)
{
    return m->bytes_inputs[i];
}

static void run_position(cf_map *m, size_t i, cf_ctx *ctx)
{
    int rc;
    void *value = NULL;
    size_t len = 0;
    if (m->bytes) {
        rc = m->bytes_fn->fn(m->bytes_inputs[i].data, m->bytes_inputs[i].len, ctx);
        if (rc == 0 && ctx->out_len) { /* 0 bytes: NULL, as on every backend */
            value = ctx->out;
            len = ctx->out_len;
            ctx->out = NULL;
            ctx->out_len = 0;
        }
    } else {
        rc = m->fn(m->inputs[i], &value, ctx);
    }
    char *message = NULL;
    if (CF__UNLIKELY(rc)) {
        message = ctx->message;
        ctx->message = NULL;
    }
    if (CF__UNLIKELY(ctx->message || ctx->out))
        cf__ctx_reset(ctx);
    bool failed = fill_slot(m, i, rc ? CF_ETASK : 0, rc, message, value, len);
    publish_slot(m, i, slot_of(m, i), failed);
}

/* Runs claimed ranges until nothing can be claimed; the callback below does the rest. */
static void run_claims(cf_map *m, cf_ctx *ctx)
{
    size_t lo, hi;
    cf__map_pace pace = {0};
    while (cf__map_claim(m, &pace, &lo, &hi))
        for (size_t i = lo; i < hi && !atomic_load_explicit(&m->stop, memory_order_relaxed); i++)
            run_position(m, i, ctx);
}

static int runner_task(void *arg, void **result, cf_ctx *ctx)
{
    (void)result;
    run_claims(arg, ctx);
    return 0;
}

static void runner_done(cf__callback *self, cf_future *f)
{
    (void)f;
    runner_ref *r = (runner_ref *)self;
    cf_map *m = r->map;
    atomic_fetch_sub(&m->active, 1);
    if (atomic_load(&m->consumer_waits_for))
        wake_consumer(m);
    atomic_store_explicit(&r->fired, 1, memory_order_release);
}

/* Forgets runners whose callbacks are over, so the list stays as short as the live ones. */
static void prune_runners(cf_map *m)
{
    size_t kept = 0;
    for (size_t i = 0; i < m->runners_len; i++) {
        runner_ref *r = m->runners[i];
        if (atomic_load_explicit(&r->fired, memory_order_acquire)) {
            cf_future_release(r->future);
            free(r);
        } else {
            m->runners[kept++] = r;
        }
    }
    m->runners_len = kept;
}

/* Starts runners while fewer than the maximum are live and positions can be claimed. */
static void restart_runners(cf_map *m)
{
    prune_runners(m);
    int a = atomic_load(&m->active);
    while (a < m->runners_max && !m->start_error && !atomic_load(&m->stop) &&
           atomic_load(&m->next_claim) < claim_limit(m)) {
        if (!atomic_compare_exchange_weak(&m->active, &a, a + 1))
            continue;
        int rc = CF_ENOMEM;
        runner_ref *r = NULL;
        if (m->runners_len == m->runners_cap) {
            size_t cap = m->runners_cap ? 2 * m->runners_cap : 8;
            runner_ref **grown = realloc(m->runners, cap * sizeof *grown);
            if (grown) {
                m->runners = grown;
                m->runners_cap = cap;
            }
        }
        cf_future *f = NULL;
        if (m->runners_len < m->runners_cap && (r = malloc(sizeof *r)) &&
            (f = cf__future_alloc(2))) {
            if (m->ex->backend->pointer_tasks)
                f->task.fn = runner_task;
            else
                f->kind = CF__TASK_MAP_RUNNER;
            f->arg = m;
            r->done.fn = runner_done;
            r->future = f;
            r->map = m;
            atomic_init(&r->fired, 0);
            /* Registered before the runner can finish, so `active` always comes down. */
            cf__future_add_callback(f, &r->done);
            rc = cf__executor_admit(m->ex, f, true);
        }
        if (rc) {
            m->start_error = rc;
            /* A runner taken back at shutdown was cancelled and its callback has already
             * brought `active` down; otherwise that is ours to do. */
            if (!f || cf__future_remove_callback(f, &r->done))
                atomic_fetch_sub(&m->active, 1);
            cf_future_release(f);
            free(r);
            return;
        }
        m->runners[m->runners_len++] = r;
        a = atomic_load(&m->active);
    }
}

/* ---- the consumer ------------------------------------------------------------------- */

static bool position_ready(cf_map *m, size_t i)
{
    return atomic_load_explicit(&slot_of(m, i)->seq, memory_order_acquire) >> 1 == i + 1;
}

/*
 * Past the deadline: gives position i up (its result, if it comes, is disposed of by the
 * runner) and returns CF_ETIMEDOUT, or returns 0 if it was published meanwhile.
 */
static int abandon_position(cf_map *m, size_t i)
{
    /* Never claimed (no claims after the deadline): nothing will come.  Its slot may still
     * be owed to an earlier position, whose mark must stay. */
    if (i >= atomic_load(&m->next_claim))
        return CF_ETIMEDOUT;
    slot *s = slot_of(m, i);
    size_t seen = atomic_load(&s->seq);
    if (seen >> 1 != i + 1 && atomic_compare_exchange_strong(&s->seq, &seen, abandoned(i)))
        return CF_ETIMEDOUT;
    return 0;
}

/* Waits until position i is published: 0, or CF_ETIMEDOUT / the reason it never will be. */
static int wait_position(cf_map *m, size_t i)
{
    if (position_ready(m, i))
        return 0;
    if (m->timed_out)
        return abandon_position(m, i);
    if (m->ex->fork_gen != cf__fork_gen)
        return CF_EFORKED; /* its runners are the parent's */
    bool helper = cf__current.ex == m->ex;
    int worker = cf__current.index;
    cf__spin spin = {0};
    bool ready;
    int64_t left = m->deadline - cf__now_ns();
    while (!(ready = position_ready(m, i)) && cf__spin_step(&spin, left))
        ;
    cf__spin_end(ready);
    for (;;) {
        if (position_ready(m, i))
            return 0;
        if (helper) { /* one of our own pool's workers: do the work instead of waiting */
            cf_ctx ctx = {.ex = m->ex, .worker = worker};
            size_t before = atomic_load(&m->next_claim);
            run_claims(m, &ctx);
            if (atomic_load(&m->next_claim) != before)
                continue;
        }
        restart_runners(m);
        if (atomic_load(&m->next_claim) <= i && atomic_load(&m->active) == 0 && m->start_error)
            /* Can never start: after a shutdown, that is what a cancelled task is. */
            return m->start_error == CF_ESHUTDOWN ? CF_ECANCELLED : m->start_error;
        uint32_t seen = atomic_load(&m->progress);
        atomic_store(&m->consumer_waits_for, i + 1);
        cf__fence_heavy(); /* pairs with the runners' cf__fence_light in publish_slot */
        int rc = position_ready(m, i) ? 0 : cf__futex_wait(&m->progress, seen, m->deadline);
        atomic_store(&m->consumer_waits_for, 0);
        if (rc == CF_ETIMEDOUT && !position_ready(m, i)) {
            m->timed_out = true;
            atomic_store(&m->stop, 1);
            return abandon_position(m, i);
        }
    }
}

static void forget_last(cf_map *m)
{
    if (CF__UNLIKELY(m->last_message)) {
        free(m->last_message);
        m->last_message = NULL;
    }
    if (m->bytes)
        free(m->last_value);
    m->last_value = NULL;
    m->last_len = 0;
    m->last_code = 0;
}

/* Hands published position i's outcome to the consumer: 0 or its outcome code. */
static int take_position(cf_map *m, size_t i, void **value)
{
    size_t k = slot_index(m, i);
    slot *s = &m->slots[k];
    /* Relaxed: wait_position's acquire load of the mark came first. */
    if (CF__UNLIKELY(atomic_load_explicit(&s->seq, memory_order_relaxed) & 1)) {
        failure *f = s->value;
        int rc = f->outcome;
        m->last_code = f->code;
        m->last_message = f->message; /* the consumer's now */
        if (f != &no_memory)
            free(f);
        return rc;
    }
    m->last_value = s->value;
    if (m->lens)
        m->last_len = m->lens[k];
    if (value)
        *value = s->value;
    return 0;
}

int cf_map_next(cf_map *m, size_t *index, void **value)
{
    if (!m)
        return CF_EINVAL;
    forget_last(m);
    if (value)
        *value = NULL;
    if (m->pos >= m->n)
        return CF_EEND;
    size_t i = m->pos;
    int rc = wait_position(m, i);
    if (rc == 0)
        rc = take_position(m, i, value);
    m->pos = i + 1;
    if (m->bounded) {
        atomic_store(&m->consumed, m->pos); /* seq_cst: before reading `active` in restart */
        restart_runners(m);
    } else {
        atomic_store_explicit(&m->consumed, m->pos, memory_order_relaxed); /* nobody waits */
    }
    if (index)
        *index = i;
    return rc;
}

size_t cf_map_value_len(const cf_map *m)
{
    return m->last_len;
}

void cf_map_error(const cf_map *m, int *code, const char **message)
{
    if (code)
        *code = m->last_code;
    if (message)
        *message = m->last_message;
}

int cf_map_wait(cf_map *m, size_t *failed)
{
    if (failed)
        *failed = 0;
    if (!m)
        return CF_EINVAL;
    int first = 0, rc;
    void *value;
    /* Consuming is what moves a bounded map's window: read every position as the caller
     * would, and drop what nobody will read. */
    while ((rc = cf_map_next(m, NULL, &value)) != CF_EEND) {
        if (rc == 0) {
            if (!m->bytes && m->discard)
                m->discard(value);
            continue;
        }
        if (!first)
            first = rc;
        if (failed)
            (*failed)++;
    }
    return first; /* the CF_EEND call has let go of the last position already */
}

static void map_delete(cf_map *m)
{
    size_t claimed = atomic_load(&m->next_claim);
    for (size_t i = m->pos; i < claimed && i < m->pos + m->window; i++) {
        if (position_ready(m, i))
            dispose_slot(m, slot_of(m, i), atomic_load(&slot_of(m, i)->seq));
    }
    forget_last(m);
    free_slots(m);
    free(m->runners);
    free(m);
}

void cf_map_free(cf_map *m)
{
    if (!m)
        return;
    atomic_store(&m->stop, 1);
    if (m->runners_len && m->ex->backend->map_stopped)
        m->ex->backend->map_stopped(m->ex, m);
    for (size_t i = 0; i < m->runners_len; i++) {
        runner_ref *r = m->runners[i];
        cf__future_wait_until(r->future, CF__NO_DEADLINE);
        while (!atomic_load_explicit(&r->fired, memory_order_acquire))
            cf__cpu_relax();
        cf_future_release(r->future);
        free(r);
    }
    map_delete(m);
}

static int map_begin(cf_map **out, cf_executor *ex, const cf_map_opts *opts, size_t n,
                     bool bytes, bool inputs_missing, cf_map **made)
{
    if (!out)
        return CF_EINVAL;
    *out = NULL;
    cf_map_opts defaults;
    if (!opts) {
        cf_map_opts_init(&defaults);
        opts = &defaults;
    }
    if (!ex || (inputs_missing && n) || opts->chunk == 0 || CF__BAD_TIMEOUT(opts->timeout))
        return CF_EINVAL;
    if (ex->fork_gen != cf__fork_gen)
        return CF_EFORKED;
    uint32_t flags = atomic_load(&ex->flags);
    if (flags & CF__EX_SHUTDOWN)
        return CF_ESHUTDOWN;
    if (flags & CF__EX_BROKEN)
        return CF_EBROKEN;
    cf_map *m;
    if (posix_memalign((void **)&m, CF__CACHELINE, sizeof *m))
        return CF_ENOMEM;
    memset(m, 0, sizeof *m);
    m->ex = ex;
    m->n = n;
    m->bytes = bytes;
    m->bounded = opts->max_in_flight > 0 && opts->max_in_flight < n;
    m->window = m->bounded ? opts->max_in_flight : (n ? n : 1);
    size_t nslots = m->window;
    if (m->bounded) {
        for (nslots = 1; nslots < m->window; nslots <<= 1)
            ;
        m->slot_mask = nslots - 1;
    }
    m->chunk = opts->chunk == CF_CHUNK_AUTO ? 0 : opts->chunk;
    /* Runners elsewhere keep one range in flight each: two per worker hide the round trip
     * between a range's last result and the next range. */
    m->runners_max = ex->backend->pointer_tasks ? ex->workers : 2 * ex->workers;
    m->deadline = cf__deadline(opts->timeout);
    m->may_abandon = m->deadline != CF__NO_DEADLINE;
    m->discard = opts->discard;
    m->nslots = nslots;
    if (alloc_slots(m, bytes)) {
        free(m);
        return CF_ENOMEM;
    }
    cf__fences_init();
    *made = m;
    return 0;
}

/* Starts the first runners; on failure, frees the map and returns why. */
static int map_launch(cf_map **out, cf_map *m)
{
    if (m->n) {
        restart_runners(m);
        if (m->start_error && atomic_load(&m->active) == 0) {
            int rc = m->start_error;
            cf_map_free(m);
            return rc;
        }
    }
    *out = m;
    return 0;
}

int cf_map_start(cf_map **out, cf_executor *ex, cf_fn fn, void *const *inputs, size_t n,
                 const cf_map_opts *opts)
{
    cf_map *m;
    if (out && ex && !ex->backend->pointer_tasks) {
        *out = NULL;
        return CF_ENOTSUP;
    }
    int rc = map_begin(out, ex, opts, n, false, inputs == NULL, &m);
    if (rc == 0 && !fn) {
        map_delete(m);
        rc = CF_EINVAL;
    }
    if (rc)
        return rc;
    m->fn = fn;
    m->inputs = inputs;
    return map_launch(out, m);
}

int cf_map_bytes_start(cf_map **out, cf_executor *ex, const cf_function *fn,
                       const cf_bytes *inputs, size_t n, const cf_map_opts *opts)
{
    cf_map *m;
    int rc = map_begin(out, ex, opts, n, true, inputs == NULL, &m);
    if (rc == 0 && (!fn || !fn->fn)) {
        map_delete(m);
        rc = CF_EINVAL;
    }
    if (rc == 0 && ex->backend->check_bytes && (rc = ex->backend->check_bytes(ex, fn, 0)))
        map_delete(m);
    if (rc)
        return rc;
    m->bytes_fn = fn;
    m->bytes_inputs = inputs;
    return map_launch(out, m);
}

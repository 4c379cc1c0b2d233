/*
 * spares.c -- big-result buffers recycled from a process pool's futures to its workers.
 *
 * A result over CF__INLINE_MAX is a memfd that the worker fills and the parent maps
 * read-only as the future's value.  Fresh shared memory is the costliest part of that: the
 * kernel allocates, zeroes and charges every 4 KiB page when the worker maps it, and frees
 * them all when the future lets go (in the 1 MiB in / 1 MiB out benchmark, the workers'
 * populating mmap alone was a third of all CPU time).  So the parent keeps a result's
 * descriptor with its future, and when the future lets go the memfd comes here instead of
 * being closed; the parent hands it to a worker along with that worker's next tasks
 * (SCM_RIGHTS on the channel), and the worker writes its next big result into pages that
 * already exist.
 *
 * Why a recycled buffer never changes under a reader: a worker unmaps its result and
 * closes its descriptor before the RESULT is published, and a memfd goes back to a worker
 * only after the future that mapped it has unmapped it, so at any moment a buffer is
 * either a future's (read-only in the parent, held by no worker) or a worker's (held by no
 * future).  That holds for an honest worker only: a task can open its result's memfd
 * again (/proc/self/fd) and keep a writable mapping, in a thread or a child.  So a buffer
 * goes back only to the worker process that wrote it (its `owner`, a serial per spawn),
 * and is closed once that worker is gone (cf__spares_forget): a task's leftover writer
 * can then touch only later results of its own worker, never another worker's (issue 12).  The parent seals each result against shrinking, so a reader never meets
 * SIGBUS; the seal against writing is gone, because it can never be lifted and would end
 * recycling.  What this gives up: the kernel no longer proves that the worker kept no
 * writable mapping; the library's protocol does.
 *
 * Bounds, so that recycling never costs the host program what it did not ask for:
 *   - descriptors: the parent keeps at most `fds_max` of them (in futures and here
 *     together), an eighth of its RLIMIT_NOFILE and at most CF__SPARES_FDS_MAX; a result
 *     beyond that is closed once mapped, as before recycling;
 *   - memory: at most CF__SPARES_BYTES_MAX bytes wait here, and none of a memfd larger
 *     than CF__SPARE_MAX; a worker keeps at most CF__SPARES_PER_WORKER;
 *   - time: a buffer nobody took for CF__SPARE_KEEP_NS is closed (the manager calls
 *     cf__spares_trim), so an idle pool holds nothing a second after its last burst.
 *
 * Lifetime: reference-counted.  The pool holds one reference and every future whose value
 * came from a kept memfd holds one, so a future released after its pool is gone still
 * finds a home, which then just closes the descriptor.
 * Lock: `lock` is taken under the pool's lock and by any thread that releases a future;
 * under it, only the manager's wake-up (an eventfd write) is called, which the pool
 * disables by closing the stash before it closes the eventfd.  Invariant: kept ==
 * descriptors in `stash` + those held by futures.
 */
#define _GNU_SOURCE
#include "process.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define CF__SPARES_FDS_MAX 256
#define CF__SPARES_BYTES_MAX ((size_t)256 << 20)
#define CF__SPARE_KEEP_NS 1000000000 /* one second */

typedef struct spare {
    int fd;
    size_t size;
    int64_t since; /* when it came back (monotonic ns) */
    uint64_t owner; /* the worker that wrote it */
} spare;

typedef struct held {
    uint64_t ino;   /* a descriptor a future holds, by inode */
    uint64_t owner; /* 0 once its worker is gone: closed when it comes back */
} held;

struct cf__spares {
    cf__value_home home; /* first: a future's home is the stash */
    _Atomic int refs;
    pthread_mutex_t lock;
    bool closed;  /* the pool is gone: close what comes back */
    void (*wake)(void *arg); /* the pool's manager, which trims (until closed) */
    void *wake_arg;
    int kept;     /* descriptors kept, here and in futures */
    int fds_max;
    size_t bytes; /* of the buffers in stash */
    int len;      /* stash[0 .. len): oldest first */
    held *held;   /* held[0 .. held_len): kept by futures */
    int held_len;
    spare stash[];
};

static void unref(cf__spares *s)
{
    if (atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&s->lock);
    free(s->held);
    free(s);
}

/* A future released its value: the descriptor comes back, and the future's reference goes. */
static void take_back(cf__value_home *home, int fd)
{
    cf__spares *s = (cf__spares *)home;
    cf__spares_put(s, fd);
    unref(s);
}

int cf__spares_new(cf__spares **out, void (*wake)(void *arg), void *wake_arg)
{
    struct rlimit rl;
    int fds_max = CF__SPARES_FDS_MAX;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur / 8 < (rlim_t)fds_max)
        fds_max = (int)(rl.rlim_cur / 8);
    cf__spares *s = malloc(sizeof *s + (size_t)fds_max * sizeof s->stash[0]);
    held *h = malloc((size_t)(fds_max > 0 ? fds_max : 1) * sizeof *h);
    if (!s || !h) {
        free(s);
        free(h);
        return CF_ENOMEM;
    }
    s->held = h;
    s->held_len = 0;
    s->home.take_back = take_back;
    atomic_init(&s->refs, 1);
    pthread_mutex_init(&s->lock, NULL);
    s->closed = false;
    s->wake = wake;
    s->wake_arg = wake_arg;
    s->kept = 0;
    s->fds_max = fds_max;
    s->bytes = 0;
    s->len = 0;
    *out = s;
    return 0;
}

bool cf__spares_keep(cf__spares *s, uint64_t ino, uint64_t owner)
{
    pthread_mutex_lock(&s->lock);
    bool ok = !s->closed && s->kept < s->fds_max && s->held_len < s->fds_max;
    if (ok) {
        s->kept++;
        s->held[s->held_len++] = (held){ino, owner};
    }
    pthread_mutex_unlock(&s->lock);
    return ok;
}

void cf__spares_put(cf__spares *s, int fd)
{
    struct stat st;
    bool known = fstat(fd, &st) == 0;
    size_t size = known ? (size_t)st.st_size : SIZE_MAX;
    pthread_mutex_lock(&s->lock);
    uint64_t owner = 0;
    for (int i = 0; known && i < s->held_len; i++)
        if (s->held[i].ino == (uint64_t)st.st_ino) {
            owner = s->held[i].owner;
            s->held[i] = s->held[--s->held_len];
            break;
        }
    bool stashed = !s->closed && owner && size <= CF__SPARE_MAX &&
                   s->bytes + size <= CF__SPARES_BYTES_MAX;
    if (stashed) {
        s->stash[s->len++] = (spare){fd, size, cf__now_ns(), owner};
        s->bytes += size;
        if (s->len == 1) /* the manager may sleep with no time limit: it has one now */
            s->wake(s->wake_arg);
    } else {
        s->kept--;
    }
    pthread_mutex_unlock(&s->lock);
    if (!stashed)
        close(fd);
}

cf__value_home *cf__spares_home(cf__spares *s)
{
    atomic_fetch_add(&s->refs, 1);
    return &s->home;
}

/* Takes stash entries matching `owner` (every one when owner is 0), newest first (the
 * likeliest still in cache); returns how many went into fds. */
static int take_locked(cf__spares *s, uint64_t owner, int *fds, int max)
{
    int n = 0;
    for (int i = s->len; i-- > 0 && n < max;) {
        if (owner && s->stash[i].owner != owner)
            continue;
        fds[n++] = s->stash[i].fd;
        s->bytes -= s->stash[i].size;
        s->kept--;
        memmove(s->stash + i, s->stash + i + 1, (size_t)(s->len - i - 1) * sizeof s->stash[0]);
        s->len--;
    }
    return n;
}

int cf__spares_take(cf__spares *s, uint64_t owner, int *fds, int max)
{
    pthread_mutex_lock(&s->lock);
    int n = take_locked(s, owner, fds, max);
    pthread_mutex_unlock(&s->lock);
    return n;
}

void cf__spares_forget(cf__spares *s, uint64_t owner)
{
    int closing[CF__SPARES_FDS_MAX];
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->held_len; i++)
        if (s->held[i].owner == owner)
            s->held[i].owner = 0;
    int n = take_locked(s, owner, closing, CF__SPARES_FDS_MAX);
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < n; i++)
        close(closing[i]);
}

int cf__spares_trim(cf__spares *s, int64_t now)
{
    int closing[CF__SPARES_FDS_MAX];
    int n = 0;
    pthread_mutex_lock(&s->lock);
    while (n < s->len && now - s->stash[n].since >= CF__SPARE_KEEP_NS) {
        closing[n] = s->stash[n].fd;
        s->bytes -= s->stash[n].size;
        n++;
    }
    s->len -= n;
    s->kept -= n;
    memmove(s->stash, s->stash + n, (size_t)s->len * sizeof s->stash[0]);
    int64_t next = s->len ? s->stash[0].since + CF__SPARE_KEEP_NS - now : -1;
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < n; i++)
        close(closing[i]);
    return next < 0 ? -1 : (int)((next + 999999) / 1000000);
}

void cf__spares_close(cf__spares *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->closed = true;
    pthread_mutex_unlock(&s->lock);
    cf__spares_trim(s, INT64_MAX);
    unref(s);
}

/*
 * 09_processes_by_hand.c -- work that computes, on processes started by hand.
 *
 * Shows: the examples so far waited; this work computes.  It adds up the Collatz steps of
 * every number below a million (sum_steps() in example_util.h), first in a row, then split
 * into eight ranges, each summed by a child process of its own, started with fork().
 * The ranges run side by side on the machine's cores, so the second run is about as many
 * times faster as there are cores.  It also shows the chores a pool takes over: a pipe per
 * child to bring its result back, reading exactly the bytes of the result, reaping every
 * child (also the ones already started when a later fork fails), and noticing a child that
 * died without answering.
 *
 * In Python this is where processes come in, because only one thread at a time runs
 * Python code.  In C, threads compute side by side as well (03-05 would do this sum just
 * as fast); what processes add is isolation, which 11_task_crash.c shows.
 *
 * Expected output (the times and the speedup vary with the machine and its load):
 *     In a row:  131434272 steps in 0.37 second(s)
 *     8 processes: 131434272 steps in 0.19 second(s)
 *     Speedup: 1.94x (2 CPU(s) online)
 *     Finished in 0.57 second(s)
 *
 * Exits non-zero if a process could not be started, a child did not answer, or the two
 * sums differ.
 */
#include "example_util.h"

#include <sys/wait.h>

/* What the parent keeps about one child. */
typedef struct child {
    pid_t pid;
    int from_child; /* the read end of its pipe */
} child;

/* Reads exactly len bytes; 0 if the writer closed the pipe first (or on an error). */
static int read_exactly(int fd, void *buf, size_t len)
{
    char *at = buf;
    while (len > 0) {
        ssize_t n = read(fd, at, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        at += n;
        len -= (size_t)n;
    }
    return 1;
}

/*
 * Starts a child that sums range i and writes the 8-byte total into a pipe.  Returns 0, or
 * -1 with nothing left behind.
 *
 * fork() copies only the thread that calls it.  Had another thread held a lock at that
 * moment (malloc's, stdio's), the child would find it locked forever; so a child of a
 * multithreaded program may only call async-signal-safe functions until it calls exec.
 * This program runs a single thread here, so its children may compute and write freely.
 * A library cannot know that about the program calling it, so a cfutures process pool
 * never forks its caller: it starts its workers as new programs (posix_spawn + exec of the
 * same executable), which is why 10_process_pool.c calls cf_init() first thing in main().
 */
static int start_child(int i, child *c)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    /* Anything still buffered would be copied into the child and printed twice. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        uint64_t lo, hi;
        sum_range(i, &lo, &hi);
        uint64_t total = sum_steps(lo, hi);
        /* 8 bytes are below PIPE_BUF: one write, never split.  _exit, not exit: the
         * parent's atexit handlers and stdio buffers are the parent's business. */
        _exit(write(fds[1], &total, sizeof total) == (ssize_t)sizeof total ? 0 : 1);
    }
    close(fds[1]); /* so that read() sees end-of-file if the child dies without writing */
    *c = (child){.pid = pid, .from_child = fds[0]};
    return 0;
}

int main(void)
{
    double start = now_seconds();

    uint64_t parts[SUM_RANGES];
    double in_a_row;
    uint64_t expected = sum_in_a_row(parts, &in_a_row);

    double parallel_start = now_seconds();
    child children[SUM_RANGES];
    int started = 0;
    int start_failed = 0;
    while (started < SUM_RANGES && !start_failed) {
        if (start_child(started, &children[started]) == 0)
            started++;
        else
            start_failed = 1;
    }

    /* Every started child must be reaped, whatever happened to the others. */
    uint64_t total = 0;
    int all_answered = 1;
    int all_right = 1;
    for (int i = 0; i < started; i++) {
        uint64_t part;
        if (read_exactly(children[i].from_child, &part, sizeof part)) {
            all_right = all_right && part == parts[i];
            total += part;
        } else {
            all_answered = 0;
        }
        close(children[i].from_child);
        int status;
        while (waitpid(children[i].pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    double parallel = now_seconds() - parallel_start;
    expect(!start_failed, "every child process was started");
    expect(all_answered, "every child wrote its range's sum");
    expect(all_right, "each child's sum equals its range's sum in a row");

    printf("%d processes: %" PRIu64 " steps in %.2f second(s)\n", started, total, parallel);
    expect(total == expected, "the processes' sum equals the sum in a row");
    print_speedup(in_a_row, parallel);

    print_finished(start);
    return 0;
}

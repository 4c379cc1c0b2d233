/*
 * fuzz_wire.c -- libFuzzer target for cf__wire_decode(), the parent's only door for bytes
 * from a worker (and the worker's door for the parent's bytes).
 *
 * Each input is taken as a stream and decoded as pool.c does -- one message, then the rest,
 * until the decoder says "incomplete" or "malformed" -- once per direction and per payload
 * limit (fixed limits around CF__INLINE_MAX and CF_PAYLOAD_MAX, and two read from the
 * input's last 8 bytes, so the fuzzer steers them).  libFuzzer hands the input in a heap
 * block of exactly its size, so AddressSanitizer reports any read past the stream's end.
 *
 * Every decoded message must honour what the parent relies on without checking again: it
 * lies inside the stream, its type belongs to the direction, every part pointer lies inside
 * the message body, a payload is within the limit, a text within CF__TEXT_MAX.  Then it is
 * re-encoded with cf__wire_put(): the format has no free bytes, so the encoding must be the
 * consumed bytes exactly, and decoding it again (from a block of exactly its size) must give
 * the same fields, parts at the same offsets, and the same length; every strict prefix of it
 * is "incomplete", never a message.  A violation abort()s, which libFuzzer reports as a crash.
 *
 * `fuzz_wire --write-seeds=DIR` writes the seed corpus (valid streams built with
 * cf__wire_put(), each checked to decode back completely) into DIR and exits.
 */
#include "process.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond))                                                                       \
            violated(#cond, __LINE__);                                                     \
    } while (0)

/* What decode_stream() is doing, for the report of a violation. */
static struct {
    int from_worker;
    uint64_t max_payload;
    size_t at;
} now;

static void violated(const char *what, int line)
{
    fprintf(stderr,
            "fuzz_wire.c:%d: invariant violated: %s\n"
            "  (decoding %s, max_payload %llu, message at offset %zu)\n",
            line, what, now.from_worker ? "worker -> parent" : "parent -> worker",
            (unsigned long long)now.max_payload, now.at);
    abort();
}

/* ---- the parts of a decoded message ----------------------------------------------------- */

enum { TEXT, DATA, NAME, INIT_ARG, REF_PATH, REF_BUILD_ID, REF_NAME, NPARTS };

typedef struct span {
    const void *p;
    uint64_t n;
} span;

/* Every pointer field of m with its length; a payload in a slot has no bytes here. */
static void parts_of(const cf__wire_msg *m, span s[NPARTS])
{
    s[TEXT] = (span){m->text, m->text_len};
    s[DATA] = (span){m->data, m->where == CF__WHERE_INLINE ? m->data_len : 0};
    s[NAME] = (span){m->name, m->name_len};
    s[INIT_ARG] = (span){m->init_arg, m->init_arg_len};
    s[REF_PATH] = (span){m->ref.path, m->ref.path_len};
    s[REF_BUILD_ID] = (span){m->ref.build_id, m->ref.build_id_len};
    s[REF_NAME] = (span){m->ref.name, m->ref.name_len};
}

/* The parts a message of this type carries (DATA only when its payload is inline). */
static unsigned parts_used(const cf__wire_msg *m)
{
    const unsigned ref = 1u << REF_PATH | 1u << REF_BUILD_ID | 1u << REF_NAME;
    const unsigned data = m->where == CF__WHERE_INLINE ? 1u << DATA : 0;
    switch (m->type) {
    case CF__W_CONFIG:
        return 1u << NAME | 1u << INIT_ARG | ref;
    case CF__W_FUNC:
        return ref;
    case CF__W_TASK:
        return data;
    case CF__W_HELLO:
        return 1u << TEXT;
    default:
        return 1u << TEXT | data;
    }
}

static int type_allowed(uint32_t type, int from_worker)
{
    if (from_worker)
        return type == CF__W_HELLO || type == CF__W_RESULT;
    return type == CF__W_CONFIG || type == CF__W_FUNC || type == CF__W_TASK;
}

/* ---- the invariants ------------------------------------------------------------------- */

/* m was decoded from msg[0 .. used). */
static void check_message(const uint8_t *msg, size_t used, int from_worker,
                          uint64_t max_payload, const cf__wire_msg *m)
{
    uint32_t tag, body_len;
    memcpy(&tag, msg, 4);
    memcpy(&body_len, msg + 4, 4);
    CHECK(used >= CF__WIRE_HDR && used == CF__WIRE_HDR + (size_t)body_len);
    CHECK(body_len <= CF__BODY_MAX);
    CHECK(tag >> 16 == CF__WIRE_MAGIC && m->type == (tag & 0xffffu));
    CHECK(type_allowed(m->type, from_worker));

    span s[NPARTS];
    parts_of(m, s);
    unsigned used_parts = parts_used(m);
    for (int i = 0; i < NPARTS; i++) {
        if (!(used_parts >> i & 1u)) {
            CHECK(s[i].p == NULL && s[i].n == 0);
            continue;
        }
        /* As integers: comparing a pointer outside the message with it would be undefined. */
        uintptr_t p = (uintptr_t)s[i].p, body = (uintptr_t)msg + CF__WIRE_HDR,
                  end = (uintptr_t)msg + used;
        CHECK(s[i].p != NULL);
        CHECK(p >= body && p <= end && s[i].n <= end - p);
    }

    CHECK(m->text_len <= CF__TEXT_MAX);
    switch (m->type) {
    case CF__W_TASK:
        CHECK(m->where == CF__WHERE_INLINE || m->where == CF__WHERE_IN0 ||
              m->where == CF__WHERE_IN1);
        break;
    case CF__W_RESULT:
        CHECK(m->where == CF__WHERE_INLINE || m->where == CF__WHERE_OUT);
        /* A failed task has no result bytes: on_result() hands data_len on as the length. */
        CHECK(m->outcome == 0 || m->data_len == 0);
        break;
    case CF__W_CONFIG:
        CHECK(m->max_payload <= CF_PAYLOAD_MAX);
        break;
    }
    if (m->where == CF__WHERE_INLINE)
        CHECK(m->data_len <= CF__INLINE_MAX);
    /* process.h: "A payload longer than max_payload is malformed", inline or in a slot. */
    if (m->type == CF__W_TASK || m->type == CF__W_RESULT)
        CHECK(m->data_len <= max_payload);
}

/* The decoder said rest[0 .. n) is an incomplete message: it must be the start of one that
 * fits CF__BODY_MAX, so a garbage stream is reported at once, never waited on. */
static void check_incomplete(const uint8_t *rest, size_t n, int from_worker)
{
    if (n >= 4) {
        uint32_t tag;
        memcpy(&tag, rest, 4);
        CHECK(tag >> 16 == CF__WIRE_MAGIC && type_allowed(tag & 0xffffu, from_worker));
    }
    if (n >= 8) {
        uint32_t body_len;
        memcpy(&body_len, rest + 4, 4);
        CHECK(body_len <= CF__BODY_MAX && n < CF__WIRE_HDR + (size_t)body_len);
    }
}

/* a (decoded from abuf) and b (from bbuf) hold the same message. */
static void check_same(const cf__wire_msg *a, const uint8_t *abuf, const cf__wire_msg *b,
                       const uint8_t *bbuf)
{
#define SAME(field) CHECK(a->field == b->field)
    SAME(type);
    SAME(seq);
    SAME(outcome);
    SAME(code);
    SAME(pid);
    SAME(run_ns);
    SAME(start_ns);
    SAME(text_len);
    SAME(where);
    SAME(data_len);
    SAME(not_after);
    SAME(fn_id);
    SAME(ref.offset);
    SAME(ref.path_len);
    SAME(ref.build_id_len);
    SAME(ref.name_len);
    SAME(index);
    SAME(max_tasks);
    SAME(has_init);
    SAME(memory_limit);
    SAME(max_payload);
    SAME(name_len);
    SAME(init_arg_len);
#undef SAME
    span sa[NPARTS], sb[NPARTS];
    parts_of(a, sa);
    parts_of(b, sb);
    for (int i = 0; i < NPARTS; i++) {
        CHECK((sa[i].p == NULL) == (sb[i].p == NULL));
        CHECK(sa[i].n == sb[i].n);
        if (sa[i].p)
            CHECK((const uint8_t *)sa[i].p - abuf == (const uint8_t *)sb[i].p - bbuf);
    }
}

/* A block of exactly n bytes holding src[0 .. n): ASan catches any read past it. */
static uint8_t *exact_copy(const uint8_t *src, size_t n)
{
    uint8_t *copy = malloc(n); /* n > 0: every caller copies at least a header's start */
    if (!copy)
        abort();
    memcpy(copy, src, n);
    return copy;
}

static void check_round_trip(const uint8_t *msg, size_t used, int from_worker,
                             uint64_t max_payload, const cf__wire_msg *m)
{
    cf__wbuf b = {0};
    CHECK(cf__wire_put(&b, m->type, m) == 0);
    CHECK(b.len == used && memcmp(b.data, msg, used) == 0);
    uint8_t *again_buf = exact_copy(b.data, b.len);
    cf__wbuf_free(&b);

    cf__wire_msg again;
    CHECK(cf__wire_decode(again_buf, used, from_worker, max_payload, &again) == (long)used);
    check_same(m, msg, &again, again_buf);

    const size_t prefixes[] = {used - 1, used / 2, CF__WIRE_HDR - 1};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        uint8_t *prefix = exact_copy(again_buf, prefixes[i]);
        cf__wire_msg none;
        CHECK(cf__wire_decode(prefix, prefixes[i], from_worker, max_payload, &none) == 0);
        free(prefix);
    }
    free(again_buf);
}

/* Decodes buf[0 .. len) as the parent decodes a worker's stream; returns how many messages
 * were complete. */
static size_t decode_stream(const uint8_t *buf, size_t len, int from_worker,
                            uint64_t max_payload)
{
    size_t at = 0, count = 0;
    for (;;) {
        now.from_worker = from_worker;
        now.max_payload = max_payload;
        now.at = at;
        cf__wire_msg m;
        long used = cf__wire_decode(buf + at, len - at, from_worker, max_payload, &m);
        if (used == 0) {
            check_incomplete(buf + at, len - at, from_worker);
            return count;
        }
        if (used < 0) {
            CHECK(used == CF_EPROTO);
            return count;
        }
        CHECK((size_t)used <= len - at);
        check_message(buf + at, (size_t)used, from_worker, max_payload, &m);
        check_round_trip(buf + at, (size_t)used, from_worker, max_payload, &m);
        at += (size_t)used;
        count++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t tail = 0;
    if (size >= sizeof tail)
        memcpy(&tail, data + size - sizeof tail, sizeof tail);
    const uint64_t limits[] = {CF_PAYLOAD_MAX, CF__INLINE_MAX, tail & 0x1ffff, tail};
    for (int from_worker = 0; from_worker <= 1; from_worker++)
        for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++)
            decode_stream(data, size, from_worker, limits[i]);
    return 0;
}

/* ---- the seed corpus ------------------------------------------------------------------ */

static void put_or_die(cf__wbuf *b, uint32_t type, const cf__wire_msg *m)
{
    if (cf__wire_put(b, type, m) != 0) {
        fprintf(stderr, "fuzz_wire: cf__wire_put failed\n");
        exit(1);
    }
}

/* Writes the stream in b as seed `name`, after checking it decodes back completely. */
static void write_seed(const char *dir, const char *name, cf__wbuf *b, int from_worker,
                       size_t messages)
{
    if (decode_stream(b->data, b->len, from_worker, CF_PAYLOAD_MAX) != messages) {
        fprintf(stderr, "fuzz_wire: seed %s does not decode to %zu messages\n", name,
                messages);
        exit(1);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->data, 1, b->len, f) != b->len || fclose(f) != 0) {
        fprintf(stderr, "fuzz_wire: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
    cf__wbuf_free(b);
}

static void write_seeds(const char *dir)
{
    static uint8_t big[CF__INLINE_MAX];
    static char long_text[CF__TEXT_MAX];
    memset(big, 0xa5, sizeof big);
    memset(long_text, 'x', sizeof long_text);
    static const uint8_t build_id[20] = {0x12, 0x34, 0x56, 0x78};
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "fuzz_wire: cannot create %s: %s\n", dir, strerror(errno));
        exit(1);
    }

    const cf__wire_msg hello = {.seq = 0, .pid = 4242};
    const cf__wire_msg hello_broken = {.pid = 4242, .outcome = CF_EBROKEN, .code = 3,
                                       .text = "initializer failed", .text_len = 18};
    const cf__wire_msg result_inline = {.seq = 1, .run_ns = 1500, .where = CF__WHERE_INLINE,
                                        .data = (const uint8_t *)"0123456789abcdef",
                                        .data_len = 16};
    const cf__wire_msg result_slot = {.seq = 2, .run_ns = 99, .where = CF__WHERE_OUT,
                                      .data_len = (uint64_t)1 << 20};
    const cf__wire_msg result_failed = {.seq = 3, .outcome = CF_ETASK, .code = -7,
                                        .text = "task failed: bad input", .text_len = 22};
    const cf__wire_msg result_long_text = {.seq = 4, .outcome = CF_ETASK,
                                           .text = long_text, .text_len = CF__TEXT_MAX};
    const cf__wire_msg result_big_inline = {.seq = 5, .where = CF__WHERE_INLINE, .data = big,
                                            .data_len = CF__INLINE_MAX};
    const cf__modref ref = {.offset = 0x1234, .path = "", .build_id = build_id,
                            .build_id_len = sizeof build_id, .name = "square",
                            .name_len = 6};
    const cf__wire_msg config = {.index = 1, .max_tasks = 100, .memory_limit = 1 << 30,
                                 .max_payload = CF_PAYLOAD_DEFAULT, .has_init = 1,
                                 .name = "cf-worker", .name_len = 9,
                                 .init_arg = (const uint8_t *)"arg", .init_arg_len = 3,
                                 .ref = {.offset = 0x99, .path = "/lib/x.so",
                                         .path_len = 9}};
    const cf__wire_msg func = {.fn_id = 7, .ref = ref};
    const cf__wire_msg task_inline = {.seq = 1, .fn_id = 7, .where = CF__WHERE_INLINE,
                                      .not_after = 123, .data = (const uint8_t *)"in",
                                      .data_len = 2};
    const cf__wire_msg task_slot = {.seq = 2, .fn_id = 7, .where = CF__WHERE_IN1,
                                    .data_len = 100000};

    cf__wbuf b = {0};
    put_or_die(&b, CF__W_HELLO, &hello);
    write_seed(dir, "hello", &b, 1, 1);
    put_or_die(&b, CF__W_HELLO, &hello_broken);
    write_seed(dir, "hello_broken", &b, 1, 1);
    put_or_die(&b, CF__W_RESULT, &result_inline);
    write_seed(dir, "result_inline", &b, 1, 1);
    put_or_die(&b, CF__W_RESULT, &result_slot);
    write_seed(dir, "result_slot", &b, 1, 1);
    put_or_die(&b, CF__W_RESULT, &result_failed);
    write_seed(dir, "result_failed", &b, 1, 1);
    put_or_die(&b, CF__W_RESULT, &result_long_text);
    write_seed(dir, "result_long_text", &b, 1, 1);
    put_or_die(&b, CF__W_RESULT, &result_big_inline);
    write_seed(dir, "result_big_inline", &b, 1, 1);
    put_or_die(&b, CF__W_HELLO, &hello);
    put_or_die(&b, CF__W_RESULT, &result_inline);
    put_or_die(&b, CF__W_RESULT, &result_slot);
    put_or_die(&b, CF__W_RESULT, &result_failed);
    write_seed(dir, "worker_stream", &b, 1, 4);
    put_or_die(&b, CF__W_CONFIG, &config);
    put_or_die(&b, CF__W_FUNC, &func);
    put_or_die(&b, CF__W_TASK, &task_inline);
    put_or_die(&b, CF__W_TASK, &task_slot);
    write_seed(dir, "parent_stream", &b, 0, 4);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char flag[] = "--write-seeds=";
    for (int i = 1; i < *argc; i++) {
        if (strncmp((*argv)[i], flag, sizeof flag - 1) == 0) {
            write_seeds((*argv)[i] + sizeof flag - 1);
            exit(0);
        }
    }
    return 0;
}

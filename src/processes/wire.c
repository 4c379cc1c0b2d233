/*
 * wire.c -- the messages between a process pool and its workers: encoding and decoding,
 * and the channel calls that carry descriptors with them (SCM_RIGHTS).
 *
 * The decoder is the parent's only door for bytes from a worker, and a worker may be
 * broken in any way (a task can scribble on its own process), so it trusts nothing: every
 * length is bounded before it is added or used, every part must fit the body, the body
 * must be exactly the sum of its parts, and an unknown tag is malformed at once, before the
 * rest of the message has arrived (a garbage stream is reported, never waited on).  It
 * reads through memcpy only, so no alignment is assumed.  tests/fuzz/fuzz_wire.c feeds
 * it random bytes under AddressSanitizer and UBSan.
 *
 * Body layouts (fixed fields, then the variable parts in this order):
 *   CONFIG  u32 index, u32 max_tasks, u64 memory_limit, u64 max_payload, u32 has_init,
 *           u32 name_len, u32 init_arg_len, modref fields; name, init_arg, modref parts
 *   FUNC    u32 fn_id, modref fields; modref parts
 *   TASK    u32 fn_id, u32 where, u64 data_len, u64 not_after; inline data
 *   HELLO   i32 pid, i32 outcome, i32 code, u32 text_len; text
 *   RESULT  i32 outcome, i32 code, u64 run_ns, u64 start_ns, u32 where, u32 text_len,
 *           u64 data_len, u64 out_ino;
 *           text, inline data
 *   modref fields: u64 offset, u32 path_len, u32 build_id_len, u32 name_len;
 *   modref parts: path, build_id, name
 */
#include "process.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

#define MODREF_FIELDS 20u

/* ---- decoding ------------------------------------------------------------------------ */

typedef struct reader {
    const uint8_t *p;
    size_t left;
    int bad;
} reader;

static void take(reader *r, void *out, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = 1;
        memset(out, 0, n);
        return;
    }
    memcpy(out, r->p, n);
    r->p += n;
    r->left -= n;
}

static uint32_t u32(reader *r)
{
    uint32_t v;
    take(r, &v, sizeof v);
    return v;
}

static uint64_t u64(reader *r)
{
    uint64_t v;
    take(r, &v, sizeof v);
    return v;
}

static int32_t i32(reader *r)
{
    int32_t v;
    take(r, &v, sizeof v);
    return v;
}

/* A variable part of n bytes, n bounded by `max`. */
static const uint8_t *part(reader *r, uint64_t n, uint64_t max)
{
    if (r->bad || n > max || n > r->left) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= (size_t)n;
    return p;
}

static void modref_fields(reader *r, cf__modref *ref)
{
    ref->offset = u64(r);
    ref->path_len = u32(r);
    ref->build_id_len = u32(r);
    ref->name_len = u32(r);
}

static void modref_parts(reader *r, cf__modref *ref)
{
    ref->path = (const char *)part(r, ref->path_len, 4095);
    ref->build_id = part(r, ref->build_id_len, 64);
    ref->name = (const char *)part(r, ref->name_len, 255);
}

/* The outcomes a worker may report. */
static int valid_outcome(int32_t o, int result)
{
    if (o == 0)
        return 1;
    if (!result)
        return o == CF_EBROKEN;
    return o == CF_ETASK || o == CF_ETOOBIG || o == CF_ENOMEM || o == CF_ENOFUNC ||
           o == CF_ETIMEDOUT;
}

static int type_allowed(uint32_t type, int from_worker)
{
    if (from_worker)
        return type == CF__W_HELLO || type == CF__W_RESULT;
    return type == CF__W_CONFIG || type == CF__W_FUNC || type == CF__W_TASK;
}

long cf__wire_decode(const uint8_t *buf, size_t len, int from_worker, uint64_t max_payload,
                     cf__wire_msg *m)
{
    uint32_t tag, body_len;
    if (len < 4)
        return 0;
    memcpy(&tag, buf, 4);
    if ((tag >> 16) != CF__WIRE_MAGIC || !type_allowed(tag & 0xffffu, from_worker))
        return CF_EPROTO;
    if (len < 8)
        return 0;
    memcpy(&body_len, buf + 4, 4);
    if (body_len > CF__BODY_MAX)
        return CF_EPROTO;
    if (len < CF__WIRE_HDR || len - CF__WIRE_HDR < body_len)
        return 0;

    memset(m, 0, sizeof *m);
    m->type = tag & 0xffffu;
    memcpy(&m->seq, buf + 8, 8);
    reader r = {buf + CF__WIRE_HDR, body_len, 0};
    switch (m->type) {
    case CF__W_CONFIG:
        m->index = u32(&r);
        m->max_tasks = u32(&r);
        m->memory_limit = u64(&r);
        m->max_payload = u64(&r);
        m->has_init = u32(&r);
        m->name_len = u32(&r);
        m->init_arg_len = u32(&r);
        modref_fields(&r, &m->ref);
        m->name = (const char *)part(&r, m->name_len, 64);
        m->init_arg = part(&r, m->init_arg_len, CF__INLINE_MAX);
        modref_parts(&r, &m->ref);
        if (m->has_init > 1 || m->max_payload > CF_PAYLOAD_MAX)
            r.bad = 1;
        break;
    case CF__W_FUNC:
        m->fn_id = u32(&r);
        modref_fields(&r, &m->ref);
        modref_parts(&r, &m->ref);
        break;
    case CF__W_TASK:
        m->fn_id = u32(&r);
        m->where = u32(&r);
        m->data_len = u64(&r);
        m->not_after = u64(&r);
        if (m->data_len > max_payload)
            r.bad = 1;
        else if (m->where == CF__WHERE_INLINE)
            m->data = part(&r, m->data_len, CF__INLINE_MAX);
        else if (m->where != CF__WHERE_IN0 && m->where != CF__WHERE_IN1)
            r.bad = 1;
        break;
    case CF__W_HELLO:
        m->pid = i32(&r);
        m->outcome = i32(&r);
        m->code = i32(&r);
        m->text_len = u32(&r);
        m->text = (const char *)part(&r, m->text_len, CF__TEXT_MAX);
        if (!valid_outcome(m->outcome, 0) || m->pid <= 0)
            r.bad = 1;
        break;
    case CF__W_RESULT:
        m->outcome = i32(&r);
        m->code = i32(&r);
        m->run_ns = u64(&r);
        m->start_ns = u64(&r);
        m->where = u32(&r);
        m->text_len = u32(&r);
        m->data_len = u64(&r);
        m->out_ino = u64(&r);
        m->text = (const char *)part(&r, m->text_len, CF__TEXT_MAX);
        if (m->data_len > max_payload)
            r.bad = 1;
        else if (m->where == CF__WHERE_INLINE)
            m->data = part(&r, m->data_len, CF__INLINE_MAX);
        else if (m->where != CF__WHERE_OUT)
            r.bad = 1;
        if (!valid_outcome(m->outcome, 1) || (m->outcome && m->data_len))
            r.bad = 1;
        break;
    }
    if (r.bad || r.left != 0)
        return CF_EPROTO;
    return (long)(CF__WIRE_HDR + body_len);
}

/* ---- the ring's mapping ------------------------------------------------------------ */

uint8_t *cf__ring_map(int fd, size_t size)
{
    uint8_t *base = mmap(NULL, 2 * size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    for (int i = 0; i < 2; i++)
        if (mmap(base + i * size, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) ==
            MAP_FAILED) {
            munmap(base, 2 * size);
            return NULL;
        }
    return base;
}

/* ---- encoding ------------------------------------------------------------------------ */

void cf__wbuf_free(cf__wbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static int reserve(cf__wbuf *b, size_t n)
{
    if (b->cap - b->len >= n)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n)
        cap *= 2;
    uint8_t *grown = realloc(b->data, cap);
    if (!grown)
        return CF_ENOMEM;
    b->data = grown;
    b->cap = cap;
    return 0;
}

static void put(cf__wbuf *b, const void *p, size_t n)
{
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put32(cf__wbuf *b, uint32_t v)
{
    put(b, &v, sizeof v);
}

static void put64(cf__wbuf *b, uint64_t v)
{
    put(b, &v, sizeof v);
}

static void put_modref_fields(cf__wbuf *b, const cf__modref *ref)
{
    put64(b, ref->offset);
    put32(b, ref->path_len);
    put32(b, ref->build_id_len);
    put32(b, ref->name_len);
}

static void put_modref_parts(cf__wbuf *b, const cf__modref *ref)
{
    put(b, ref->path, ref->path_len);
    put(b, ref->build_id, ref->build_id_len);
    put(b, ref->name, ref->name_len);
}

int cf__wire_put(cf__wbuf *b, uint32_t type, const cf__wire_msg *m)
{
    size_t inline_len = m->where == CF__WHERE_INLINE ? (size_t)m->data_len : 0;
    size_t modref_len = MODREF_FIELDS + m->ref.path_len + m->ref.build_id_len + m->ref.name_len;
    size_t body;
    switch (type) {
    case CF__W_CONFIG:
        body = 36 + modref_len + m->name_len + m->init_arg_len;
        break;
    case CF__W_FUNC:
        body = 4 + modref_len;
        break;
    case CF__W_TASK:
        body = 24 + inline_len;
        break;
    case CF__W_HELLO:
        body = 16 + m->text_len;
        break;
    default:
        body = 48 + m->text_len + inline_len;
        break;
    }
    if (body > CF__BODY_MAX || reserve(b, CF__WIRE_HDR + body))
        return CF_ENOMEM;
    put32(b, CF__WIRE_MAGIC << 16 | type);
    put32(b, (uint32_t)body);
    put64(b, m->seq);
    switch (type) {
    case CF__W_CONFIG:
        put32(b, m->index);
        put32(b, m->max_tasks);
        put64(b, m->memory_limit);
        put64(b, m->max_payload);
        put32(b, m->has_init);
        put32(b, m->name_len);
        put32(b, m->init_arg_len);
        put_modref_fields(b, &m->ref);
        put(b, m->name, m->name_len);
        put(b, m->init_arg, m->init_arg_len);
        put_modref_parts(b, &m->ref);
        break;
    case CF__W_FUNC:
        put32(b, m->fn_id);
        put_modref_fields(b, &m->ref);
        put_modref_parts(b, &m->ref);
        break;
    case CF__W_TASK:
        put32(b, m->fn_id);
        put32(b, m->where);
        put64(b, m->data_len);
        put64(b, m->not_after);
        put(b, m->data, inline_len);
        break;
    case CF__W_HELLO:
        put32(b, (uint32_t)m->pid);
        put32(b, (uint32_t)m->outcome);
        put32(b, (uint32_t)m->code);
        put32(b, m->text_len);
        put(b, m->text, m->text_len);
        break;
    default:
        put32(b, (uint32_t)m->outcome);
        put32(b, (uint32_t)m->code);
        put64(b, m->run_ns);
        put64(b, m->start_ns);
        put32(b, m->where);
        put32(b, m->text_len);
        put64(b, m->data_len);
        put64(b, m->out_ino);
        put(b, m->text, m->text_len);
        put(b, m->data, inline_len);
        break;
    }
    return 0;
}

/* ---- the channel ----------------------------------------------------------------------- */

typedef union {
    char buf[CMSG_SPACE(CF__CHAN_FDS_MAX * sizeof(int))];
    struct cmsghdr align;
} chan_control;

ssize_t cf__chan_send(int sock, const void *buf, size_t len, const int *fds, int nfds,
                      int flags)
{
    struct iovec iov = {(void *)buf, len};
    chan_control control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds > 0) {
        size_t bytes = (size_t)nfds * sizeof(int);
        msg.msg_control = control.buf;
        msg.msg_controllen = CMSG_SPACE(bytes);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(bytes);
        memcpy(CMSG_DATA(c), fds, bytes);
    }
    return sendmsg(sock, &msg, flags);
}

ssize_t cf__chan_recv(int sock, void *buf, size_t cap, int flags,
                      void (*take_fd)(void *arg, int fd), void *arg, bool *dropped)
{
    struct iovec iov = {buf, cap};
    chan_control control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                         .msg_controllen = sizeof control.buf};
    ssize_t n = recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
    if (n < 0)
        return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            take_fd(arg, fd);
        }
    }
    if (msg.msg_flags & MSG_CTRUNC)
        *dropped = true;
    return n;
}

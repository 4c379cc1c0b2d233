/*
 * resolve.c -- finding a task function in a worker process: module plus offset.
 *
 * A worker is the same program started again with exec, so every module (the program and
 * the shared libraries loaded at start) holds the same bytes at a different address.  The
 * parent names an address by the module that maps it (the main program, or a library's
 * path) and its offset from that module's load bias; the worker adds its own bias.  No
 * registration is needed, static functions work, and a library the parent loaded later
 * with dlopen is loaded by the worker too, from the same path.
 *
 * Checks, so that a mismatch is an error instead of a jump to the wrong code: the module's
 * GNU build ID must be equal on both sides (a library replaced on disk between the two
 * loads is refused); a named descriptor (a cf_function, or a cf_initializer, both a name
 * and then a function) must sit in a loaded segment, carry the same name, and point to
 * code in an executable segment.  A bare code address is never resolved: a worker would
 * otherwise jump wherever a forged message said.  Addresses no file-backed module maps
 * (generated code, the vDSO) are refused in the parent, at submit or creation.
 *
 * dl_iterate_phdr takes the loader's lock; it is called once per function per executor in
 * the parent and once per function per worker, never per task.
 */
#define _GNU_SOURCE
#include "process.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

/* ---- modules ------------------------------------------------------------------------ */

typedef struct module {
    const struct dl_phdr_info *info;
    int is_main;
} module;

static int is_main_object(const struct dl_phdr_info *info)
{
    /* The loader lists the program first, with an empty name. */
    return info->dlpi_name == NULL || info->dlpi_name[0] == '\0';
}

/* Does module `info` map [addr, addr + len) in a loaded segment (an executable one if
 * exec)? */
static int maps(const struct dl_phdr_info *info, uintptr_t addr, size_t len, int exec)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || (exec && !(ph->p_flags & PF_X)))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (addr >= lo && addr - lo < ph->p_memsz && len <= ph->p_memsz - (addr - lo))
            return 1;
    }
    return 0;
}

/* The module's GNU build ID (0 bytes when it has none). */
static size_t build_id(const struct dl_phdr_info *info, uint8_t *out, size_t cap)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
        size_t left = ph->p_memsz;
        while (left >= sizeof(ElfW(Nhdr))) {
            ElfW(Nhdr) nh;
            memcpy(&nh, p, sizeof nh);
            size_t name_sz = (nh.n_namesz + 3u) & ~3u, desc_sz = (nh.n_descsz + 3u) & ~3u;
            size_t total = sizeof nh + name_sz + desc_sz;
            if (total > left)
                break;
            if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
                memcmp(p + sizeof nh, "GNU", 4) == 0 && nh.n_descsz <= cap) {
                memcpy(out, p + sizeof nh + name_sz, nh.n_descsz);
                return nh.n_descsz;
            }
            p += total;
            left -= total;
        }
    }
    return 0;
}

/* A descriptor's name and function, read without assuming which of the two types it is
 * (their layouts agree: process.h). */
static void read_descriptor(const void *d, const char **name, uintptr_t *fn)
{
    cf_bytes_fn f;
    memcpy(name, (const char *)d + offsetof(cf_function, name), sizeof *name);
    memcpy(&f, (const char *)d + offsetof(cf_function, fn), sizeof f);
    *fn = (uintptr_t)f;
}

/* ---- the parent: describe ------------------------------------------------------------ */

typedef struct describe_ctx {
    uintptr_t addr;
    int code;
    cf__modref_buf *out;
    int found;
} describe_ctx;

static int describe_one(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    describe_ctx *c = arg;
    if (!maps(info, c->addr, c->code ? 1 : CF__DESCRIPTOR_SIZE, c->code))
        return 0;
    cf__modref_buf *o = c->out;
    if (is_main_object(info)) {
        o->path[0] = '\0';
    } else {
        /* Only a module with a file can be found again; the vDSO has none. */
        if (info->dlpi_name[0] != '/' || strlen(info->dlpi_name) >= sizeof o->path)
            return 1;
        strcpy(o->path, info->dlpi_name);
    }
    o->ref.offset = c->addr - info->dlpi_addr;
    o->ref.path = o->path;
    o->ref.path_len = (uint32_t)strlen(o->path);
    o->ref.build_id = o->build_id;
    o->ref.build_id_len = (uint32_t)build_id(info, o->build_id, sizeof o->build_id);
    c->found = 1;
    return 1;
}

int cf__modref_describe(const void *desc, cf__modref_buf *out)
{
    memset(out, 0, sizeof *out);
    const char *name;
    uintptr_t fn;
    describe_ctx c = {(uintptr_t)desc, 0, out, 0};
    dl_iterate_phdr(describe_one, &c);
    if (!c.found)
        return CF_ENOFUNC;
    read_descriptor(desc, &name, &fn);
    size_t name_len = name ? strlen(name) : 0;
    if (name_len == 0 || name_len > 255)
        return CF_ENOFUNC;
    /* The function itself must be code in a module too. */
    cf__modref_buf fn_ref;
    describe_ctx f = {fn, 1, &fn_ref, 0};
    dl_iterate_phdr(describe_one, &f);
    if (!f.found)
        return CF_ENOFUNC;
    out->ref.name = name;
    out->ref.name_len = (uint32_t)name_len;
    return 0;
}

/* ---- the worker: resolve ------------------------------------------------------------- */

typedef struct resolve_ctx {
    const cf__modref *ref;
    uintptr_t addr;
    int found;       /* the module is loaded */
    int id_mismatch;
    int mapped;      /* the address is in a fitting segment */
} resolve_ctx;

static int same_module(const struct dl_phdr_info *info, const cf__modref *ref)
{
    if (ref->path_len == 0)
        return is_main_object(info);
    return !is_main_object(info) && strlen(info->dlpi_name) == ref->path_len &&
           memcmp(info->dlpi_name, ref->path, ref->path_len) == 0;
}

static int resolve_one(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    resolve_ctx *c = arg;
    if (!same_module(info, c->ref))
        return 0;
    c->found = 1;
    uint8_t id[64];
    size_t n = build_id(info, id, sizeof id);
    if (n != c->ref->build_id_len || memcmp(id, c->ref->build_id, n) != 0) {
        c->id_mismatch = 1;
        return 1;
    }
    c->addr = info->dlpi_addr + (uintptr_t)c->ref->offset;
    c->mapped = maps(info, c->addr, CF__DESCRIPTOR_SIZE, 0);
    return 1;
}

/* Is addr code in any loaded module? */
static int code_anywhere_one(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    return maps(info, *(uintptr_t *)arg, 1, 1);
}

void *cf__modref_resolve(const cf__modref *ref, char *why, size_t why_len)
{
    resolve_ctx c = {ref, 0, 0, 0, 0};
    dl_iterate_phdr(resolve_one, &c);
    if (!c.found && ref->path_len) {
        char path[4096];
        snprintf(path, sizeof path, "%.*s", (int)ref->path_len, ref->path);
        /* Never closed: the module stays for the worker's life, as in the parent. */
        if (!dlopen(path, RTLD_NOW | RTLD_GLOBAL)) {
            snprintf(why, why_len, "cannot load %s: %s", path, dlerror());
            return NULL;
        }
        dl_iterate_phdr(resolve_one, &c);
    }
    const char *module = ref->path_len ? "library" : "program";
    if (!c.found) {
        snprintf(why, why_len, "%s %.*s is not loaded", module, (int)ref->path_len, ref->path);
        return NULL;
    }
    if (c.id_mismatch) {
        snprintf(why, why_len, "%s %.*s differs from the parent's (build ID)", module,
                 (int)ref->path_len, ref->path);
        return NULL;
    }
    if (!c.mapped) {
        snprintf(why, why_len, "offset %#llx is outside the %s's data",
                 (unsigned long long)ref->offset, module);
        return NULL;
    }
    const char *name;
    uintptr_t code;
    read_descriptor((const void *)c.addr, &name, &code);
    if (!name || strlen(name) != ref->name_len || memcmp(name, ref->name, ref->name_len) != 0 ||
        !dl_iterate_phdr(code_anywhere_one, &code)) {
        snprintf(why, why_len, "no function %.*s at offset %#llx", (int)ref->name_len,
                 ref->name, (unsigned long long)ref->offset);
        return NULL;
    }
    return (void *)c.addr;
}

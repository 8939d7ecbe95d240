/* sigsegv-redirect: the essay's technique.
 *
 * Every element is reached through a handle, an address in a reserved
 * PROT_NONE pool with one 8-byte slot per element; the library owns the
 * list of handles (a->handles).  Dereferencing a handle faults; the
 * handler decodes the faulting instruction (Capstone), forces the thunks
 * the access covers, and moves the register that holds the handle by the
 * constant distance from the pool to the real values, so the re-executed
 * instruction reads the real object.  Pool slot i maps to value i, so the
 * lookup from faulting address to thunk is O(1): (addr - pool) / 8.
 *
 * Options (one variant name each): the decode cache keyed by instruction
 * address, and healing: once element i is evaluated the handler also
 * overwrites slot i of the list with the real address, so later passes
 * through the list do not fault. */
#include "lb_core.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

/* A register holding a handle points within this distance of the pool
 * (handles with a displacement subtracted, an index scaled). */
#define NEAR ((uintptr_t)1 << 31)

struct redirect {
    char *pool;
    int64_t *data;
    int64_t **list;
    uint8_t *state;
    intptr_t delta;                 /* data - pool */
    struct lb_dcache *cache;        /* NULL when the cache is off */
};

static void abort_element(lb_array *a, int64_t lo, int64_t hi)
{
    struct redirect *r = a->priv;
    for (int64_t i = lo; i < hi; i++)
        __atomic_store_n(&r->state[i], LB_PAGE_LAZY, __ATOMIC_RELEASE);
}

static int force(lb_array *a, int64_t i)
{
    struct redirect *r = a->priv;
    return lb_force_element(a, r->state, r->data, i);
}

static int near_pool(const lb_array *a, uintptr_t v)
{
    const struct redirect *r = a->priv;
    uintptr_t lo = (uintptr_t)r->pool;
    return v + NEAR >= lo && v < lo + a->bytes + NEAR;
}

static int redirect_fault(lb_array *a, void *addr, void *ucv)
{
    struct redirect *r = a->priv;
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    uintptr_t rip = (uintptr_t)g[REG_RIP];
    lb_count(&a->c.faults, 1);

    struct lb_insn_info info;
    int cached = r->cache && lb_dcache_get(r->cache, rip, &info);
    if (r->cache)
        lb_count(cached ? &a->c.decode_hits : &a->c.decode_misses, 1);
    if (!cached) {
        lb_count(&a->c.decodes, 1);
        if (lb_decode(rip, &info)) {
            lb_fail(lb_last_error(), NULL);
            return LB_FAULT_NOT_OURS;
        }
        if (r->cache)
            lb_dcache_put(r->cache, rip, &info);
    }

    /* Which register holds the handle: the base when it points near the
     * pool, else the index (scaled). */
    int reg = -1;
    intptr_t move = r->delta;
    if (info.base >= 0 && near_pool(a, (uintptr_t)g[info.base]))
        reg = info.base;
    else if (info.index >= 0 &&
             near_pool(a, (uintptr_t)g[info.index] * info.scale)) {
        reg = info.index;
        move = r->delta / info.scale;   /* delta is a multiple of a page */
    }
    if (reg < 0) {
        char hex[24];
        lb_fmt_hex(hex, sizeof hex, rip);
        lb_fail("sigsegv-redirect: no register of the faulting instruction "
                "holds the handle, at ", hex);
        return LB_FAULT_NOT_OURS;
    }

    uintptr_t off = (uintptr_t)((char *)addr - r->pool);
    int64_t lo = (int64_t)(off / sizeof(int64_t));
    int64_t hi = (int64_t)((off + info.size - 1) / sizeof(int64_t)) + 1;
    if (hi > a->n) {
        lb_fail("sigsegv-redirect: a load reaches past the last element",
                NULL);
        return LB_FAULT_NOT_OURS;
    }
    for (int64_t i = lo; i < hi; i++) {
        if (force(a, i))
            return LB_FAULT_NOT_OURS;
        if (a->ops->flags & LB_REDIRECT_HEAL)
            __atomic_store_n(&r->list[i], &r->data[i], __ATOMIC_RELEASE);
    }
    g[reg] += move;
    return LB_FAULT_HANDLED;
}

static void *map_rw(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void fill_list(lb_array *a)
{
    struct redirect *r = a->priv;
    for (int64_t i = 0; i < a->n; i++)
        r->list[i] = (int64_t *)(r->pool + i * (int64_t)sizeof(int64_t));
}

static void redirect_free(lb_array *a, struct redirect *r)
{
    if (r->pool)
        munmap(r->pool, a->bytes);
    if (r->data)
        munmap(r->data, a->bytes);
    if (r->list)
        munmap(r->list, a->bytes);
    if (r->cache)
        munmap(r->cache, sizeof *r->cache);
    free(r->state);
    free(r);
}

static int redirect_create(lb_array *a)
{
    struct redirect *r = calloc(1, sizeof *r);
    if (!r)
        return LB_ENOMEM;
    void *pool = mmap(NULL, a->bytes, PROT_NONE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    r->pool = pool == MAP_FAILED ? NULL : pool;
    r->data = map_rw(a->bytes);
    r->list = map_rw(a->bytes);
    r->state = calloc((size_t)a->n, 1);
    if (a->ops->flags & LB_REDIRECT_DECODE_CACHE)
        r->cache = map_rw(sizeof *r->cache);
    if (!r->pool || !r->data || !r->list || !r->state ||
        ((a->ops->flags & LB_REDIRECT_DECODE_CACHE) && !r->cache)) {
        lb_set_error("sigsegv-redirect: cannot map the array", NULL);
        redirect_free(a, r);
        return LB_ENOMEM;
    }
    r->delta = (char *)r->data - r->pool;
    a->priv = r;
    a->handles = r->list;
    fill_list(a);
    int rc = lb_sig_register(SIGSEGV, a, r->pool, a->bytes, redirect_fault);
    if (rc) {
        redirect_free(a, r);
        a->priv = NULL;
    }
    return rc;
}

static int redirect_reset(lb_array *a)
{
    struct redirect *r = a->priv;
    fill_list(a);
    memset(r->state, LB_PAGE_LAZY, (size_t)a->n);
    madvise(r->data, a->bytes, MADV_DONTNEED);      /* fresh pages */
    return LB_OK;
}

static int redirect_force(lb_array *a)
{
    for (int64_t i = 0; i < a->n; i++) {
        int rc = force(a, i);
        if (rc)
            return rc;
    }
    return LB_OK;
}

static void redirect_release(lb_array *a)
{
    lb_sig_unregister(SIGSEGV, a);
    redirect_free(a, a->priv);
}

#define REDIRECT_OPS(NAME, FLAGS)                                              \
    {                                                                          \
        .name = NAME, .access = LB_ACCESS_HANDLES, .signo = SIGSEGV,           \
        .needs_decoder = 1, .granule = 1, .flags = (FLAGS),                    \
        .create = redirect_create, .reset = redirect_reset,                    \
        .force = redirect_force, .release = redirect_release,                  \
        .abort_fill = abort_element,                                           \
    }

const struct lb_variant_ops lb_variant_sigsegv_redirect =
    REDIRECT_OPS("sigsegv-redirect", LB_REDIRECT_DECODE_CACHE);
const struct lb_variant_ops lb_variant_sigsegv_redirect_heal =
    REDIRECT_OPS("sigsegv-redirect-heal",
                 LB_REDIRECT_DECODE_CACHE | LB_REDIRECT_HEAL);
const struct lb_variant_ops lb_variant_sigsegv_redirect_nocache =
    REDIRECT_OPS("sigsegv-redirect-nocache", 0);

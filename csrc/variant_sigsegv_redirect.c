/* sigsegv-redirect: the essay's technique, made safe.
 *
 * Every element is reached through a handle, an address in a reserved
 * PROT_NONE pool with one 8-byte slot per element; the library owns the
 * list of handles (a->handles).  Dereferencing a handle faults; the
 * handler decodes the faulting instruction (Capstone), refuses it unless
 * it is a listed read-only form (read_forms.c), forces the thunks the
 * access covers, and moves the register that holds the handle by the
 * constant distance from the pool to the real values, so the re-executed
 * instruction reads the real object.  Pool slot i maps to value i, so the
 * lookup from faulting address to thunk is O(1): (addr - pool) / 8.
 *
 * The moved register would keep pointing at the values after the
 * instruction, and a second read through it (p[0] + p[1], memcpy, a
 * pointer compare) would skip laziness: an unforced neighbour reads as 0.
 * So the handler also sets the trap flag: the instruction runs once, a
 * SIGTRAP follows, and its handler puts the handle back in the register
 * (unless the instruction overwrote that register whole, e.g.
 * mov (%rbx), %rbx).  An instruction whose data operands include the
 * handle's register (add (%rax), %rax) is refused: its result would
 * depend on the moved value.
 *
 * sigsegv-redirect-essay is the essay's exact version, kept to measure
 * what the safety costs: no single step, the register stays moved.  Its
 * handles may be read only by the suite's own workload loops (code in the
 * handle-reading section, see workloads.c); a fault from anywhere else is
 * refused, and the array gives out no handles and no views.
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
    intptr_t delta;                 /* data - pool */
    struct lb_dcache *cache;        /* NULL when the cache is off */
};

static int force(lb_array *a, int64_t i)
{
    struct redirect *r = a->priv;
    return lb_force_element(a, r->data, i);
}

static int near_pool(const lb_array *a, uintptr_t v)
{
    const struct redirect *r = a->priv;
    uintptr_t lo = (uintptr_t)r->pool;
    return v + NEAR >= lo && v < lo + a->bytes + NEAR;
}

#define TRAP_FLAG 0x100

/* Fail the access: with an unwind point the guarded call returns the
 * message; without one it is printed and the fault is not handled, so the
 * process dies with its crash report. */
static int refuse_at(uintptr_t rip, const char *why)
{
    lb_decode_refuse(rip, why);
    lb_fail(lb_last_error(), NULL);
    return LB_FAULT_NOT_OURS;
}

static int redirect_fault(lb_array *a, void *addr, void *ucv)
{
    (void)addr;
    struct redirect *r = a->priv;
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    uintptr_t rip = (uintptr_t)g[REG_RIP];
    int essay = a->ops->flags & LB_REDIRECT_ESSAY;
    lb_count(&a->c.faults, 1);

    struct lb_tstate *ts = lb_tstate_peek();
    if (!ts || !(ts->armed || ts->in_view || ts->in_read)) {
        lb_fail("sigsegv-redirect: a handle was dereferenced outside a "
                "guarded call and outside lazybench.session() (lazy handles "
                "need the core's decoder and signal stack)", NULL);
        return LB_FAULT_NOT_OURS;
    }
    if (essay && !lb_in_handle_code(rip))
        return refuse_at(rip, "a read outside the suite's workload loops "
                              "(sigsegv-redirect-essay leaves the register "
                              "moved, so only those loops may read its "
                              "handles; use sigsegv-redirect)");

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
    if (reg < 0)
        return refuse_at(rip, "an access where no address register holds "
                              "the handle");

    /* The operand's own address, from the registers: the whole read must
     * lie inside the pool. */
    uintptr_t ea = (uintptr_t)info.disp;
    if (info.base >= 0)
        ea += (uintptr_t)g[info.base];
    if (info.index >= 0)
        ea += (uintptr_t)g[info.index] * info.scale;
    uintptr_t lo_addr = (uintptr_t)r->pool;
    uintptr_t hi_addr = lo_addr + (uintptr_t)a->n * sizeof(int64_t);
    if (ea < lo_addr || ea + info.size > hi_addr || ea + info.size < ea)
        return refuse_at(rip, "a read that reaches outside the array's "
                              "elements");

    uint32_t bit = 1u << reg;
    int restore = 1;
    if (!essay) {
        if (info.data_regs & bit)
            return refuse_at(rip, "an instruction that also uses the "
                                  "handle's register as data");
        if (info.part_writes & bit)
            return refuse_at(rip, "an instruction that overwrites part of "
                                  "the handle's register");
        if (g[REG_EFL] & TRAP_FLAG)
            return refuse_at(rip, "an instruction already single-stepped "
                                  "(trap flag set)");
        restore = !(info.full_writes & bit);
    }

    lb_prof_mark(LB_ST_MARK1);                  /* looked up, decoded */
    int64_t lo = (int64_t)((ea - lo_addr) / sizeof(int64_t));
    int64_t hi = (int64_t)((ea + info.size - 1 - lo_addr) / sizeof(int64_t))
                 + 1;
    for (int64_t i = lo; i < hi; i++) {
        if (force(a, i))
            return LB_FAULT_NOT_OURS;
        if (a->ops->flags & LB_REDIRECT_HEAL)
            __atomic_store_n(&r->list[i], &r->data[i], __ATOMIC_RELEASE);
    }
    lb_prof_mark(LB_ST_MARK2);                  /* forced */
    if (!essay) {
        /* Forcing above may have nested faults and single steps of its
         * own; they are over by now, so the slot is free. */
        ts->step.reg = reg;
        ts->step.restore = restore;
        ts->step.saved = (int64_t)g[reg];
        ts->step.next_rip = rip + info.len;
        ts->step.active = 1;
        g[REG_EFL] |= TRAP_FLAG;
    }
    g[reg] += move;
    return LB_FAULT_HANDLED;
}

int lb_redirect_step(void *ucv)
{
    struct lb_tstate *ts = lb_tstate_peek();
    if (!ts || !ts->step.active)
        return LB_FAULT_NOT_OURS;
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    ts->step.active = 0;
    g[REG_EFL] &= ~(greg_t)TRAP_FLAG;
    if ((uintptr_t)g[REG_RIP] != ts->step.next_rip) {
        char hex[24];
        lb_fmt_hex(hex, sizeof hex, (uint64_t)g[REG_RIP]);
        lb_fail("sigsegv-redirect: the single step after a redirected read "
                "ended at an unexpected address ", hex);
        return LB_FAULT_NOT_OURS;
    }
    if (ts->step.restore)
        g[ts->step.reg] = (greg_t)ts->step.saved;
    return LB_FAULT_HANDLED;
}

static const void *redirect_handle(const lb_array *a, int64_t i)
{
    const struct redirect *r = a->priv;
    return r->pool + i * (int64_t)sizeof(int64_t);
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
    if (a->ops->flags & LB_REDIRECT_DECODE_CACHE)
        r->cache = map_rw(sizeof *r->cache);
    if (!r->pool || !r->data || !r->list ||
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
    if (rc == LB_OK && a->ops->needs_step) {
        /* the single step's trap: no region, only the handler */
        rc = lb_sig_register(SIGTRAP, a, NULL, 0, NULL);
        if (rc)
            lb_sig_unregister(SIGSEGV, a);
    }
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
    memset(a->state, LB_PAGE_LAZY, (size_t)a->n);
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
    if (a->ops->needs_step)
        lb_sig_unregister(SIGTRAP, a);
    lb_sig_unregister(SIGSEGV, a);
    redirect_free(a, a->priv);
}

#define REDIRECT_OPS(NAME, FLAGS, STEP, NO_HANDLES)                           \
    {                                                                          \
        .name = NAME, .access = LB_ACCESS_HANDLES, .signo = SIGSEGV,           \
        .needs_decoder = 1, .needs_step = (STEP), .granule = 1,                \
        .flags = (FLAGS), .create = redirect_create, .reset = redirect_reset,  \
        .force = redirect_force, .release = redirect_release,                  \
        .handle = redirect_handle,                                             \
        .no_handles = (NO_HANDLES),                                            \
    }

const struct lb_variant_ops lb_variant_sigsegv_redirect =
    REDIRECT_OPS("sigsegv-redirect", LB_REDIRECT_DECODE_CACHE, 1, NULL);
const struct lb_variant_ops lb_variant_sigsegv_redirect_heal =
    REDIRECT_OPS("sigsegv-redirect-heal",
                 LB_REDIRECT_DECODE_CACHE | LB_REDIRECT_HEAL, 1, NULL);
const struct lb_variant_ops lb_variant_sigsegv_redirect_nocache =
    REDIRECT_OPS("sigsegv-redirect-nocache", 0, 1, NULL);
const struct lb_variant_ops lb_variant_sigsegv_redirect_essay =
    REDIRECT_OPS("sigsegv-redirect-essay",
                 LB_REDIRECT_DECODE_CACHE | LB_REDIRECT_ESSAY, 0,
                 "sigsegv-redirect-essay gives out no handles: its handler "
                 "leaves the register moved, so only the suite's workload "
                 "loops may read them (use sigsegv-redirect)");

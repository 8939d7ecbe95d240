/* Profiling: where one fault's time goes.
 *
 * A profiled run reads the workload through loops of its own (workloads.c)
 * that arm the access, stamp the time-stamp counter, read, stamp again.
 * While the switch is on, the fault path stamps what happens in between:
 * handler entry and exit (sigdispatch.c), its inner marks (lb_fill_pages
 * for the page variants, the redirect handler), the single step's trap,
 * and for uffd-thread the handler thread's receipt of the event.  Only
 * the profiled thread's own fault is stamped (the owner), at the outermost
 * handler level, so nested faults and other threads' faults leave the
 * stamps alone.  After the access the loop turns the stamps into phases
 * and adds them to the profile's histograms: the handlers store stamps
 * and count, nothing more.
 *
 * Histograms: exact buckets below 64, then 32 buckets per power of two,
 * fixed arrays, so adding never allocates. */
#include "lb_core.h"

#include <stdlib.h>
#include <string.h>

struct lb_prof_state lb_prof;

/* ---- histograms ---------------------------------------------------------- */

#define EXACT 64
#define SUB_BITS 5
#define SUBS (1 << SUB_BITS)
#define FIRST_POW 6                     /* 2^6 == EXACT */
#define NBUCKETS (EXACT + (64 - FIRST_POW) * SUBS)

struct lb_hist {
    uint64_t count, min, max;
    double sum;
    uint64_t b[NBUCKETS];
};

static int bucket_of(uint64_t v)
{
    if (v < EXACT)
        return (int)v;
    int e = 63 - __builtin_clzll(v);            /* >= FIRST_POW */
    int sub = (int)((v >> (e - SUB_BITS)) & (SUBS - 1));
    return EXACT + (e - FIRST_POW) * SUBS + sub;
}

static void bucket_range(int k, uint64_t *lo, uint64_t *hi)
{
    if (k < EXACT) {
        *lo = *hi = (uint64_t)k;
        return;
    }
    int e = (k - EXACT) / SUBS + FIRST_POW;
    uint64_t sub = (uint64_t)((k - EXACT) % SUBS);
    uint64_t width = (uint64_t)1 << (e - SUB_BITS);
    *lo = ((uint64_t)1 << e) + sub * width;
    *hi = *lo + (width - 1);
}

lb_hist *lb_hist_new(void)
{
    return calloc(1, sizeof(lb_hist));
}

void lb_hist_free(lb_hist *h)
{
    free(h);
}

void lb_hist_add(lb_hist *h, uint64_t v)
{
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->count++;
    h->sum += (double)v;
    h->b[bucket_of(v)]++;
}

uint64_t lb_hist_count(const lb_hist *h) { return h->count; }
uint64_t lb_hist_min(const lb_hist *h) { return h->min; }
uint64_t lb_hist_max(const lb_hist *h) { return h->max; }
double lb_hist_sum(const lb_hist *h) { return h->sum; }
int lb_hist_bucket_count(void) { return NBUCKETS; }

uint64_t lb_hist_quantile(const lb_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    if (!(q > 0.0))
        q = 0.0;
    if (q > 1.0)
        q = 1.0;
    double want = q * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (int k = 0; k < NBUCKETS; k++) {
        seen += h->b[k];
        if (seen >= rank) {
            uint64_t lo, hi;
            bucket_range(k, &lo, &hi);
            if (hi > h->max)
                hi = h->max;
            if (hi < h->min)
                hi = h->min;
            return hi;
        }
    }
    return h->max;
}

uint64_t lb_hist_bucket(const lb_hist *h, int k, uint64_t *lo, uint64_t *hi)
{
    if (k < 0 || k >= NBUCKETS) {
        *lo = *hi = 0;
        return 0;
    }
    bucket_range(k, lo, hi);
    return h->b[k];
}

/* ---- the fault path's hooks ---------------------------------------------- */

/* A thread's identity for the owner checks: the address of a
 * thread-local byte (no call, nothing to allocate in a handler). */
static __thread char me __attribute__((tls_model("initial-exec")));

static int mine(void)
{
    return __atomic_load_n(&lb_prof.owner, __ATOMIC_ACQUIRE) == &me;
}

int lb_prof_enter(uint64_t t)
{
    if (!t || lb_prof.thread != &me)
        return 0;
    lb_prof.signals++;
    if (!lb_prof.armed)
        return 0;
    if (lb_prof.level++ == 0 && !lb_prof.st[LB_ST_ENTRY]) {
        lb_prof.st[LB_ST_ENTRY] = t;
        __atomic_store_n(&lb_prof.owner, &me, __ATOMIC_RELEASE);
    }
    return 1;
}

void lb_prof_leave(int handled)
{
    if (--lb_prof.level == 0 && handled && mine() &&
        !lb_prof.st[LB_ST_EXIT])
        lb_prof.st[LB_ST_EXIT] = lb_stamp();
}

void lb_prof_step(uint64_t t)
{
    if (!t || lb_prof.thread != &me)
        return;
    lb_prof.signals++;
    lb_prof.traps++;
    if (lb_prof.armed && lb_prof.level == 0 && lb_prof.st[LB_ST_EXIT] &&
        !lb_prof.st[LB_ST_STEP_ENTRY]) {
        lb_prof.st[LB_ST_STEP_ENTRY] = t;
        lb_prof.st[LB_ST_STEP_EXIT] = lb_stamp();
    }
}

void lb_prof_mark_slow(int slot)
{
    if (lb_prof.level == 1 && mine() && !lb_prof.st[slot])
        lb_prof.st[slot] = lb_stamp();
}

void lb_prof_syscalls_slow(int n)
{
    if (lb_prof.thread == &me || mine())
        __atomic_fetch_add(&lb_prof.syscalls, (uint64_t)n, __ATOMIC_RELAXED);
}

int lb_prof_receive(uint64_t t, uintptr_t addr)
{
    uintptr_t armed = __atomic_load_n(&lb_prof.armed, __ATOMIC_ACQUIRE);
    uintptr_t mask = ~(uintptr_t)(lb_page_size - 1);
    if (!t || !armed || (armed & mask) != (addr & mask) ||
        lb_prof.st[LB_ST_ENTRY])
        return 0;
    lb_prof.st[LB_ST_ENTRY] = t;
    lb_prof.level = 1;
    __atomic_store_n(&lb_prof.owner, &me, __ATOMIC_RELEASE);
    return 1;
}

void lb_prof_resolved(void)
{
    lb_prof.level = 0;
    __atomic_store_n(&lb_prof.owner, NULL, __ATOMIC_RELEASE);
    __atomic_store_n(&lb_prof.done, 1, __ATOMIC_RELEASE);
}

/* ---- the profiled run ------------------------------------------------------ */

struct lb_profile {
    lb_hist *h[LB_PH_COUNT];
    lb_profile_counts c;
};

/* The profile the loops add to, and whether the fault is resolved by
 * another thread (uffd-thread): its stamps are complete only once that
 * thread says so. */
static lb_profile *current;
static int other_thread;
static int dirty;                       /* stamps to clear before arming */
static int busy;                        /* a profiled run in progress */

lb_profile *lb_profile_new(void)
{
    lb_profile *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    for (int k = 0; k < LB_PH_COUNT; k++)
        if (!(p->h[k] = lb_hist_new())) {
            lb_profile_free(p);
            return NULL;
        }
    return p;
}

void lb_profile_free(lb_profile *p)
{
    if (!p)
        return;
    for (int k = 0; k < LB_PH_COUNT; k++)
        lb_hist_free(p->h[k]);
    free(p);
}

const lb_hist *lb_profile_hist(const lb_profile *p, int phase)
{
    return phase >= 0 && phase < LB_PH_COUNT ? p->h[phase] : NULL;
}

void lb_profile_counts_read(const lb_profile *p, lb_profile_counts *out)
{
    *out = p->c;
}

int lb_profiling(void)
{
    return __atomic_load_n(&lb_prof.on, __ATOMIC_RELAXED);
}

void lb_prof_arm(uintptr_t addr)
{
    if (dirty) {
        memset(lb_prof.st, 0, sizeof lb_prof.st);
        lb_prof.level = 0;
        __atomic_store_n(&lb_prof.owner, NULL, __ATOMIC_RELAXED);
        lb_prof.done = 0;
        dirty = 0;
    }
    __atomic_store_n(&lb_prof.armed, addr, __ATOMIC_SEQ_CST);
}

/* Phase from stamp a to stamp b (not earlier: checked) into histogram k. */
static void add_phase(lb_profile *p, int k, uint64_t a, uint64_t b)
{
    lb_hist_add(p->h[k], b - a);
}

void lb_prof_access(uint64_t t0, uint64_t t1)
{
    lb_profile *p = current;
    p->c.accesses++;
    uint64_t *st = lb_prof.st;
    if (!__atomic_load_n(&st[LB_ST_ENTRY], __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&lb_prof.armed, 0, __ATOMIC_SEQ_CST);
        return;
    }
    dirty = 1;
    if (other_thread)
        while (!__atomic_load_n(&lb_prof.done, __ATOMIC_ACQUIRE))
            sched_yield();
    __atomic_store_n(&lb_prof.armed, 0, __ATOMIC_SEQ_CST);
    st[LB_ST_ACCESS] = t0;
    st[LB_ST_RESUME] = t1;
    uint64_t mark2 = st[LB_ST_MARK2];
    uint64_t exit = other_thread ? mark2 : st[LB_ST_EXIT];
    int step = st[LB_ST_STEP_ENTRY] != 0;
    if (!st[LB_ST_MARK1] || !mark2 || !exit) {
        p->c.incomplete++;
        return;
    }
    if (other_thread && t1 < mark2 && t1 >= st[LB_ST_MARK1]) {
        /* woken by the copy, this thread ran before the handler thread
         * returned from it (same CPU, wake-up preemption) */
        p->c.early++;
        mark2 = exit = t1;
    }
    /* in order, or it is no fault's timeline */
    uint64_t seq[8];
    int n = 0;
    seq[n++] = t0;
    seq[n++] = st[LB_ST_ENTRY];
    seq[n++] = st[LB_ST_MARK1];
    seq[n++] = mark2;
    seq[n++] = exit;
    if (step) {
        seq[n++] = st[LB_ST_STEP_ENTRY];
        seq[n++] = st[LB_ST_STEP_EXIT];
    }
    seq[n++] = t1;
    for (int k = 1; k < n; k++)
        if (seq[k] < seq[k - 1]) {
            p->c.skewed++;
            return;
        }
    p->c.faults++;
    add_phase(p, LB_PH_DELIVERY, t0, st[LB_ST_ENTRY]);
    add_phase(p, LB_PH_RESOLVE_A, st[LB_ST_ENTRY], st[LB_ST_MARK1]);
    add_phase(p, LB_PH_RESOLVE_B, st[LB_ST_MARK1], mark2);
    if (!other_thread)
        add_phase(p, LB_PH_RESOLVE_C, mark2, exit);
    if (step) {
        add_phase(p, LB_PH_RESUME, exit, st[LB_ST_STEP_ENTRY]);
        add_phase(p, LB_PH_STEP, st[LB_ST_STEP_ENTRY], st[LB_ST_STEP_EXIT]);
        add_phase(p, LB_PH_STEP_RESUME, st[LB_ST_STEP_EXIT], t1);
    } else {
        add_phase(p, LB_PH_RESUME, exit, t1);
    }
    add_phase(p, LB_PH_TOTAL, t0, t1);
}

struct prof_ctx {
    const lb_workload *w;
    int64_t loops;
    lb_profile *p;
    lb_result *out;
};

static int body_profile(lb_array *a, void *vctx)
{
    struct prof_ctx *ctx = vctx;
    uint64_t sum = 0;
    int64_t elapsed = 0;
    for (int64_t k = 0; k < ctx->loops; k++) {
        int rc = a->ops->reset(a);
        if (rc)
            return rc;
        dirty = 1;
        lb_prof_arm(0);
        int64_t t0 = lb_now_ns();
        rc = lb_prof_loop(a, ctx->w, &sum);
        elapsed += lb_now_ns() - t0;
        if (rc)
            return rc;
        ctx->out->accesses = (int64_t)ctx->p->c.accesses;
    }
    ctx->out->checksum = sum;
    ctx->out->elapsed_ns = elapsed;
    ctx->p->c.elapsed_ns += elapsed;
    return LB_OK;
}

int lb_profile_run(lb_array *a, const lb_workload *w, int64_t loops,
                   lb_profile *p, lb_result *out)
{
    memset(out, 0, sizeof *out);
    struct lb_tstate *ts = lb_tstate_get();
    if (!ts)
        return LB_ENOMEM;
    ts->err[0] = 0;
    if (lb_check(a))
        return LB_ESTATE;
    if (!lb_ops_fault_driven(a->ops)) {
        lb_set_error(a->ops->name, " is not driven by faults: there is no "
                                   "fault to profile");
        return LB_EINVAL;
    }
    if (loops < 1) {
        lb_set_error("loops must be at least 1", NULL);
        return LB_EINVAL;
    }
    if (__atomic_exchange_n(&busy, 1, __ATOMIC_ACQUIRE)) {
        lb_set_error("another profiled run is in progress in this process",
                     NULL);
        return LB_ESTATE;
    }
    memset(&lb_prof, 0, sizeof lb_prof);
    lb_prof.thread = &me;
    current = p;
    other_thread = a->ops->signo == 0;
    dirty = 1;
    __atomic_store_n(&lb_prof.on, 1, __ATOMIC_SEQ_CST);
    struct prof_ctx ctx = {.w = w, .loops = loops, .p = p, .out = out};
    int rc = lb_guarded(a, body_profile, &ctx);
    __atomic_store_n(&lb_prof.on, 0, __ATOMIC_SEQ_CST);
    p->c.signals += lb_prof.signals;
    p->c.traps += lb_prof.traps;
    p->c.syscalls += __atomic_load_n(&lb_prof.syscalls, __ATOMIC_RELAXED);
    memset(&lb_prof, 0, sizeof lb_prof);
    current = NULL;
    __atomic_store_n(&busy, 0, __ATOMIC_RELEASE);
    return rc;
}

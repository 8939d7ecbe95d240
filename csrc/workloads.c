/* Workloads: the timed loops, in C.  Each is written once as a macro over
 * an element-access expression and instantiated per access path, so every
 * variant runs exactly the same loop around its own way of reaching an
 * element.  One more instantiation reads no element but hands each index
 * to a sink: the index streams Python reads by, and the footprints, come
 * from the very loops that are timed. */
#include "lb_core.h"

#include <stdlib.h>
#include <string.h>

static const char *const workload_names[LB_WL_COUNT] = {
    "seq", "random", "strided"
};

const char *lb_workload_name(int k)
{
    return (k >= 0 && k < LB_WL_COUNT) ? workload_names[k] : NULL;
}

static inline uint64_t splitmix_next(uint64_t *s)
{
    *s += LB_GOLDEN;
    return lb_mix64(*s);
}

/* Uniform index in [0, n) without division. */
static inline int64_t bounded(uint64_t r, int64_t n)
{
    return (int64_t)(((unsigned __int128)r * (uint64_t)n) >> 64);
}

static int check_workload(const lb_workload *w, int64_t n);

static int64_t pages_spanned(int64_t n)
{
    return (n + lb_epp - 1) / lb_epp;
}

/* Number of reads a workload makes on n elements: ceil(fraction *
 * population). */
static int64_t reads_of(int64_t n, const lb_workload *w)
{
    int64_t population = w->kind == LB_WL_STRIDED ? pages_spanned(n) : n;
    double want = w->fraction * (double)population;
    int64_t m = (int64_t)want;
    if ((double)m < want)
        m++;
    if (m < 1)
        m = 1;
    if (m > population)
        m = population;
    return m;
}

#define LB_DEFINE_WORKLOADS(SUFFIX, ACCESS_T, READ, ATTR)                      \
    ATTR static uint64_t seq_##SUFFIX(ACCESS_T base, int64_t m)                \
    {                                                                          \
        uint64_t acc = 0;                                                      \
        for (int64_t i = 0; i < m; i++)                                        \
            acc += (uint64_t)READ(base, i);                                    \
        return acc;                                                            \
    }                                                                          \
    ATTR static uint64_t random_##SUFFIX(ACCESS_T base, int64_t m, int64_t n,  \
                                    uint64_t seed)                             \
    {                                                                          \
        uint64_t acc = 0, s = seed;                                            \
        for (int64_t k = 0; k < m; k++)                                        \
            acc += (uint64_t)READ(base, bounded(splitmix_next(&s), n));        \
        return acc;                                                            \
    }                                                                          \
    ATTR static uint64_t strided_##SUFFIX(ACCESS_T base, int64_t m,            \
                                          int64_t step)                        \
    {                                                                          \
        uint64_t acc = 0;                                                      \
        for (int64_t p = 0; p < m; p++)                                        \
            acc += (uint64_t)READ(base, p * step);                             \
        return acc;                                                            \
    }                                                                          \
    static uint64_t run_##SUFFIX(ACCESS_T base, int64_t n,                     \
                                 const lb_workload *w, int64_t m)              \
    {                                                                          \
        switch (w->kind) {                                                     \
        case LB_WL_RANDOM:                                                     \
            return random_##SUFFIX(base, m, n, w->seed);                       \
        case LB_WL_STRIDED:                                                    \
            return strided_##SUFFIX(base, m, lb_epp);                          \
        case LB_WL_SEQ:                                                        \
        default:                                                               \
            return seq_##SUFFIX(base, m);                                      \
        }                                                                      \
    }

#define FLAT_READ(base, i) ((base)[(i)])
LB_DEFINE_WORKLOADS(flat, const int64_t *, FLAT_READ, )

/* The loops that read handles, and the core's own handle read, live in one
 * section: the only code sigsegv-redirect-essay serves (its handler leaves
 * the register moved, which these loops never read again). */
#define HANDLE_CODE __attribute__((noinline, section("lb_handle_text")))
extern const char __start_lb_handle_text[], __stop_lb_handle_text[];

HANDLE_CODE int64_t lb_handle_load(const int64_t *h)
{
    return *(const volatile int64_t *)h;
}

int lb_in_handle_code(uintptr_t rip)
{
    return rip >= (uintptr_t)__start_lb_handle_text &&
           rip < (uintptr_t)__stop_lb_handle_text;
}

#define HANDLES_READ(base, i) (*(base)[(i)])
LB_DEFINE_WORKLOADS(handles, int64_t *const *, HANDLES_READ, HANDLE_CODE)

#define SWCHECK_READ(base, i) lb_swcheck_get((base), (i))
LB_DEFINE_WORKLOADS(swcheck, struct lb_thunk_ref, SWCHECK_READ, )

static uint64_t run_any(const lb_array *a, const lb_workload *w, int64_t m)
{
    switch (a->ops->access) {
    case LB_ACCESS_HANDLES:
        return run_handles(a->handles, a->n, w, m);
    case LB_ACCESS_SWCHECK:
        return run_swcheck(lb_swcheck_ref((lb_array *)a), a->n, w, m);
    case LB_ACCESS_FLAT:
    default:
        return run_flat(a->view, a->n, w, m);
    }
}

/* The profiled loops (profile.c): the same index streams, every access
 * between two stamps.  The handle reads live with the other handle code
 * (sigsegv-redirect-essay serves only that section). */
/* Inlined into each loop, so the load itself lies in the loop's section. */
__attribute__((always_inline)) static inline int64_t
prof_read(const volatile int64_t *p)
{
    lb_prof_arm((uintptr_t)p);
    uint64_t t0 = lb_stamp();
    int64_t v = *p;
    uint64_t t1 = lb_stamp();
    lb_prof_access(t0, t1);
    return v;
}

#define PROF_FLAT_READ(r, i) prof_read(&(r)->view[(i)])
#define PROF_HANDLE_READ(r, i) prof_read((r)->handles[(i)])

LB_DEFINE_WORKLOADS(prof_flat, const struct lb_prof_ref *, PROF_FLAT_READ, )
LB_DEFINE_WORKLOADS(prof_handles, const struct lb_prof_ref *,
                    PROF_HANDLE_READ, HANDLE_CODE)

int lb_prof_loop(lb_array *a, const lb_workload *w, uint64_t *sum)
{
    int rc = check_workload(w, a->n);
    if (rc)
        return rc;
    struct lb_prof_ref r = {a->view, a->handles};
    int64_t m = reads_of(a->n, w);
    switch (a->ops->access) {
    case LB_ACCESS_FLAT:
        *sum = run_prof_flat(&r, a->n, w, m);
        return LB_OK;
    case LB_ACCESS_HANDLES:
        *sum = run_prof_handles(&r, a->n, w, m);
        return LB_OK;
    default:
        return LB_EINVAL;
    }
}

/* Untimed replays: each index the loop would read goes to the sink,
 * which records it and/or marks its page. */
struct index_sink {
    int64_t *out;                   /* the indices in order, or NULL */
    uint8_t *seen;                  /* a bit per page, or NULL */
    int64_t count;                  /* indices so far */
    int64_t pages;                  /* distinct pages among them */
};

static int64_t sink_index(struct index_sink *s, int64_t i)
{
    if (s->out)
        s->out[s->count] = i;
    s->count++;
    if (s->seen) {
        int64_t p = i / lb_epp;
        if (!(s->seen[p >> 3] & (1u << (p & 7)))) {
            s->seen[p >> 3] |= (uint8_t)(1u << (p & 7));
            s->pages++;
        }
    }
    return 0;
}

#define SINK_READ(base, i) sink_index((base), (i))
LB_DEFINE_WORKLOADS(sink, struct index_sink *, SINK_READ, )

struct run_ctx {
    const lb_workload *w;
    int64_t loops;
    int reset;              /* reset before every loop */
    lb_result *out;
};

/* Resets happen outside the timed part.  When there is no reset to do
 * (eager, or warm passes), all loops are timed as one block, so that the
 * clock's own cost does not swamp workloads of a few nanoseconds. */
static int body_run(lb_array *a, void *p)
{
    struct run_ctx *ctx = p;
    int64_t m = reads_of(a->n, ctx->w);
    uint64_t sum = 0;
    int64_t total = 0;
    if (a->ops->reset_noop || !ctx->reset) {
        int64_t t0 = lb_now_ns();
        for (int64_t k = 0; k < ctx->loops; k++) {
            sum = run_any(a, ctx->w, m);
            __asm__ volatile("" : : "r"(sum) : "memory");
        }
        total = lb_now_ns() - t0;
    } else {
        for (int64_t k = 0; k < ctx->loops; k++) {
            if (ctx->reset) {
                int rc = a->ops->reset(a);
                if (rc)
                    return rc;
            }
            int64_t t0 = lb_now_ns();
            sum = run_any(a, ctx->w, m);
            total += lb_now_ns() - t0;
        }
    }
    ctx->out->checksum = sum;
    ctx->out->accesses = m;
    ctx->out->elapsed_ns = total;
    return LB_OK;
}

/* A valid workload over n elements: LB_OK, or LB_EINVAL and why. */
static int check_workload(const lb_workload *w, int64_t n)
{
    if (n < 1) {
        lb_set_error("n must be at least 1", NULL);
        return LB_EINVAL;
    }
    if (w->kind < 0 || w->kind >= LB_WL_COUNT) {
        lb_set_error("unknown workload", NULL);
        return LB_EINVAL;
    }
    if (!(w->fraction > 0.0 && w->fraction <= 1.0)) {
        lb_set_error("touched fraction must be in (0, 1]", NULL);
        return LB_EINVAL;
    }
    return LB_OK;
}

static int run_loops(lb_array *a, const lb_workload *w, int64_t loops,
                     int reset, lb_result *out)
{
    memset(out, 0, sizeof *out);
    int rc = check_workload(w, a->n);
    if (rc)
        return rc;
    if (loops < 1) {
        lb_set_error("loops must be at least 1", NULL);
        return LB_EINVAL;
    }
    struct run_ctx ctx = {.w = w, .loops = loops, .reset = reset, .out = out};
    return lb_guarded(a, body_run, &ctx);
}

int lb_run(lb_array *a, const lb_workload *w, lb_result *out)
{
    return run_loops(a, w, 1, 0, out);
}

int lb_bench(lb_array *a, const lb_workload *w, int64_t loops, int reset,
             lb_result *out)
{
    return run_loops(a, w, loops, reset != 0, out);
}

int lb_workload_footprint(const lb_array *a, const lb_workload *w,
                          int64_t *pages, int64_t *accesses)
{
    int rc = check_workload(w, a->n);
    if (rc)
        return rc;
    int64_t m = reads_of(a->n, w);
    *accesses = m;
    switch (w->kind) {
    case LB_WL_SEQ:
        *pages = (m + lb_epp - 1) / lb_epp;
        return LB_OK;
    case LB_WL_STRIDED:
        *pages = m;
        return LB_OK;
    default:
        break;
    }
    /* Random: replay the same index stream into a page bitmap. */
    struct index_sink sink = {
        .seen = calloc((size_t)(pages_spanned(a->n) + 7) / 8, 1)};
    if (!sink.seen) {
        lb_set_error("out of memory", NULL);
        return LB_ENOMEM;
    }
    run_sink(&sink, a->n, w, m);
    free(sink.seen);
    *pages = sink.pages;
    return LB_OK;
}

int64_t lb_workload_indices(const lb_workload *w, int64_t n, int64_t *out,
                            int64_t cap)
{
    struct lb_tstate *ts = lb_tstate_get();
    if (!ts)
        return LB_ENOMEM;
    ts->err[0] = 0;
    int rc = check_workload(w, n);
    if (rc)
        return rc;
    int64_t m = reads_of(n, w);
    if (out && cap >= m) {
        struct index_sink sink = {.out = out};
        run_sink(&sink, n, w, m);
    }
    return m;
}

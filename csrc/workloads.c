/* Workloads: the timed loops, in C.  Each is written once as a macro over
 * an element-access expression and instantiated per access path, so every
 * variant runs exactly the same loop around its own way of reaching an
 * element.  One more instantiation reads no element but hands each index
 * to a sink: the index streams Python reads by, and the footprints, come
 * from the very loops that are timed. */
#include "lb_core.h"

#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *const workload_names[LB_WL_COUNT] = {
    "seq", "random", "strided", "random-pages"
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
 * population), the population being the elements, or the pages they span
 * for the page workloads (strided, random-pages). */
static int64_t reads_of(int64_t n, const lb_workload *w)
{
    int64_t population =
        (w->kind == LB_WL_STRIDED || w->kind == LB_WL_RANDOM_PAGES)
            ? pages_spanned(n) : n;
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
    ATTR static uint64_t random_pages_##SUFFIX(ACCESS_T base, int64_t m,       \
                                               int64_t npages, int64_t step,   \
                                               uint64_t seed)                  \
    {                                                                          \
        uint64_t acc = 0, s = seed;                                            \
        for (int64_t k = 0; k < m; k++)                                        \
            acc += (uint64_t)READ(                                             \
                base, bounded(splitmix_next(&s), npages) * step);              \
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
        case LB_WL_RANDOM_PAGES:                                               \
            return random_pages_##SUFFIX(base, m, pages_spanned(n), lb_epp,    \
                                         w->seed);                             \
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

/* swcheck over a slice of the array (every lb_bench_threads loop): its
 * slow path needs the element's index in the whole array, so the slice's
 * offset is added to every index (flat memory and handle lists are
 * sliced by moving the base pointer instead). */
struct swcheck_slice {
    struct lb_thunk_ref r;
    int64_t off;
};
#define SWSLICE_READ(base, i) lb_swcheck_get((base).r, (base).off + (i))
LB_DEFINE_WORKLOADS(swslice, struct swcheck_slice, SWSLICE_READ, )

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

/* The reference: every read is the generator's value of the index,
 * computed from the parameters alone (no array; lb_expected). */
struct gen_ref {
    const lb_params *p;
    int64_t off;                    /* the slice's first element */
};

static inline int64_t gen_value(const struct gen_ref *g, int64_t i)
{
    return g->p->generator == LB_GEN_SPIN ? lb_gen_spin(g->p, g->off + i)
                                          : lb_gen_hash(g->p, g->off + i);
}

#define EXPECT_READ(base, i) gen_value((base), (i))
LB_DEFINE_WORKLOADS(expect, const struct gen_ref *, EXPECT_READ, )

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

/* Distinct pages and reads of the workload over n elements. */
static int footprint_of(int64_t n, const lb_workload *w, int64_t *pages,
                        int64_t *accesses)
{
    int64_t m = reads_of(n, w);
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
    /* Random, random-pages: replay the same index stream into a page
     * bitmap. */
    struct index_sink sink = {
        .seen = calloc((size_t)(pages_spanned(n) + 7) / 8, 1)};
    if (!sink.seen) {
        lb_set_error("out of memory", NULL);
        return LB_ENOMEM;
    }
    run_sink(&sink, n, w, m);
    free(sink.seen);
    *pages = sink.pages;
    return LB_OK;
}

int lb_workload_footprint(const lb_array *a, const lb_workload *w,
                          int64_t *pages, int64_t *accesses)
{
    int rc = check_workload(w, a->n);
    if (rc)
        return rc;
    return footprint_of(a->n, w, pages, accesses);
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

/* ---- several threads ---------------------------------------------------- */

#define MAX_THREADS 64

/* Thread t's part of n elements: all of them ("same"), or the elements
 * of pages [t*P/T, (t+1)*P/T), clipped to n (disjoint). */
static void slice_of(int64_t n, int threads, int disjoint, int t,
                     int64_t *off, int64_t *len)
{
    if (!disjoint) {
        *off = 0;
        *len = n;
        return;
    }
    int64_t pages = pages_spanned(n);
    int64_t p0 = (int64_t)t * pages / threads;
    int64_t p1 = (int64_t)(t + 1) * pages / threads;
    int64_t end = p1 * lb_epp < n ? p1 * lb_epp : n;
    *off = p0 * lb_epp;
    *len = end - *off;
}

static int check_threads(int64_t n, const lb_workload *w, int threads,
                         int disjoint)
{
    int rc = check_workload(w, n);
    if (rc)
        return rc;
    if (threads < 1 || threads > MAX_THREADS) {
        lb_set_error("threads must be between 1 and 64", NULL);
        return LB_EINVAL;
    }
    if (disjoint && threads > pages_spanned(n)) {
        char msg[160], num[24];
        size_t k = lb_strlcpy(msg, "disjoint slices need a page per thread: ",
                              sizeof msg);
        lb_fmt_i64(num, sizeof num, threads);
        k += lb_strlcpy(msg + k, num, sizeof msg - k);
        k += lb_strlcpy(msg + k, " threads, but the array spans ",
                        sizeof msg - k);
        lb_fmt_i64(num, sizeof num, pages_spanned(n));
        k += lb_strlcpy(msg + k, num, sizeof msg - k);
        lb_strlcpy(msg + k, " pages", sizeof msg - k);
        lb_set_error(msg, NULL);
        return LB_EINVAL;
    }
    return LB_OK;
}

static void clear_error(void)
{
    struct lb_tstate *ts = lb_tstate_get();
    if (ts)
        ts->err[0] = 0;
}

int lb_threads_footprint(const lb_array *a, const lb_workload *w,
                         int threads, int disjoint, int64_t *pages,
                         int64_t *accesses)
{
    *pages = *accesses = 0;
    clear_error();
    int rc = check_threads(a->n, w, threads, disjoint);
    if (rc)
        return rc;
    if (!disjoint) {
        rc = footprint_of(a->n, w, pages, accesses);
        *accesses *= threads;
        return rc;
    }
    /* Slices are whole pages: their distinct pages add up. */
    for (int t = 0; t < threads; t++) {
        int64_t off, len, p, m;
        slice_of(a->n, threads, 1, t, &off, &len);
        rc = footprint_of(len, w, &p, &m);
        if (rc)
            return rc;
        *pages += p;
        *accesses += m;
    }
    return LB_OK;
}

int lb_expected(const lb_params *p, const lb_workload *w, int threads,
                int disjoint, uint64_t *checksum)
{
    *checksum = 0;
    clear_error();
    int rc = lb_params_check(p);
    if (rc)
        return rc;
    if (p->generator == LB_GEN_RECURRENCE) {
        lb_set_error("the recurrence generator has no direct reference: its "
                     "elements depend on the chain before them", NULL);
        return LB_EUNAVAIL;
    }
    rc = check_threads(p->n, w, threads, disjoint);
    if (rc)
        return rc;
    uint64_t sum = 0;
    for (int t = 0; t < (disjoint ? threads : 1); t++) {
        int64_t off, len;
        slice_of(p->n, threads, disjoint, t, &off, &len);
        struct gen_ref g = {.p = p, .off = off};
        sum += run_expect(&g, len, w, reads_of(len, w));
    }
    /* "same": every thread reads the same stream */
    *checksum = disjoint ? sum : sum * (uint64_t)threads;
    return LB_OK;
}

/* The threads of lb_bench_threads.  Each enters a guarded call once (its
 * own signal stack, decoder and unwind point, as any caller of lb_run
 * gets), then runs one loop per release: it waits on `go`, reads its
 * slice, stamps its end and arrives at `done`.  The main thread resets
 * the array between loops, while they wait.  Waiting is on futexes, so
 * waiting threads leave the CPUs to the ones working. */
struct team;

struct worker {
    struct team *tm;
    int t;
    int64_t off, len, m;        /* its slice and its reads */
    pthread_t thread;
    uint64_t sum;               /* checksum of its last loop */
    int64_t end;                /* CLOCK_MONOTONIC at its last loop's end */
    int entered;                /* reached its guarded body */
    int rc;                     /* its status, and the message with it */
    char err[256];
};

struct team {
    lb_array *a;
    const lb_workload *w;
    int threads;
    int64_t loops;
    int go;                     /* futex: loops released so far */
    int stop;                   /* leave without running more loops */
    int ready;                  /* futex: threads waiting for the first */
    int done;                   /* futex: threads done with this loop */
    struct worker *wk;
};

static void futex_wait(int *word, int val)
{
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake_all(int *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

/* Count one arrival at *word; the last of `of` wakes the waiter. */
static void arrive(int *word, int of)
{
    if (__atomic_add_fetch(word, 1, __ATOMIC_ACQ_REL) >= of)
        futex_wake_all(word);
}

static void wait_count(int *word, int of)
{
    int v;
    while ((v = __atomic_load_n(word, __ATOMIC_ACQUIRE)) < of)
        futex_wait(word, v);
}

static uint64_t run_slice(lb_array *a, const lb_workload *w, int64_t off,
                          int64_t len, int64_t m)
{
    switch (a->ops->access) {
    case LB_ACCESS_HANDLES:
        return run_handles(a->handles + off, len, w, m);
    case LB_ACCESS_SWCHECK: {
        /* the sliced loop for every placement (offset 0 for "same"), so
         * that 1 and several threads time the same code */
        struct swcheck_slice s = {lb_swcheck_ref(a), off};
        return run_swslice(s, len, w, m);
    }
    case LB_ACCESS_FLAT:
    default:
        return run_flat(a->view + off, len, w, m);
    }
}

static int worker_body(lb_array *a, void *p)
{
    struct worker *k = p;
    struct team *tm = k->tm;
    k->entered = 1;
    arrive(&tm->ready, tm->threads);
    for (int64_t loop = 0; loop < tm->loops; loop++) {
        int g;
        while ((g = __atomic_load_n(&tm->go, __ATOMIC_ACQUIRE)) <= loop &&
               !__atomic_load_n(&tm->stop, __ATOMIC_ACQUIRE))
            futex_wait(&tm->go, g);
        if (__atomic_load_n(&tm->stop, __ATOMIC_ACQUIRE))
            break;
        uint64_t sum = run_slice(a, tm->w, k->off, k->len, k->m);
        k->end = lb_now_ns();
        k->sum = sum;
        arrive(&tm->done, tm->threads);
    }
    return LB_OK;
}

static void *worker_main(void *p)
{
    struct worker *k = p;
    struct team *tm = k->tm;
    /* the core's faults must reach this thread, whatever the creator
     * blocked */
    sigset_t faults;
    sigemptyset(&faults);
    sigaddset(&faults, SIGSEGV);
    sigaddset(&faults, SIGBUS);
    sigaddset(&faults, SIGTRAP);
    pthread_sigmask(SIG_UNBLOCK, &faults, NULL);
    int rc = lb_guarded(tm->a, worker_body, k);
    if (rc) {
        lb_strlcpy(k->err, lb_last_error(), sizeof k->err);
        k->end = lb_now_ns();
        __atomic_store_n(&k->rc, rc, __ATOMIC_RELEASE);
        /* failed inside a loop (a lazy evaluation), or before the first */
        arrive(k->entered ? &tm->done : &tm->ready, tm->threads);
    }
    return NULL;
}

/* The first thread's failure, as the main thread's status and message. */
static int team_error(const struct team *tm)
{
    for (int t = 0; t < tm->threads; t++) {
        const struct worker *k = &tm->wk[t];
        int rc = __atomic_load_n(&k->rc, __ATOMIC_ACQUIRE);
        if (!rc)
            continue;
        char prefix[64], num[24];
        size_t n = lb_strlcpy(prefix, "thread ", sizeof prefix);
        lb_fmt_i64(num, sizeof num, t);
        n += lb_strlcpy(prefix + n, num, sizeof prefix - n);
        n += lb_strlcpy(prefix + n, " of ", sizeof prefix - n);
        lb_fmt_i64(num, sizeof num, tm->threads);
        n += lb_strlcpy(prefix + n, num, sizeof prefix - n);
        lb_strlcpy(prefix + n, ": ", sizeof prefix - n);
        lb_set_error(prefix, k->err);
        return rc;
    }
    return LB_OK;
}

static int body_reset_only(lb_array *a, void *ctx)
{
    (void)ctx;
    return a->ops->reset(a);
}

/* Stop the threads (those still waiting leave), join every one started,
 * free the team. */
static void team_end(struct team *tm, int started)
{
    __atomic_store_n(&tm->stop, 1, __ATOMIC_RELEASE);
    __atomic_add_fetch(&tm->go, 1, __ATOMIC_ACQ_REL);
    futex_wake_all(&tm->go);
    for (int t = 0; t < started; t++)
        pthread_join(tm->wk[t].thread, NULL);
    free(tm->wk);
}

static int bench_threads(lb_array *a, const lb_workload *w, int threads,
                         int disjoint, int64_t loops, lb_result *out)
{
    int rc = check_threads(a->n, w, threads, disjoint);
    if (rc)
        return rc;
    if (loops < 1 || loops > 0x3fffffff) {
        lb_set_error("loops must be between 1 and 2^30 - 1", NULL);
        return LB_EINVAL;
    }
    if (lb_inherited(a))
        return lb_fork_refuse(a);
    struct team tm = {.a = a, .w = w, .threads = threads,
                      .loops = loops};
    tm.wk = calloc((size_t)threads, sizeof *tm.wk);
    if (!tm.wk) {
        lb_set_error("out of memory", NULL);
        return LB_ENOMEM;
    }
    int64_t accesses = 0;
    for (int t = 0; t < threads; t++) {
        struct worker *k = &tm.wk[t];
        k->tm = &tm;
        k->t = t;
        slice_of(a->n, threads, disjoint, t, &k->off, &k->len);
        k->m = reads_of(k->len, w);
        accesses += k->m;
    }
    int started = 0;
    for (; started < threads; started++) {
        int err = pthread_create(&tm.wk[started].thread, NULL, worker_main,
                                 &tm.wk[started]);
        if (err) {
            team_end(&tm, started);
            lb_set_error("cannot start a benchmark thread: ", strerror(err));
            return LB_ESYS;
        }
    }
    wait_count(&tm.ready, threads);
    rc = team_error(&tm);
    int64_t total = 0;
    for (int64_t loop = 0; !rc && loop < loops; loop++) {
        if (!a->ops->reset_noop) {
            rc = lb_guarded(a, body_reset_only, NULL);
            if (rc)
                break;
        }
        __atomic_store_n(&tm.done, 0, __ATOMIC_RELEASE);
        int64_t t0 = lb_now_ns();
        __atomic_store_n(&tm.go, (int)(loop + 1), __ATOMIC_RELEASE);
        futex_wake_all(&tm.go);
        wait_count(&tm.done, threads);
        rc = team_error(&tm);
        int64_t end = t0;
        for (int t = 0; t < threads; t++)
            if (tm.wk[t].end > end)
                end = tm.wk[t].end;
        total += end - t0;
    }
    uint64_t sum = 0;
    for (int t = 0; t < threads; t++)
        sum += tm.wk[t].sum;
    team_end(&tm, started);
    if (rc)
        return rc;
    out->checksum = sum;
    out->accesses = accesses;
    out->elapsed_ns = total;
    return LB_OK;
}

int lb_bench_threads(lb_array *a, const lb_workload *w, int threads,
                     int disjoint, int64_t loops, lb_result *out)
{
    memset(out, 0, sizeof *out);
    clear_error();
    /* Held for the whole call: a release meanwhile leaves the freeing to
     * the last thread out. */
    if (lb_array_get(a))
        return LB_ESTATE;
    int rc = bench_threads(a, w, threads, disjoint, loops, out);
    lb_array_put(a);
    return rc;
}

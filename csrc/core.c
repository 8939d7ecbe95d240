/* lazybench C core: variant registry, life cycle, per-thread state,
 * guarded entry points and the materialisation path shared by variants. */
#include "lb_core.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

size_t lb_page_size = 4096;
const uint64_t lb_golden = LB_GOLDEN;
int64_t lb_epp = 512;

/* The registry, in the order of variants.h. */
static const struct lb_variant_ops *const variants[] = {
#define LB_VARIANT(id) &lb_variant_##id,
#include "variants.h"
#undef LB_VARIANT
};
#define NVARIANTS ((int)(sizeof variants / sizeof variants[0]))

static const char *const generator_names[LB_GEN_COUNT] = {
    "hash", "spin", "recurrence"
};

static pthread_key_t tstate_key;
static pthread_once_t tstate_once = PTHREAD_ONCE_INIT;
static __thread struct lb_tstate *tstate
    __attribute__((tls_model("initial-exec")));
/* Message for failures before a thread state exists (out of memory). */
static const char *no_state_error = "lazybench: out of memory for thread state";

__attribute__((constructor)) static void lb_init(void)
{
    long ps = sysconf(_SC_PAGESIZE);
    if (ps > 0) {
        lb_page_size = (size_t)ps;
        lb_epp = (int64_t)(lb_page_size / sizeof(int64_t));
    }
}

/* ---- small async-signal-safe helpers ---------------------------------- */

size_t lb_strlcpy(char *dst, const char *src, size_t size)
{
    size_t n = 0;
    while (src[n] && n + 1 < size) {
        dst[n] = src[n];
        n++;
    }
    if (size)
        dst[n] = 0;
    return n;
}

void lb_write_stderr(const char *s)
{
    size_t len = strlen(s);
    while (len) {
        ssize_t w = write(2, s, len);
        if (w <= 0)
            return;
        s += w;
        len -= (size_t)w;
    }
}

/* ---- per-thread state --------------------------------------------------- */

static void tstate_free(void *p)
{
    struct lb_tstate *ts = p;
    if (ts->in_view) {          /* a view session never left: our stack */
        stack_t off = {.ss_flags = SS_DISABLE};
        sigaltstack(&off, NULL);
        ts->in_view = 0;
        if (ts->view_a)         /* and its reference on the array */
            lb_array_put(ts->view_a);
        ts->view_a = NULL;
    }
    lb_decoder_close(ts);
    if (ts->scratch)
        munmap(ts->scratch, LB_SCRATCH_BYTES);
    if (ts->altstack)
        munmap(ts->altstack, LB_ALTSTACK_SIZE + lb_page_size);
    munmap(ts, sizeof *ts);
    tstate = NULL;
}

static void tstate_key_init(void)
{
    pthread_key_create(&tstate_key, tstate_free);
}

struct lb_tstate *lb_tstate_peek(void)
{
    return tstate;
}

/* Uses only mmap and pthread_setspecific, so a handler may call it for a
 * thread that faults on lazy memory before it ever entered the core. */
struct lb_tstate *lb_tstate_get(void)
{
    if (tstate)
        return tstate;
    pthread_once(&tstate_once, tstate_key_init);
    void *p = mmap(NULL, sizeof(struct lb_tstate), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    tstate = p;
    pthread_setspecific(tstate_key, p);
    return tstate;
}

static int tstate_altstack(struct lb_tstate *ts)
{
    if (ts->altstack)
        return 0;
    /* A guard page below the stack turns an overflow into a crash rather
     * than silent corruption; MAP_NORESERVE commits only what is used. */
    char *p = mmap(NULL, LB_ALTSTACK_SIZE + lb_page_size,
                   PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    mprotect(p, lb_page_size, PROT_NONE);
    ts->altstack = p;
    return 0;
}

char *lb_scratch(struct lb_tstate *ts, int depth)
{
    if (!ts->scratch) {
        void *p = mmap(NULL, LB_SCRATCH_BYTES, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        ts->scratch = p;
    }
    return ts->scratch + (size_t)depth * LB_MAX_FAULT_AROUND * lb_page_size;
}

/* ---- errors ------------------------------------------------------------- */

void lb_set_error(const char *msg, const char *detail)
{
    struct lb_tstate *ts = lb_tstate_get();
    if (!ts)
        return;
    size_t k = lb_strlcpy(ts->err, msg, sizeof ts->err);
    if (detail && k + 1 < sizeof ts->err)
        lb_strlcpy(ts->err + k, detail, sizeof ts->err - k);
}

static int fail_status(int status, const char *msg, const char *detail)
{
    lb_set_error(msg, detail);
    return status;
}

const char *lb_last_error(void)
{
    struct lb_tstate *ts = lb_tstate_peek();
    if (!ts)
        return no_state_error;
    return ts->err;
}

/* Elements per state word: a page, or the variant's granule. */
static int64_t state_granule(const lb_array *a)
{
    return a->ops->granule ? a->ops->granule : lb_epp;
}

/* Hand elements [lo, hi) back: their state words go back to lazy, so the
 * next access computes them again (a fill interrupted by an error). */
static void abort_fill(lb_array *a, int64_t lo, int64_t hi)
{
    if (!a->state || hi <= lo)
        return;
    int64_t g = state_granule(a);
    lb_set_states(a, lo / g, (hi - 1) / g, LB_PAGE_LAZY);
}

void lb_unwind_fills(struct lb_tstate *ts)
{
    while (ts->depth > 0) {
        struct lb_fill *f = &ts->fills[--ts->depth];
        abort_fill(f->a, f->lo, f->hi);
    }
}

void lb_fail(const char *msg, const char *detail)
{
    lb_set_error(msg, detail);
    struct lb_tstate *ts = lb_tstate_peek();
    if (ts && ts->armed)
        siglongjmp(ts->env, 1);
    /* No guarded entry on this thread: say why before the crash report. */
    lb_write_stderr("lazybench: fatal lazy-evaluation error: ");
    lb_write_stderr(ts ? ts->err : msg);
    lb_write_stderr("\n");
}

/* Decimal formatting without stdio, for messages built in handlers. */
void lb_fmt_i64(char *buf, size_t size, int64_t v)
{
    char tmp[24];
    int k = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[k++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t o = 0;
    if (v < 0 && o + 1 < size)
        buf[o++] = '-';
    while (k && o + 1 < size)
        buf[o++] = tmp[--k];
    buf[o] = 0;
}

/* ---- materialisation ---------------------------------------------------- */

int lb_filling_here(const lb_array *a, int64_t lo, int64_t hi)
{
    struct lb_tstate *ts = lb_tstate_peek();
    if (!ts)
        return 0;
    for (int d = 0; d < ts->depth; d++) {
        const struct lb_fill *f = &ts->fills[d];
        if (f->a == a && f->lo < hi && lo < f->hi)
            return 1;
    }
    return 0;
}

int lb_fill_range(lb_array *a, int64_t lo, int64_t hi, int64_t *buf)
{
    struct lb_tstate *ts = lb_tstate_get();
    if (!ts) {
        lb_write_stderr("lazybench: out of memory in a fault handler\n");
        return LB_ENOMEM;
    }
    if (ts->depth >= LB_MAX_NEST) {
        /* The caller claimed [lo, hi) for this fill: give it back before
         * unwinding, since it is not on the fill stack yet. */
        abort_fill(a, lo, hi);
        char num[24];
        lb_fmt_i64(num, sizeof num, LB_MAX_NEST);
        lb_fail("nested lazy evaluations exceed the supported depth of ",
                num);
        return LB_ELAZY;
    }
    struct lb_fill *f = &ts->fills[ts->depth++];
    f->a = a;
    f->lo = lo;
    f->hi = hi;
    f->next = lo;
    f->buf = buf;
    /* The signal dispatcher measures how much stack one nested level
     * takes from these (see nesting_fits in sigdispatch.c). */
    f->sp = (const char *)__builtin_frame_address(0);
    lb_count_max(&a->c.max_nesting, (uint64_t)ts->depth);
    if (!lb_generate_range(a, lo, hi, buf)) {
        for (int64_t i = lo; i < hi; i++) {
            buf[i - lo] = lb_generate(a, i);
            f->next = i + 1;
        }
    }
    ts->depth--;
    lb_count(&a->c.generator_calls, (uint64_t)(hi - lo));
    return LB_OK;
}

int64_t lb_read(lb_array *a, int64_t j)
{
    if (j < 0 || j >= a->n) {
        char num[24];
        lb_fmt_i64(num, sizeof num, j);
        lb_fail("generator read an element out of range: ", num);
        return 0;
    }
    struct lb_tstate *ts = lb_tstate_peek();
    if (ts) {
        for (int d = ts->depth - 1; d >= 0; d--) {
            const struct lb_fill *f = &ts->fills[d];
            if (f->a != a || j < f->lo || j >= f->hi)
                continue;
            if (j < f->next)
                return f->buf[j - f->lo];
            char num[24];
            lb_fmt_i64(num, sizeof num, j);
            lb_fail("cyclic lazy dependency: element read while it is "
                    "being computed: ", num);
            return 0;
        }
    }
    switch (a->ops->access) {
    case LB_ACCESS_HANDLES:
        return lb_handle_load(a->handles[j]);
    case LB_ACCESS_SWCHECK:
        return lb_swcheck_read(a, j);
    case LB_ACCESS_FLAT:
    default:
        return ((const volatile int64_t *)a->view)[j];
    }
}

/* ---- state words and the page path ----------------------------------- */

/* The window of a fault on `page` given the stream so far (lb_api.h). */
static int64_t fa_window(const lb_fa_state *s, int64_t page)
{
    if (s->window > 0 && page + 1 == s->next) {
        int64_t w = s->window * LB_FA_AUTO_GROWTH;
        return w < LB_FA_AUTO_MAX ? w : LB_FA_AUTO_MAX;
    }
    return 1;
}

int64_t lb_fa_step(lb_fa_state *s, int64_t page)
{
    int64_t w = fa_window(s, page);
    s->window = w;
    s->next = page + w + 1;
    return w;
}

int64_t lb_claim_run(lb_array *a, int64_t page, uint8_t *seen)
{
    uint8_t *state = a->state;
    uint8_t expect = LB_PAGE_LAZY;
    if (!__atomic_compare_exchange_n(&state[page], &expect, LB_PAGE_FILLING,
                                     0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        *seen = expect;
        return -1;
    }
    int64_t window = a->p.fault_around;
    struct lb_tstate *ts = NULL;
    if (window == LB_FAULT_AROUND_AUTO) {
        ts = lb_tstate_get();
        if (ts && ts->fa_array != a) {
            ts->fa_array = a;
            ts->fa.next = ts->fa.window = 0;
        }
        window = ts ? fa_window(&ts->fa, page) : 1;
    }
    int64_t last = page;
    while (last + 1 < a->npages && last + 1 - page < window) {
        expect = LB_PAGE_LAZY;
        if (!__atomic_compare_exchange_n(&state[last + 1], &expect,
                                         LB_PAGE_FILLING, 0, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE))
            break;
        last++;
    }
    if (ts) {
        /* the stream goes on where this run ended, at the window asked */
        ts->fa.window = window;
        ts->fa.next = last + 2;
    }
    return last;
}

void lb_set_states(lb_array *a, int64_t first, int64_t last, uint8_t to)
{
    for (int64_t p = first; p <= last; p++)
        __atomic_store_n(&a->state[p], to, __ATOMIC_RELEASE);
}

int lb_wait_page(lb_array *a, int64_t page)
{
    int64_t lo = page * lb_epp;
    int64_t hi = lo + lb_epp < a->n ? lo + lb_epp : a->n;
    if (lb_filling_here(a, lo, hi)) {
        lb_fail("cyclic lazy dependency: a page's generator reads an "
                "element of the same page that is not computed yet", NULL);
        return LB_ELAZY;
    }
    /* Another thread computes it: wait until it is ready (or was given
     * back after an error, then the access is retried). */
    while (__atomic_load_n(&a->state[page], __ATOMIC_ACQUIRE) ==
           LB_PAGE_FILLING)
        sched_yield();
    return LB_OK;
}

int lb_fill_pages(lb_array *a, int64_t page, int64_t last)
{
    int64_t lo = page * lb_epp;
    int64_t hi = (last + 1) * lb_epp < a->n ? (last + 1) * lb_epp : a->n;
    uint64_t pages = (uint64_t)(last - page + 1);
    struct lb_tstate *ts = lb_tstate_get();
    char *buf = ts ? lb_scratch(ts, ts->depth) : NULL;
    if (!buf) {
        abort_fill(a, lo, hi);
        lb_fail(a->ops->name, ": no buffer to compute the page in");
        return LB_ENOMEM;
    }
    int rc = lb_fill_range(a, lo, hi, (int64_t *)buf);
    if (rc) {
        abort_fill(a, lo, hi);
        return rc;
    }
    lb_prof_mark(LB_ST_MARK1);                  /* computed */
    /* Counted before the installation: installing wakes or lets in
     * other threads (UFFDIO_COPY wakes the faulting one), which may read
     * the counters before this thread runs again. */
    lb_count(&a->c.pages_materialised, pages);
    lb_count(&a->c.elements_materialised, (uint64_t)(hi - lo));
    rc = a->ops->install(a, page, last, buf);
    lb_prof_mark(LB_ST_MARK2);                  /* installed */
    if (rc) {
        __atomic_sub_fetch(&a->c.pages_materialised, pages,
                           __ATOMIC_RELAXED);
        __atomic_sub_fetch(&a->c.elements_materialised, (uint64_t)(hi - lo),
                           __ATOMIC_RELAXED);
        abort_fill(a, lo, hi);
        lb_fail(lb_last_error(), NULL);
        return rc;
    }
    lb_set_states(a, page, last, LB_PAGE_READY);
    return LB_OK;
}

int lb_open_page(lb_array *a, int64_t page)
{
    uint8_t seen = LB_PAGE_LAZY;
    int64_t last = lb_claim_run(a, page, &seen);
    if (last >= 0)
        return lb_fill_pages(a, page, last);
    return seen == LB_PAGE_FILLING ? lb_wait_page(a, page) : LB_OK;
}

int lb_force_pages(lb_array *a)
{
    for (int64_t p = 0; p < a->npages; p++) {
        if (__atomic_load_n(&a->state[p], __ATOMIC_ACQUIRE) == LB_PAGE_READY)
            continue;
        int rc = lb_open_page(a, p);
        if (rc)
            return rc;
    }
    return LB_OK;
}

static void flush_element_counts(struct lb_tstate *ts)
{
    if (ts->batch_a && ts->batch_elements) {
        lb_count(&ts->batch_a->c.elements_materialised, ts->batch_elements);
        lb_count(&ts->batch_a->c.generator_calls, ts->batch_elements);
    }
    ts->batch_a = NULL;
    ts->batch_elements = 0;
}

/* One element evaluated by a generator that reads no other element. */
static void count_element(lb_array *a)
{
    struct lb_tstate *ts = lb_tstate_peek();
    if (ts && ts->armed) {
        if (ts->batch_a != a)
            flush_element_counts(ts);
        ts->batch_a = a;
        ts->batch_elements++;
    } else {
        lb_count(&a->c.elements_materialised, 1);
        lb_count(&a->c.generator_calls, 1);
    }
    lb_count_max(&a->c.max_nesting, 1);  /* a plain load once it is 1 */
}

int lb_force_element(lb_array *a, int64_t *data, int64_t i)
{
    uint8_t *state = a->state;
    for (;;) {
        uint8_t expect = LB_PAGE_LAZY;
        if (__atomic_compare_exchange_n(&state[i], &expect, LB_PAGE_FILLING,
                                        0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            /* hash, spin: no nested read, no failure, no fill record */
            if (lb_generate_range(a, i, i + 1, &data[i])) {
                __atomic_store_n(&state[i], LB_PAGE_READY, __ATOMIC_RELEASE);
                count_element(a);
                return LB_OK;
            }
            int rc = lb_fill_range(a, i, i + 1, &data[i]);
            if (rc) {
                __atomic_store_n(&state[i], LB_PAGE_LAZY, __ATOMIC_RELEASE);
                return rc;
            }
            __atomic_store_n(&state[i], LB_PAGE_READY, __ATOMIC_RELEASE);
            lb_count(&a->c.elements_materialised, 1);
            return LB_OK;
        }
        if (expect == LB_PAGE_READY)
            return LB_OK;
        if (lb_filling_here(a, i, i + 1)) {
            lb_fail("cyclic lazy dependency: an element's generator reads "
                    "the element itself", NULL);
            return LB_ELAZY;
        }
        /* Another thread evaluates it: wait, then look again (it may
         * have been given back after an error). */
        while (__atomic_load_n(&state[i], __ATOMIC_ACQUIRE) ==
               LB_PAGE_FILLING)
            sched_yield();
    }
}

int64_t lb_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* ---- guarded entry points ----------------------------------------------- */

/* Prepare this thread to take `a`'s faults: our alternate stack (the
 * previous one is saved; inside a view session it is already ours), the
 * decoder, the variant's own entry step.  The caller holds a reference
 * on `a` (lb_array_get). */
static int thread_enter(struct lb_tstate *ts, lb_array *a)
{
    if (a && lb_inherited(a))
        return lb_fork_refuse(a);
    if (ts->armed)
        return fail_status(LB_ESTATE,
                           "lazybench core re-entered from a generator", NULL);
    if (a && a->ops->signo) {
        int rc = lb_sig_check(a->ops->signo);
        if (rc == LB_OK && a->ops->needs_step)
            rc = lb_sig_check(SIGTRAP);
        if (rc)
            return rc;
    }
    if (a && a->ops->needs_decoder && lb_decoder_ensure(ts))
        return fail_status(LB_ENOMEM, "cannot open the Capstone decoder",
                           NULL);
    if (tstate_altstack(ts))
        return fail_status(LB_ENOMEM, "cannot map the alternate signal stack",
                           NULL);
    /* the page buffer fills compute into, mapped here and not in a handler */
    if (!lb_scratch(ts, 0))
        return fail_status(LB_ENOMEM, "cannot map the fill buffer", NULL);
    if (ts->in_view)            /* the session did the rest already */
        return LB_OK;
    stack_t ours = {.ss_sp = ts->altstack + lb_page_size,
                    .ss_size = LB_ALTSTACK_SIZE,
                    .ss_flags = 0};
    if (sigaltstack(&ours, &ts->saved_alt))
        return fail_status(LB_ESYS, "sigaltstack failed", NULL);
    if (a && a->ops->enter)
        a->ops->enter(a);
    return LB_OK;
}

static void thread_leave(struct lb_tstate *ts, lb_array *a)
{
    ts->depth = 0;
    if (ts->in_view)
        return;
    if (a && a->ops->leave)
        a->ops->leave(a);
    stack_t back = ts->saved_alt;
    back.ss_flags &= ~SS_ONSTACK;
    sigaltstack(&back, NULL);
}

/* Runs body on this thread's own alternate signal stack (big enough for
 * LB_MAX_NEST nested faults) with an unwind point, so that a failed lazy
 * evaluation returns an error instead of killing the process. */
int lb_guarded(lb_array *a, lb_body_fn body, void *ctx)
{
    struct lb_tstate *ts = lb_tstate_get();
    if (!ts)
        return LB_ENOMEM;
    ts->err[0] = 0;
    /* The call holds the array for its whole duration: a release from
     * another thread meanwhile leaves the freeing to us. */
    if (a && lb_array_get(a))
        return LB_ESTATE;
    int status = thread_enter(ts, a);
    if (status) {
        if (a)
            lb_array_put(a);
        return status;
    }
    volatile int rc = LB_OK;
    if (sigsetjmp(ts->env, 1) == 0) {
        ts->armed = 1;
        rc = body(a, ctx);
    } else {
        lb_unwind_fills(ts);
        rc = LB_ELAZY;
    }
    ts->armed = 0;
    flush_element_counts(ts);
    thread_leave(ts, a);
    if (a)
        lb_array_put(a);
    return rc;
}

/* ---- view sessions ------------------------------------------------------ */

/* Reads of a's memory from outside the core (a Python buffer view) fault
 * like any other read.  A session gives them what a guarded call has,
 * except the unwind point: a lazy-evaluation error inside a view read is
 * fatal (its message is printed, then the process dies with a report). */
int lb_view_enter(lb_array *a)
{
    struct lb_tstate *ts = lb_tstate_get();
    if (!ts)
        return LB_ENOMEM;
    ts->err[0] = 0;
    if (ts->in_view)
        return fail_status(LB_ESTATE, "a view session is already open on "
                                      "this thread", NULL);
    if (lb_array_get(a))        /* held until lb_view_leave */
        return LB_ESTATE;
    int rc = thread_enter(ts, a);
    if (rc == LB_OK) {
        ts->in_view = 1;
        ts->view_a = a;
    } else {
        lb_array_put(a);
    }
    return rc;
}

/* Leaves this thread's session, whichever array is passed: the session
 * knows its own (and drops its reference on it). */
void lb_view_leave(lb_array *a)
{
    (void)a;
    struct lb_tstate *ts = lb_tstate_peek();
    if (!ts || !ts->in_view)
        return;
    lb_array *held = ts->view_a;
    ts->in_view = 0;
    ts->view_a = NULL;
    thread_leave(ts, held);
    if (held)
        lb_array_put(held);
}

const void *lb_view_address(const lb_array *a)
{
    if (a->magic != LB_MAGIC || a->ops->access != LB_ACCESS_FLAT)
        return NULL;
    return a->view;
}

static void view_read_fatal(const char *msg)
{
    lb_write_stderr("lazybench: fatal error in a view read: ");
    lb_write_stderr(msg);
    lb_write_stderr("\n");
    abort();
}

/* One element through the variant's own access path, unguarded (see
 * lb_view_enter): the element reader of views without flat memory.
 * Outside a session, a variant whose reads fault takes them on the core's
 * own signal stack for the duration of the call (as a guarded call does),
 * so nested evaluations never run on a small stack someone else
 * installed (faulthandler's). */
int64_t lb_view_read(lb_array *a, int64_t i)
{
    struct lb_tstate *ts = lb_tstate_get();
    if (!ts)
        view_read_fatal(no_state_error);
    ts->err[0] = 0;
    if (lb_inherited(a)) {          /* a reader made before fork() */
        lb_fork_refuse(a);
        view_read_fatal(ts->err);
    }
    /* Held for the read, unless this thread's session holds it already
     * (the Python-level loops read inside one). */
    int held = ts->in_view && ts->view_a == a;
    if (!held && lb_array_get(a))
        view_read_fatal(ts->err);
    if (a->ops->no_handles)
        view_read_fatal(a->ops->no_handles);
    /* not in a handler here: the decoder may be opened (it mallocs) */
    if (a->ops->needs_decoder && lb_decoder_ensure(ts))
        view_read_fatal("cannot open the Capstone decoder");
    stack_t saved;
    int switched = 0;
    if (a->ops->signo && !ts->in_view && !ts->armed) {
        if (tstate_altstack(ts) || !lb_scratch(ts, 0))
            view_read_fatal("cannot map the alternate signal stack");
        stack_t ours = {.ss_sp = ts->altstack + lb_page_size,
                        .ss_size = LB_ALTSTACK_SIZE,
                        .ss_flags = 0};
        if (sigaltstack(&ours, &saved))
            view_read_fatal("sigaltstack failed");
        switched = 1;
    }
    int outer = ts->in_read;
    ts->in_read = 1;                /* handles may fault here */
    int64_t v = lb_read(a, i);
    ts->in_read = outer;
    if (switched) {
        saved.ss_flags &= ~SS_ONSTACK;
        sigaltstack(&saved, NULL);
    }
    if (!held)
        lb_array_put(a);
    if (ts->err[0]) {
        /* lb_fail has printed the reason; never return a wrong value. */
        abort();
    }
    return v;
}

/* ---- element addresses for user code ------------------------------------ */

int lb_handle(const lb_array *a, int64_t i, uintptr_t *out)
{
    *out = 0;
    if (a->magic != LB_MAGIC)
        return fail_status(LB_ESTATE, "lazy array used after release", NULL);
    if (i < 0 || i >= a->n)
        return fail_status(LB_EINVAL, "index out of range", NULL);
    if (a->ops->no_handles)
        return fail_status(LB_EUNAVAIL, a->ops->no_handles, NULL);
    const void *h;
    if (a->ops->handle)
        h = a->ops->handle(a, i);
    else if (a->ops->access == LB_ACCESS_FLAT)
        h = a->view + i;
    else if (a->ops->access == LB_ACCESS_HANDLES)
        h = a->handles[i];
    else
        return fail_status(LB_EUNAVAIL, a->ops->name,
                           " reaches elements through a state check, not "
                           "an address");
    *out = (uintptr_t)h;
    return LB_OK;
}


struct call_ctx {
    lb_user_fn fn;
    const void *handle;
    void *arg;
    int64_t value;
};

static int body_call(lb_array *a, void *ctx)
{
    (void)a;
    struct call_ctx *c = ctx;
    c->value = c->fn(c->handle, c->arg);
    return LB_OK;
}

int lb_call(lb_array *a, lb_user_fn fn, int64_t i, void *arg, int64_t *out)
{
    uintptr_t h;
    *out = 0;
    int rc = lb_handle(a, i, &h);
    if (rc)
        return rc;
    struct call_ctx c = {.fn = fn, .handle = (const void *)h, .arg = arg};
    rc = lb_guarded(a, body_call, &c);
    *out = c.value;
    return rc;
}

/* ---- public life cycle -------------------------------------------------- */

int lb_variant_count(void)
{
    return NVARIANTS;
}

const char *lb_variant_name(int v)
{
    return (v >= 0 && v < NVARIANTS) ? variants[v]->name : NULL;
}

int lb_variant_available(int v, char *why, size_t len)
{
    if (v < 0 || v >= NVARIANTS) {
        lb_strlcpy(why, "unknown variant", len);
        return 0;
    }
    if (!variants[v]->available)
        return 1;
    return variants[v]->available(why, len);
}

int lb_variant_supports(int v, const lb_params *p, char *why, size_t len)
{
    if (v < 0 || v >= NVARIANTS) {
        lb_strlcpy(why, "unknown variant", len);
        return 0;
    }
    return !variants[v]->supports || variants[v]->supports(p, why, len);
}

int lb_variant_has_fault_around(int v)
{
    return v >= 0 && v < NVARIANTS && variants[v]->has_fault_around;
}

const char *lb_variant_no_handles(int v)
{
    return (v >= 0 && v < NVARIANTS) ? variants[v]->no_handles : NULL;
}

int64_t lb_variant_granule(int v)
{
    if (v < 0 || v >= NVARIANTS)
        return 0;
    return variants[v]->granule ? variants[v]->granule : lb_epp;
}

int lb_variant_base(int v)
{
    return v >= 0 && v < NVARIANTS && variants[v]->base;
}

const char *lb_variant_part(int v, int k)
{
    if (v < 0 || v >= NVARIANTS || k < 0 || k >= LB_MAX_PARTS)
        return NULL;
    return variants[v]->parts[k];
}

const char *lb_variant_joint_floor(int v)
{
    return (v >= 0 && v < NVARIANTS) ? variants[v]->joint_floor : NULL;
}

int lb_variant_signal(int v)
{
    return (v >= 0 && v < NVARIANTS) ? variants[v]->signo : 0;
}

int lb_variant_fault_driven(int v)
{
    return (v >= 0 && v < NVARIANTS) && lb_ops_fault_driven(variants[v]);
}

int lb_variant_single_steps(int v)
{
    return (v >= 0 && v < NVARIANTS) ? variants[v]->needs_step : 0;
}

const char *lb_generator_name(int g)
{
    return (g >= 0 && g < LB_GEN_COUNT) ? generator_names[g] : NULL;
}

int64_t lb_page_elements(void)
{
    return lb_epp;
}

int lb_max_nesting(void)
{
    return LB_MAX_NEST;
}

/* Largest array accepted: 2^40 bytes of address space. */
#define LB_MAX_ELEMENTS ((int64_t)1 << 37)

int64_t lb_max_elements(void)
{
    return LB_MAX_ELEMENTS;
}

/* Most mixing rounds per element of the spin generator. */
#define LB_MAX_SPIN 1000000

int64_t lb_max_spin(void)
{
    return LB_MAX_SPIN;
}

int lb_params_check(const lb_params *params)
{
    if (params->n < 1 || params->n > LB_MAX_ELEMENTS)
        return fail_status(LB_EINVAL,
                           "n must be between 1 and 2^37 elements", NULL);
    if (params->generator < 0 || params->generator >= LB_GEN_COUNT)
        return fail_status(LB_EINVAL, "unknown generator", NULL);
    if (params->spin < 0 || params->spin > LB_MAX_SPIN)
        return fail_status(LB_EINVAL, "spin must be between 0 and 1000000",
                           NULL);
    if ((params->fault_around < 0 &&
         params->fault_around != LB_FAULT_AROUND_AUTO) ||
        params->fault_around > LB_MAX_FAULT_AROUND)
        return fail_status(LB_EINVAL,
                           "fault-around must be between 1 and 64 pages, "
                           "or auto", NULL);
    return LB_OK;
}

int lb_create(int variant, const lb_params *params, lb_array **out)
{
    struct lb_tstate *ts = lb_tstate_get();
    if (!ts)
        return LB_ENOMEM;
    ts->err[0] = 0;
    *out = NULL;
    if (variant < 0 || variant >= NVARIANTS)
        return fail_status(LB_EINVAL, "unknown variant", NULL);
    int bad = lb_params_check(params);
    if (bad)
        return bad;
    if ((params->fault_around > 1 ||
         params->fault_around == LB_FAULT_AROUND_AUTO) &&
        !variants[variant]->has_fault_around)
        return fail_status(LB_EINVAL, variants[variant]->name,
                           " has no fault-around");
    char why[256] = "";
    if (!lb_variant_available(variant, why, sizeof why))
        return fail_status(LB_EUNAVAIL, "variant unavailable: ", why);
    if (variants[variant]->supports &&
        !variants[variant]->supports(params, why, sizeof why))
        return fail_status(LB_EUNAVAIL, why, NULL);

    lb_array *a = calloc(1, sizeof *a);
    if (!a)
        return fail_status(LB_ENOMEM, "out of memory", NULL);
    a->ops = variants[variant];
    a->p = *params;
    if (a->p.fault_around < 1 &&
        a->p.fault_around != LB_FAULT_AROUND_AUTO)
        a->p.fault_around = 1;
    a->n = params->n;
    size_t raw = (size_t)params->n * sizeof(int64_t);
    a->bytes = (raw + lb_page_size - 1) & ~(lb_page_size - 1);
    a->npages = (int64_t)(a->bytes / lb_page_size);
    a->refs = LB_REF_CREATOR;
    a->magic = LB_MAGIC;
    a->gen = __atomic_load_n(&lb_fork_gen, __ATOMIC_RELAXED);
    /* The state words (all lazy), for the variants that materialise
     * through the core: page by page (install) or element by element. */
    if (a->ops->install || a->ops->granule == 1) {
        int64_t g = state_granule(a);
        a->state = calloc((size_t)((a->n + g - 1) / g), 1);
        if (!a->state) {
            free(a);
            return fail_status(LB_ENOMEM, "out of memory", NULL);
        }
    }
    int rc = a->ops->create(a);
    if (rc) {
        a->magic = 0;
        free(a->state);
        free(a);
        return rc;
    }
    lb_fork_track(a);
    *out = a;
    return LB_OK;
}

/* The creation alone is timed: eager computes every element in it; the
 * release after it is not. */
int lb_build_ns(int variant, const lb_params *params, int64_t *ns)
{
    lb_array *a = NULL;
    *ns = 0;
    int64_t t0 = lb_now_ns();
    int rc = lb_create(variant, params, &a);
    int64_t t1 = lb_now_ns();
    if (rc)
        return rc;
    lb_release(a);
    *ns = t1 - t0;
    return LB_OK;
}

static int body_reset(lb_array *a, void *ctx)
{
    (void)ctx;
    return a->ops->reset(a);
}

static int body_force(lb_array *a, void *ctx)
{
    (void)ctx;
    return a->ops->force(a);
}

int lb_reset(lb_array *a)
{
    return lb_guarded(a, body_reset, NULL);
}

int lb_force(lb_array *a)
{
    return lb_guarded(a, body_force, NULL);
}

struct get_ctx {
    int64_t i;
    int64_t value;
};

static int body_get(lb_array *a, void *ctx)
{
    struct get_ctx *g = ctx;
    if (g->i < 0 || g->i >= a->n)
        return fail_status(LB_EINVAL, "index out of range", NULL);
    g->value = lb_read(a, g->i);
    return LB_OK;
}

int lb_get(lb_array *a, int64_t i, int64_t *out)
{
    struct get_ctx g = {.i = i, .value = 0};
    int rc = lb_guarded(a, body_get, &g);
    *out = g.value;
    return rc;
}

/* ---- references ------------------------------------------------------- */

static void array_free(lb_array *a)
{
    lb_fork_untrack(a);
    a->ops->release(a);
    a->magic = 0;
    free(a->state);
    free(a);
}

int lb_check(const lb_array *a)
{
    struct lb_tstate *ts = lb_tstate_get();
    if (!ts)
        return LB_ENOMEM;
    ts->err[0] = 0;
    if (a->magic != LB_MAGIC)
        return fail_status(LB_ESTATE, "lazy array used after release", NULL);
    if (lb_inherited(a))
        return lb_fork_refuse(a);
    return LB_OK;
}

int lb_array_get(lb_array *a)
{
    uint64_t cur = __atomic_load_n(&a->refs, __ATOMIC_ACQUIRE);
    do {
        if (!(cur & LB_REF_CREATOR))
            return fail_status(LB_ESTATE, "lazy array used after release",
                               NULL);
    } while (!__atomic_compare_exchange_n(&a->refs, &cur, cur + 1, 1,
                                          __ATOMIC_ACQ_REL,
                                          __ATOMIC_ACQUIRE));
    return LB_OK;
}

void lb_array_put(lb_array *a)
{
    if (__atomic_sub_fetch(&a->refs, 1, __ATOMIC_ACQ_REL) == 0)
        array_free(a);
}

/* Drops the creator's reference: the array is freed now, or by the last
 * call still in flight when it returns.  Calls that start afterwards get
 * LB_ESTATE while it lives; after that the pointer is gone. */
void lb_release(lb_array *a)
{
    if (!a || a->magic != LB_MAGIC)
        return;
    uint64_t old = __atomic_fetch_and(&a->refs, ~LB_REF_CREATOR,
                                      __ATOMIC_ACQ_REL);
    if (!(old & LB_REF_CREATOR))
        return;                 /* released already, calls still in flight */
    if (old == LB_REF_CREATOR)
        array_free(a);
}

void lb_counters_read(const lb_array *ca, lb_counters *out)
{
    lb_array *a = (lb_array *)ca;
    if (lb_array_get(a)) {
        memset(out, 0, sizeof *out);
        return;
    }
    out->faults = __atomic_load_n(&a->c.faults, __ATOMIC_RELAXED);
    out->pages_materialised =
        __atomic_load_n(&a->c.pages_materialised, __ATOMIC_RELAXED);
    out->elements_materialised =
        __atomic_load_n(&a->c.elements_materialised, __ATOMIC_RELAXED);
    out->generator_calls =
        __atomic_load_n(&a->c.generator_calls, __ATOMIC_RELAXED);
    out->max_nesting = __atomic_load_n(&a->c.max_nesting, __ATOMIC_RELAXED);
    out->decodes = __atomic_load_n(&a->c.decodes, __ATOMIC_RELAXED);
    out->decode_hits = __atomic_load_n(&a->c.decode_hits, __ATOMIC_RELAXED);
    out->decode_misses =
        __atomic_load_n(&a->c.decode_misses, __ATOMIC_RELAXED);
    out->evicted_pages =
        __atomic_load_n(&a->c.evicted_pages, __ATOMIC_RELAXED);
    lb_array_put(a);
}

void lb_counters_clear(lb_array *a)
{
    if (lb_array_get(a))
        return;
    memset(&a->c, 0, sizeof a->c);
    lb_array_put(a);
}

/* ---- facts about the build and the machine ---------------------------- */

const char *lb_compiler(void)
{
#if defined(__clang__)
    return __VERSION__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#else
    return "unknown compiler";
#endif
}

static double monotonic_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double lb_tsc_hz(void)
{
#if defined(__x86_64__) || defined(__i386__)
    /* Ticks over a ~20 ms spin of the monotonic clock.  Under a hypervisor
     * the TSC runs at the host's rate (scaled or not), so this figure
     * follows the host where the CPU model string does not. */
    double t0 = monotonic_s();
    uint64_t c0 = __builtin_ia32_rdtsc();
    double t1;
    uint64_t c1;
    do {
        t1 = monotonic_s();
        c1 = __builtin_ia32_rdtsc();
    } while (t1 - t0 < 0.02);
    return (double)(c1 - c0) / (t1 - t0);
#else
    return 0.0;
#endif
}

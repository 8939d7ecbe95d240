/* Signal dispatch shared by the fault-driven variants.
 *
 * One handler per signal number (SIGSEGV, SIGBUS, and SIGTRAP for the single
 * step of sigsegv-redirect), installed when the
 * first region of that signal is registered.  When the last one goes, the
 * default action (or SIG_IGN) it replaced is put back; a handler function
 * is not, since it may have been disabled or replaced since (faulthandler
 * disabled puts ours back, and its function then returns without doing
 * anything, so a crash would loop in it for ever): ours stays installed
 * and passes every signal on to it, with the checks below.
 *
 * A fault is ours only when it is a real fault (si_code > 0) at an address
 * inside a registered region; everything else is chained to the handler
 * that was installed before ours (Python's faulthandler, a test runner's)
 * or to the default action, so a genuine crash still crashes with its
 * report.
 *
 * Passing a signal on must end a real crash exactly once, whatever order
 * handlers were installed and removed in.  The saved previous handler may
 * be one that returns without fixing the fault (faulthandler once
 * disabled), one that hands the signal back to us (faulthandler restores
 * its own previous handler, possibly ours, and raises the signal again),
 * or, after an install over our own handler, ourselves.  So:
 *  - we never chain to ourselves: installing ours where a handler put
 *    ours back keeps the previous handler saved when ours went in;
 *  - a signal that comes back while this thread is passing it on, or that
 *    a handler on this thread raised again after taking it, is not passed
 *    on again: the process dies by the default action;
 *  - a real fault that comes back unchanged (same thread, signal, address
 *    and registers) after the previous handler returned from it would
 *    loop for ever: it gets the default action too;
 *  - the default action for a real fault is to return with SIG_DFL
 *    installed, so the instruction faults again and the kernel kills the
 *    process at the faulting instruction; a sent signal (si_code <= 0, or
 *    a forged one whose registers show no such fault) is raised again
 *    under SIG_DFL, since nothing would fault again.
 *
 * Nested faults run on the thread's current signal stack.  Outside a
 * guarded call or view session that may be a small one installed by
 * someone else (faulthandler's, a few KiB): before nesting deeper on such
 * a stack the handler checks the room left, and fails with a message
 * naming the cure (lazybench.session) instead of overflowing it.
 *
 * In a child process, regions of arrays created before fork() (an older
 * lb_fork_gen) are never dispatched: a fault there is reported as such
 * and chained, and a new array of the child at the same address is
 * found instead. */
#include "lb_core.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#define LB_MAX_REGIONS 256
#define LB_NSIG 65

struct region {
    lb_array *a;            /* published last, cleared first */
    char *start;
    size_t len;
    int signo;
    unsigned gen;           /* the array's fork generation */
    lb_fault_fn fn;
    int busy;               /* handlers using the slot (see pin) */
};

static struct region regions[LB_MAX_REGIONS];
static int regions_hwm;                 /* slots in use are below this */
static struct sigaction previous[LB_NSIG];
static int users[LB_NSIG];              /* registered regions per signal */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

static void lb_sig_handler(int signo, siginfo_t *si, void *uc);

/* The region of this process holding addr, or NULL; *inherited: a
 * region of an array created before fork() holding it. */
static const struct region *lookup(int signo, const char *addr,
                                   const struct region **inherited)
{
    unsigned gen = __atomic_load_n(&lb_fork_gen, __ATOMIC_RELAXED);
    int hwm = __atomic_load_n(&regions_hwm, __ATOMIC_ACQUIRE);
    for (int k = 0; k < hwm; k++) {
        const struct region *r = &regions[k];
        if (!__atomic_load_n(&r->a, __ATOMIC_ACQUIRE))
            continue;
        if (addr < r->start || addr >= r->start + r->len)
            continue;
        if (r->gen != gen)
            *inherited = r;
        else if (r->signo == signo)
            return r;
    }
    return NULL;
}

/* The region holding addr, marked busy so that lb_sig_unregister waits
 * for this handler before the array can go; unpin when done.  Only for
 * faults outside a guarded call: a guarded call holds a reference on its
 * array already, and its errors unwind past the handler (which would
 * leave the region busy for ever). */
static struct region *pin(int signo, const char *addr,
                          const struct region **inherited)
{
    for (int tries = 0; tries < 3; tries++) {
        struct region *r = (struct region *)lookup(signo, addr, inherited);
        if (!r)
            return NULL;
        __atomic_add_fetch(&r->busy, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&r->a, __ATOMIC_SEQ_CST) && r->signo == signo &&
            addr >= r->start && addr < r->start + r->len)
            return r;
        /* unregistered (or reused) since the lookup */
        __atomic_sub_fetch(&r->busy, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

static void unpin(struct region *r)
{
    __atomic_sub_fetch(&r->busy, 1, __ATOMIC_SEQ_CST);
}

/* ---- nesting on someone else's signal stack ---------------------------- */

/* Room a failing level needs to report: our message and the previous
 * handler's (faulthandler's traceback), with a margin.  Measured: about
 * 2 KiB suffice for both. */
#define LB_REPORT_RESERVE ((size_t)4096)
/* Stack one nested level takes when it cannot be measured. */
#define LB_LEVEL_GUESS ((size_t)8192)

static void fmt_u64(char *buf, size_t size, uint64_t v)
{
    char tmp[24];
    int k = 0;
    do {
        tmp[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    size_t o = 0;
    while (k && o + 1 < size)
        buf[o++] = tmp[--k];
    buf[o] = 0;
}

/* Called for a fault in our region.  Outside the core's own signal stack
 * (a view read outside a session, on faulthandler's small stack), a fault
 * that nests inside another evaluation must leave room for one more level
 * and for a report; when it would not, fail now with a message (a crash
 * report follows) rather than overflow the stack, which the kernel
 * answers with a silent SIGSEGV. */
static int nesting_fits(const ucontext_t *uc)
{
    struct lb_tstate *ts = lb_tstate_peek();
    if (!ts || ts->depth == 0)
        return 1;                       /* not nested */
    /* The kernel saves the thread's alternate stack in the frame (not
     * whether the handler runs on it: ss_flags carries no SS_ONSTACK). */
    const char *lo = uc->uc_stack.ss_sp;
    size_t size = uc->uc_stack.ss_size;
    if ((uc->uc_stack.ss_flags & SS_DISABLE) || !lo)
        return 1;                       /* on the thread's own stack */
    if (ts->altstack && lo == ts->altstack + lb_page_size)
        return 1;                       /* ours: LB_MAX_NEST levels fit */
    const char *here = (const char *)__builtin_frame_address(0);
    if (here < lo || here >= lo + size)
        return 1;                       /* not on it */
    size_t room = (size_t)(here - lo);
    /* One level: from the enclosing fill's frame down to here (the fill,
     * the generator, the nested fault's signal frame, this handler), or
     * the distance between the last two fills when that is larger. */
    size_t level = LB_LEVEL_GUESS;
    const char *f1 = ts->fills[ts->depth - 1].sp;
    if (f1 > here && f1 < lo + size) {
        level = (size_t)(f1 - here);
        if (ts->depth >= 2) {
            const char *f2 = ts->fills[ts->depth - 2].sp;
            if (f2 > f1 && f2 < lo + size && (size_t)(f2 - f1) > level)
                level = (size_t)(f2 - f1);
        }
    }
    if (room >= level + LB_REPORT_RESERVE)
        return 1;
    char num[24], msg[200];
    fmt_u64(num, sizeof num, (uint64_t)ts->depth);
    size_t k = lb_strlcpy(msg, "nested lazy evaluations (", sizeof msg);
    k += lb_strlcpy(msg + k, num, sizeof msg - k);
    k += lb_strlcpy(msg + k, " deep) would overflow this thread's signal "
                             "stack of ", sizeof msg - k);
    fmt_u64(num, sizeof num, (uint64_t)size);
    k += lb_strlcpy(msg + k, num, sizeof msg - k);
    lb_strlcpy(msg + k, " bytes, which is not lazybench's", sizeof msg - k);
    lb_fail(msg, ": read views inside `with lazybench.session(arr):`, "
                 "which takes faults on lazybench's own signal stack");
    return 0;
}

/* ---- passing signals on ------------------------------------------------ */

/* What a thread keeps to pass signals on without looping.  Thread-local
 * storage of the initial-exec model: reading it in a handler allocates
 * nothing (a crash inside malloc must not hang in ours), and every thread
 * has it, including those that never used the core. */
struct sig_thread {
    int chaining;                  /* signal being passed on, or 0 */
    const char *chain_frame;       /* our frame meanwhile */
    uint64_t returned;             /* fingerprint of the last real fault
                                      the previous handler returned from
                                      without changing it; 0: none */
};
static __thread struct sig_thread sig_thread
    __attribute__((tls_model("initial-exec")));

/* A fault the hardware raised and that faults again when the instruction
 * is re-executed, as opposed to a sent signal (si_code <= 0) or one sent
 * with a forged si_code (rt_tgsigqueueinfo): the kernel records the trap
 * in the signal frame, and a forged signal only carries whatever trap the
 * thread took last. */
static int real_fault(const siginfo_t *si, const ucontext_t *uc)
{
    if (si->si_code <= 0)
        return 0;
    const greg_t *g = uc->uc_mcontext.gregs;
    switch (g[REG_TRAPNO]) {
    case 14:                            /* page fault */
        return (uintptr_t)g[REG_CR2] == (uintptr_t)si->si_addr;
    case 5:                             /* bound range */
    case 12:                            /* stack segment */
    case 13:                            /* general protection */
    case 17:                            /* alignment check */
        return 1;
    default:
        return 0;
    }
}

/* Sent by this process itself (raise, kill, sigqueue), the way a handler
 * passes a signal on after taking it. */
static int self_sent(const siginfo_t *si)
{
    return si->si_code <= 0 && si->si_pid == getpid();
}

/* The interrupted code ran on the thread's alternate signal stack: it was
 * a signal handler (or what it called). */
static int interrupted_on_altstack(const ucontext_t *uc)
{
    const char *lo = uc->uc_stack.ss_sp;
    const char *sp = (const char *)uc->uc_mcontext.gregs[REG_RSP];
    if ((uc->uc_stack.ss_flags & SS_DISABLE) || !lo)
        return 0;
    return sp > lo && sp <= lo + uc->uc_stack.ss_size;
}

static uint64_t fingerprint(int signo, const siginfo_t *si,
                            const ucontext_t *uc)
{
    uint64_t h = lb_mix64(((uint64_t)(unsigned)signo << 32) ^
                          (uint32_t)si->si_code);
    h = lb_mix64(h ^ (uint64_t)(uintptr_t)si->si_addr);
    for (int k = 0; k < NGREG; k++)
        h = lb_mix64(h ^ (uint64_t)uc->uc_mcontext.gregs[k]);
    return h | 1;                       /* never 0, which means none */
}

/* End the process by the signal's default action (a real crash ends
 * here exactly once). */
static void die_by_default(int signo, int real)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(signo, &dfl, NULL);
    if (real)
        return;             /* the instruction faults again, and kills */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    raise(signo);
}

static void chain(int signo, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    int real = real_fault(si, uc);
    struct sig_thread *st = &sig_thread;
    const char *here = (const char *)__builtin_frame_address(0);

    /* Back while this thread passes it on: the previous handler called
     * us, or restored us and raised it again.  Passing it on once more
     * would loop (and print its report again).  (A handler that jumped
     * out of the chain leaves `chaining` set, but a later signal does not
     * arrive deeper than the frame it left.) */
    if (st->chaining == signo && here < st->chain_frame) {
        die_by_default(signo, real);
        return;
    }
    /* Raised again by a handler running on this thread (on the signal
     * stack), that took the fault before us: passing it on could reach
     * that very handler again. */
    if (!real && self_sent(si) && interrupted_on_altstack(uc)) {
        die_by_default(signo, real);
        return;
    }
    uint64_t key = real ? fingerprint(signo, si, uc) : 0;
    if (real && st->returned == key) {
        /* The previous handler returned from this very fault without
         * changing anything: it would fault again for ever. */
        die_by_default(signo, real);
        return;
    }

    const struct sigaction *p = &previous[signo];
    void (*action)(int, siginfo_t *, void *) = NULL;
    void (*handler)(int) = NULL;
    if (p->sa_flags & SA_SIGINFO) {
        if (p->sa_sigaction != lb_sig_handler)     /* never ourselves */
            action = p->sa_sigaction;
    } else if (p->sa_handler == SIG_IGN) {
        if (!real)
            return;                       /* a sent signal the app ignores */
    } else if (p->sa_handler != SIG_DFL) {
        handler = p->sa_handler;
    }
    if (!action && !handler) {
        die_by_default(signo, real);
        return;
    }
    int outer = st->chaining;
    const char *outer_frame = st->chain_frame;
    st->chaining = signo;
    st->chain_frame = here;
    if (action)
        action(signo, si, uc);
    else
        handler(signo);
    st->chaining = outer;
    st->chain_frame = outer_frame;
    st->returned = real && fingerprint(signo, si, uc) == key ? key : 0;
}

static void lb_sig_handler(int signo, siginfo_t *si, void *uc)
{
    int saved_errno = errno;
    uint64_t t_in = lb_prof_active() ? lb_stamp() : 0;  /* profiling */
    if (signo == SIGTRAP) {
        /* the single step after a redirected read (sigsegv-redirect) */
        if (si->si_code == TRAP_TRACE &&
            lb_redirect_step(uc) == LB_FAULT_HANDLED) {
            if (t_in)
                lb_prof_step(t_in);
            errno = saved_errno;
            return;
        }
    } else if (si->si_code > 0) {
        const struct region *old = NULL;
        struct lb_tstate *ts = lb_tstate_peek();
        int guarded = ts && ts->armed;
        struct region *r = guarded
            ? (struct region *)lookup(signo, si->si_addr, &old)
            : pin(signo, si->si_addr, &old);
        if (r) {
            lb_array *a = __atomic_load_n(&r->a, __ATOMIC_ACQUIRE);
            int prof = t_in ? lb_prof_enter(t_in) : 0;
            int rc = a && nesting_fits(uc) ? r->fn(a, si->si_addr, uc)
                                           : LB_FAULT_NOT_OURS;
            if (prof)
                lb_prof_leave(rc == LB_FAULT_HANDLED);
            if (!guarded)
                unpin(r);
            if (rc == LB_FAULT_HANDLED) {
                sig_thread.returned = 0;    /* progress since any fault */
                errno = saved_errno;
                return;
            }
        } else if (old) {
            lb_array *a = __atomic_load_n(&old->a, __ATOMIC_ACQUIRE);
            lb_write_stderr("lazybench: fatal: the memory of a ");
            lb_write_stderr(a ? a->ops->name : "lazy");
            lb_write_stderr(" array created before fork() was read in the "
                            "child process, where inherited arrays cannot be "
                            "used\n");
        }
    }
    chain(signo, si, uc);
    errno = saved_errno;
}

static int is_ours(int signo);

static int install(int signo)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = lb_sig_handler;
    /* NODEFER: a generator may fault again while we handle a fault.
     * ONSTACK: nested faults run on the thread's big alternate stack. */
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    /* Ours already (put back by a handler that had saved it): keep the
     * handler saved when ours went in first, never save ourselves. */
    if (is_ours(signo))
        return sigaction(signo, &sa, NULL);
    return sigaction(signo, &sa, &previous[signo]);
}

static int is_ours(int signo)
{
    struct sigaction cur;
    if (sigaction(signo, NULL, &cur))
        return 0;
    return (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == lb_sig_handler;
}

int lb_sig_register(int signo, lb_array *a, void *start, size_t len,
                    lb_fault_fn fn)
{
    if (signo <= 0 || signo >= LB_NSIG)
        return LB_EINVAL;
    pthread_mutex_lock(&reg_lock);
    int slot = -1;
    for (int k = 0; k < LB_MAX_REGIONS; k++)
        if (!regions[k].a) {
            slot = k;
            break;
        }
    if (slot < 0) {
        pthread_mutex_unlock(&reg_lock);
        lb_set_error("too many live lazy arrays (limit 256)", NULL);
        return LB_ENOMEM;
    }
    if (users[signo] == 0 && install(signo)) {
        pthread_mutex_unlock(&reg_lock);
        lb_set_error("sigaction failed", NULL);
        return LB_ESYS;
    }
    users[signo]++;
    struct region *r = &regions[slot];
    r->start = start;
    r->len = len;
    r->signo = signo;
    r->gen = a->gen;
    r->fn = fn;
    __atomic_store_n(&r->a, a, __ATOMIC_RELEASE);
    if (slot + 1 > regions_hwm)
        __atomic_store_n(&regions_hwm, slot + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&reg_lock);
    return LB_OK;
}

void lb_sig_unregister(int signo, lb_array *a)
{
    pthread_mutex_lock(&reg_lock);
    for (int k = 0; k < LB_MAX_REGIONS; k++) {
        struct region *r = &regions[k];
        if (r->a != a || r->signo != signo)
            continue;
        __atomic_store_n(&r->a, NULL, __ATOMIC_SEQ_CST);
        /* a handler still using the region (a thread that faulted on it
         * outside any call) finishes before the array can go */
        while (__atomic_load_n(&r->busy, __ATOMIC_SEQ_CST))
            sched_yield();
        if (--users[signo] == 0 && is_ours(signo) &&
            !(previous[signo].sa_flags & SA_SIGINFO) &&
            (previous[signo].sa_handler == SIG_DFL ||
             previous[signo].sa_handler == SIG_IGN))
            sigaction(signo, &previous[signo], NULL);
        break;
    }
    pthread_mutex_unlock(&reg_lock);
}

/* A thread registering a region while another forks: the child must not
 * inherit the lock taken. */
static void regions_fork_prepare(void)
{
    pthread_mutex_lock(&reg_lock);
}

static void regions_fork_parent(void)
{
    pthread_mutex_unlock(&reg_lock);
}

static void regions_fork_child(void)
{
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    reg_lock = fresh;
}

__attribute__((constructor)) static void sigdispatch_init(void)
{
    pthread_atfork(regions_fork_prepare, regions_fork_parent,
                   regions_fork_child);
}

int lb_sig_check(int signo)
{
    if (is_ours(signo))
        return LB_OK;
    lb_set_error(signo == SIGSEGV ? "the SIGSEGV"
                 : signo == SIGBUS ? "the SIGBUS" : "the SIGTRAP",
                 " handler of lazybench was replaced while lazy arrays are "
                 "alive (was faulthandler.enable() or signal.signal() called "
                 "after creating one?)");
    return LB_ESTATE;
}

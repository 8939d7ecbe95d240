/* Signal dispatch shared by the fault-driven variants.
 *
 * One handler per signal number (SIGSEGV, later SIGBUS), installed when the
 * first region of that signal is registered and restored when the last one
 * goes.  A fault is ours only when it is a real fault (si_code > 0) at an
 * address inside a registered region; everything else is chained to the
 * handler that was installed before ours (Python's faulthandler, a test
 * runner's) or to the default action, so a genuine crash still crashes
 * with its report. */
#include "lb_core.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

#define LB_MAX_REGIONS 256
#define LB_NSIG 65

struct region {
    lb_array *a;            /* published last, cleared first */
    char *start;
    size_t len;
    int signo;
    lb_fault_fn fn;
    int busy;               /* handlers using the slot (see pin) */
};

static struct region regions[LB_MAX_REGIONS];
static int regions_hwm;                 /* slots in use are below this */
static struct sigaction previous[LB_NSIG];
static int users[LB_NSIG];              /* registered regions per signal */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

static void lb_sig_handler(int signo, siginfo_t *si, void *uc);

static const struct region *lookup(int signo, const char *addr)
{
    int hwm = __atomic_load_n(&regions_hwm, __ATOMIC_ACQUIRE);
    for (int k = 0; k < hwm; k++) {
        const struct region *r = &regions[k];
        if (!__atomic_load_n(&r->a, __ATOMIC_ACQUIRE))
            continue;
        if (r->signo == signo && addr >= r->start && addr < r->start + r->len)
            return r;
    }
    return NULL;
}

/* The region holding addr, marked busy so that lb_sig_unregister waits
 * for this handler before the array can go; unpin when done.  Only for
 * faults outside a guarded call: a guarded call holds a reference on its
 * array already, and its errors unwind past the handler (which would
 * leave the region busy for ever). */
static struct region *pin(int signo, const char *addr)
{
    for (int tries = 0; tries < 3; tries++) {
        struct region *r = (struct region *)lookup(signo, addr);
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

static void chain(int signo, siginfo_t *si, void *uc)
{
    const struct sigaction *p = &previous[signo];
    if (p->sa_flags & SA_SIGINFO) {
        if (p->sa_sigaction) {
            p->sa_sigaction(signo, si, uc);
            return;
        }
    } else if (p->sa_handler == SIG_IGN && si->si_code <= 0) {
        return;                           /* a sent signal the app ignores */
    } else if (p->sa_handler != SIG_IGN && p->sa_handler != SIG_DFL) {
        p->sa_handler(signo);
        return;
    }
    /* Default action: die by this signal.  A hardware fault re-executes
     * and kills; a sent one is raised again (SA_NODEFER lets it through). */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(signo, &dfl, NULL);
    if (si->si_code <= 0)
        raise(signo);
}

static void lb_sig_handler(int signo, siginfo_t *si, void *uc)
{
    int saved_errno = errno;
    if (si->si_code > 0) {
        struct lb_tstate *ts = lb_tstate_peek();
        int guarded = ts && ts->armed;
        struct region *r = guarded
            ? (struct region *)lookup(signo, si->si_addr)
            : pin(signo, si->si_addr);
        if (r) {
            lb_array *a = __atomic_load_n(&r->a, __ATOMIC_ACQUIRE);
            int rc = a ? r->fn(a, si->si_addr, uc) : LB_FAULT_NOT_OURS;
            if (!guarded)
                unpin(r);
            if (rc == LB_FAULT_HANDLED) {
                errno = saved_errno;
                return;
            }
        }
    }
    chain(signo, si, uc);
    errno = saved_errno;
}

static int install(int signo)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = lb_sig_handler;
    /* NODEFER: a generator may fault again while we handle a fault.
     * ONSTACK: nested faults run on the thread's big alternate stack. */
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
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
        if (--users[signo] == 0 && is_ours(signo))
            sigaction(signo, &previous[signo], NULL);
        break;
    }
    pthread_mutex_unlock(&reg_lock);
}

int lb_sig_check(int signo)
{
    if (is_ours(signo))
        return LB_OK;
    lb_set_error(signo == SIGSEGV ? "the SIGSEGV" : "the SIGBUS",
                 " handler of lazybench was replaced while lazy arrays are "
                 "alive (was faulthandler.enable() or signal.signal() called "
                 "after creating one?)");
    return LB_ESTATE;
}

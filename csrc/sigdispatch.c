/* Signal dispatch shared by the fault-driven variants.
 *
 * One handler per signal number (SIGSEGV, later SIGBUS), installed when the
 * first region of that signal is registered and restored when the last one
 * goes.  A fault is ours only when it is a real fault (si_code > 0) at an
 * address inside a registered region; everything else is chained to the
 * handler that was installed before ours (Python's faulthandler, a test
 * runner's) or to the default action, so a genuine crash still crashes
 * with its report.
 *
 * In a child process, regions of arrays created before fork() (an older
 * lb_fork_gen) are never dispatched: a fault there is reported as such
 * and chained, and a new array of the child at the same address is
 * found instead. */
#include "lb_core.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#define LB_MAX_REGIONS 256
#define LB_NSIG 65

struct region {
    lb_array *a;            /* published last, cleared first */
    char *start;
    size_t len;
    int signo;
    unsigned gen;           /* the array's fork generation */
    lb_fault_fn fn;
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
        const struct region *old = NULL;
        const struct region *r = lookup(signo, si->si_addr, &old);
        if (r) {
            lb_array *a = __atomic_load_n(&r->a, __ATOMIC_ACQUIRE);
            if (a && r->fn(a, si->si_addr, uc) == LB_FAULT_HANDLED) {
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
        __atomic_store_n(&r->a, NULL, __ATOMIC_RELEASE);
        if (--users[signo] == 0 && is_ours(signo))
            sigaction(signo, &previous[signo], NULL);
        break;
    }
    pthread_mutex_unlock(&reg_lock);
}

/* A thread registering a region while another forks: the child must not
 * inherit the lock taken. */
static void fork_prepare(void)
{
    pthread_mutex_lock(&reg_lock);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&reg_lock);
}

static void fork_child(void)
{
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    reg_lock = fresh;
}

__attribute__((constructor)) static void sigdispatch_init(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
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

/* uffd-thread: lazy pages are userfaultfd missing pages; the faulting
 * thread sleeps in the kernel while a handler thread reads the fault
 * event, computes the page (and, with fault-around, the next lazy pages)
 * and installs it with UFFDIO_COPY, which wakes the faulting thread.
 *
 * The handler thread never touches the registered region and takes no
 * lock a faulting thread may hold (no GIL: it is a plain pthread).  It
 * cannot read lazy elements either, so generators that do (recurrence)
 * are refused.  Placement: the handler on the caller's CPU (`same`), on
 * another CPU (`other`), or wherever the scheduler puts it (`unpinned`);
 * when pinned, the caller is pinned for the duration of each call. */
#include "lb_core.h"

#include <errno.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

enum placement { SAME = 0, OTHER = 1, UNPINNED = 2 };

static int nth_allowed_cpu(int nth)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set))
        return -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set) && nth-- == 0)
            return c;
    return -1;
}

static void pin_self(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static int thread_open_page(lb_array *a, int64_t page)
{
    struct lb_uffd *u = a->priv;
    uint8_t seen = LB_PAGE_LAZY;
    int64_t last = lb_claim_run(a, page, &seen);
    if (last < 0) {
        /* Already installed (a second event for it): wake the waiter. */
        if (seen == LB_PAGE_READY)
            lb_uffd_wake(u->fd, u->region + page * lb_page_size,
                         lb_page_size);
        return LB_OK;
    }
    return lb_fill_pages(a, page, last);
}

static void *handler_main(void *p)
{
    lb_array *a = p;
    struct lb_uffd *u = a->priv;
    if (u->handler_cpu >= 0)
        pin_self(u->handler_cpu);
    /* the buffer lb_fill_pages computes into, mapped here, not per fault */
    struct lb_tstate *ts = lb_tstate_get();
    char *scratch = ts ? lb_scratch(ts, 0) : NULL;
    struct pollfd fds[2] = {{.fd = u->fd, .events = POLLIN},
                            {.fd = u->stopfd, .events = POLLIN}};
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (fds[1].revents)
            break;
        struct uffd_msg msg;
        pthread_mutex_lock(&u->lock);
        ssize_t got = read(u->fd, &msg, sizeof msg);
        uint64_t t_in = lb_prof_active() ? lb_stamp() : 0;  /* profiling */
        if (got == (ssize_t)sizeof msg && msg.event == UFFD_EVENT_PAGEFAULT) {
            char *addr = (char *)(uintptr_t)msg.arg.pagefault.address;
            int64_t page = (int64_t)((addr - u->region) / lb_page_size);
            int prof = t_in && lb_prof_receive(t_in, (uintptr_t)addr);
            if (prof)
                lb_prof_syscalls(2);            /* the poll, the read */
            lb_count(&a->c.faults, 1);
            if (!scratch || thread_open_page(a, page))
                lb_write_stderr("lazybench: uffd-thread could not resolve a "
                                "fault; the faulting thread stays blocked\n");
            if (prof)
                lb_prof_resolved();
        }
        pthread_mutex_unlock(&u->lock);
    }
    return NULL;
}

static int placement_of(const lb_array *a);

/* Reset never overlaps the handler resolving a fault, and drops events
 * still queued from before it: a stale event must not mark a page ready
 * that the reset is about to drop. */
static int thread_reset(lb_array *a)
{
    struct lb_uffd *u = a->priv;
    pthread_mutex_lock(&u->lock);
    struct uffd_msg msg;
    while (read(u->fd, &msg, sizeof msg) == (ssize_t)sizeof msg)
        ;
    int rc = lb_uffd_reset(a);
    pthread_mutex_unlock(&u->lock);
    return rc;
}

static int thread_create(lb_array *a)
{
    struct lb_uffd *u;
    int rc = lb_uffd_create(a, 0, &u);
    if (rc)
        return rc;
    u->handler_cpu = u->caller_cpu = -1;
    int where = placement_of(a);
    if (where != UNPINNED) {
        u->caller_cpu = nth_allowed_cpu(0);
        u->handler_cpu = nth_allowed_cpu(where == SAME ? 0 : 1);
    }
    pthread_mutex_init(&u->lock, NULL);
    u->stopfd = eventfd(0, EFD_CLOEXEC);
    if (u->stopfd < 0 ||
        pthread_create(&u->thread, NULL, handler_main, a)) {
        lb_set_error("uffd-thread: cannot start the handler thread", NULL);
        if (u->stopfd >= 0)
            close(u->stopfd);
        lb_uffd_destroy(a, u);
        a->priv = NULL;
        return LB_ESYS;
    }
    u->has_thread = 1;
    return LB_OK;
}

static int thread_force(lb_array *a)
{
    /* Touch every page from this thread: the handler thread fills them. */
    volatile const int64_t *v = a->view;
    int64_t sum = 0;
    for (int64_t p = 0; p < a->npages; p++)
        sum += v[p * lb_epp];
    (void)sum;
    return LB_OK;
}

static void thread_release(lb_array *a)
{
    struct lb_uffd *u = a->priv;
    if (u->has_thread) {
        uint64_t one = 1;
        if (write(u->stopfd, &one, sizeof one) == sizeof one)
            pthread_join(u->thread, NULL);
        close(u->stopfd);
    }
    lb_uffd_destroy(a, u);
}

static void pin_caller(lb_array *a)
{
    struct lb_uffd *u = a->priv;
    struct lb_tstate *ts = lb_tstate_get();
    if (u->caller_cpu < 0 || !ts)
        return;
    ts->cpus_saved =
        sched_getaffinity(0, sizeof ts->saved_cpus, &ts->saved_cpus) == 0;
    pin_self(u->caller_cpu);
}

static void unpin_caller(lb_array *a)
{
    struct lb_tstate *ts = lb_tstate_peek();
    (void)a;
    if (ts && ts->cpus_saved) {
        sched_setaffinity(0, sizeof ts->saved_cpus, &ts->saved_cpus);
        ts->cpus_saved = 0;
    }
}

static int thread_supports(const lb_params *p, char *why, size_t len)
{
    if (p->generator == LB_GEN_RECURRENCE) {
        lb_strlcpy(why, "uffd-thread does not support the recurrence "
                        "generator: its handler thread would have to read "
                        "lazy elements, which only it can resolve", len);
        return 0;
    }
    return 1;
}

static int available_same(char *why, size_t len)
{
    return lb_uffd_available(why, len);
}

static int available_other(char *why, size_t len)
{
    if (!lb_uffd_available(why, len))
        return 0;
    if (nth_allowed_cpu(1) < 0) {
        lb_strlcpy(why, "needs two CPUs in the process's affinity mask", len);
        return 0;
    }
    return 1;
}

#define THREAD_OPS(NAME, AVAILABLE)                                            \
    {                                                                          \
        .name = NAME, .access = LB_ACCESS_FLAT, .signo = 0,                    \
        .has_fault_around = 1, .available = AVAILABLE,                         \
        .supports = thread_supports, .create = thread_create,                  \
        .reset = thread_reset, .force = thread_force,                         \
        .release = thread_release, .install = lb_uffd_install,                 \
        .enter = pin_caller, .leave = unpin_caller,                            \
        .forked = lb_uffd_forked,                                              \
    }

const struct lb_variant_ops lb_variant_uffd_thread_same =
    THREAD_OPS("uffd-thread-same", available_same);
const struct lb_variant_ops lb_variant_uffd_thread_other =
    THREAD_OPS("uffd-thread-other", available_other);
const struct lb_variant_ops lb_variant_uffd_thread_unpinned =
    THREAD_OPS("uffd-thread-unpinned", available_same);

static int placement_of(const lb_array *a)
{
    if (a->ops == &lb_variant_uffd_thread_same)
        return SAME;
    if (a->ops == &lb_variant_uffd_thread_other)
        return OTHER;
    return UNPINNED;
}

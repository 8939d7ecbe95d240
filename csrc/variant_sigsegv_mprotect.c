/* sigsegv-mprotect: the lazy region starts PROT_NONE; the first access to
 * a page raises SIGSEGV, the handler computes the page's elements and
 * opens the page read-only, and the faulting instruction re-executes.
 * Later accesses to that page cost nothing.
 *
 * The region is a shared mapping of a memfd.  The handler computes the
 * page (and, with fault-around, the next lazy pages) into this thread's
 * page buffer, writes it into the memfd with one pwrite, and only then
 * opens the mapping: another thread can never read a half-computed page.
 * (Filling through a second, writable mapping instead cost one more page
 * fault per page: 7.5 against 7.1 us per page, and 3.0 against 2.1 us at
 * fault-around 16.)  The array's per-page state word makes concurrent
 * faults on one page compute it exactly once; claiming, computing and
 * publishing are the core's (lb_open_page), the pwrite and the mprotect
 * this variant's install step.
 *
 * Mapping budget.  Every run of opened pages between closed ones splits
 * the region into more kernel mappings, and vm.max_map_count bounds the
 * whole process.  Each array counts the mappings its region is split into
 * (opening run [p, last] changes it by [page p-1 closed] + [page last+1
 * closed] - [p-1 open] - [last+1 open], a page outside the region being
 * neither), and the process keeps the total of its live arrays.  An
 * opening that would take the total past the budget fails with a clear
 * error before its mprotect, never with ENOMEM half-way.  The budget is
 * vm.max_map_count, less the mappings the process had besides these
 * regions when its first array was created, less a margin for what it
 * maps later (threads, other arrays, the allocator).  Which pages are
 * opened is kept apart from the state words (`open`, one byte a page),
 * written with the mprotect under a per-array lock, so the neighbours'
 * openness and the mappings agree while one run is opened and the count
 * is exact; the lock is taken only around the mprotect, never while a
 * page is computed (nested faults never meet it). */
#include "lb_core.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#define MAP_MARGIN 4096

struct mprot {
    int fd;
    char *view;             /* PROT_NONE until a page is materialised */
    uint8_t *open;          /* 1 per page mprotect'ed readable (the lock) */
    int64_t maps;           /* kernel mappings the region is split into */
    int lock;               /* held while a run is opened (see above) */
};

static int64_t maps_total;          /* of all live arrays, process-wide */
static int64_t maps_budget;         /* the most maps_total may reach */
static int64_t maps_limit;          /* vm.max_map_count */
static unsigned budget_gen = ~0u;   /* fork generation it was measured in */

static void spin_lock(int *l)
{
    while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
        sched_yield();
}

static void spin_unlock(int *l)
{
    __atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

/* +1 if `page` is closed, -1 if open, 0 outside the region.  Under the
 * array's lock. */
static int64_t neighbour(const lb_array *a, const struct mprot *m,
                         int64_t page)
{
    if (page < 0 || page >= a->npages)
        return 0;
    return m->open[page] ? -1 : 1;
}

static void append(char *buf, size_t size, size_t *k, const char *s)
{
    *k += lb_strlcpy(buf + *k, s, size - *k);
}

static void append_num(char *buf, size_t size, size_t *k, int64_t v)
{
    char num[24];
    lb_fmt_i64(num, sizeof num, v);
    append(buf, size, k, num);
}

/* Take `delta` more mappings from the budget; 0 when that would pass it.
 * Concurrent callers may refuse each other near the budget (each sees
 * the other's share), never let the total pass it.  Async-signal-safe. */
static int reserve(int64_t delta)
{
    int64_t budget = __atomic_load_n(&maps_budget, __ATOMIC_RELAXED);
    int64_t now = __atomic_add_fetch(&maps_total, delta, __ATOMIC_SEQ_CST);
    if (now <= budget)
        return 1;
    __atomic_sub_fetch(&maps_total, delta, __ATOMIC_SEQ_CST);
    return 0;
}

static void budget_error(int64_t page)
{
    int64_t budget = __atomic_load_n(&maps_budget, __ATOMIC_RELAXED);
    char msg[256];
    size_t k = 0;
    append(msg, sizeof msg, &k, "sigsegv-mprotect: opening page ");
    append_num(msg, sizeof msg, &k, page);
    append(msg, sizeof msg, &k, " would take the process past ");
    append_num(msg, sizeof msg, &k, budget);
    append(msg, sizeof msg, &k, " memory mappings (vm.max_map_count is ");
    append_num(msg, sizeof msg, &k, __atomic_load_n(&maps_limit,
                                                    __ATOMIC_RELAXED));
    append(msg, sizeof msg, &k, "); reset or release sigsegv-mprotect "
                                "arrays, or touch fewer scattered pages");
    lb_set_error(msg, NULL);
}

/* Install step (lb_fill_pages): pages [page, last], computed into buf,
 * go into the memfd with one pwrite, then are opened read-only within
 * the mapping budget.  Signal-safe. */
static int mprot_install(lb_array *a, int64_t page, int64_t last,
                         const char *buf)
{
    struct mprot *m = a->priv;
    size_t len = (size_t)(last - page + 1) * lb_page_size;
    off_t off = (off_t)(page * (int64_t)lb_page_size);
    lb_prof_syscalls(2);                        /* pwrite, mprotect */
    if (pwrite(m->fd, buf, len, off) != (ssize_t)len) {
        lb_set_error("sigsegv-mprotect: writing the page into its memfd "
                     "failed", errno == ENOSPC ? " (no space)" : NULL);
        return LB_ESYS;
    }
    spin_lock(&m->lock);
    int64_t delta = neighbour(a, m, page - 1) + neighbour(a, m, last + 1);
    if (delta > 0 && !reserve(delta)) {
        spin_unlock(&m->lock);
        budget_error(page);
        return LB_ELAZY;
    }
    if (mprotect(m->view + page * lb_page_size, len, PROT_READ)) {
        int err = errno;
        if (delta > 0)
            __atomic_sub_fetch(&maps_total, delta, __ATOMIC_SEQ_CST);
        spin_unlock(&m->lock);
        lb_set_error("sigsegv-mprotect: mprotect failed",
                     err == ENOMEM ? " with ENOMEM (vm.max_map_count "
                                     "reached by the process's other "
                                     "mappings?)" : NULL);
        return LB_ESYS;
    }
    memset(m->open + page, 1, (size_t)(last - page + 1));
    __atomic_store_n(&m->maps, m->maps + delta, __ATOMIC_RELAXED);
    if (delta < 0)
        __atomic_add_fetch(&maps_total, delta, __ATOMIC_SEQ_CST);
    spin_unlock(&m->lock);
    return LB_OK;
}

static int mprot_fault(lb_array *a, void *addr, void *ucv)
{
    struct mprot *m = a->priv;
    int64_t page = (int64_t)(((char *)addr - m->view) / lb_page_size);
    lb_count(&a->c.faults, 1);
    /* A store would fault again on the opened, read-only page for ever. */
    const ucontext_t *uc = ucv;
    if (uc->uc_mcontext.gregs[REG_ERR] & 2) {
        lb_fail("sigsegv-mprotect: a store to a lazy element (lazy "
                "elements are read-only)", NULL);
        return LB_FAULT_NOT_OURS;
    }
    return lb_open_page(a, page) == LB_OK ? LB_FAULT_HANDLED
                                          : LB_FAULT_NOT_OURS;
}

static long max_map_count(void)
{
    long v = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = 65530;
        fclose(f);
    }
    return v;
}

/* Lines of /proc/self/maps: the process's mappings, or -1. */
static int64_t count_maps(void)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[16384];
    int64_t lines = 0;
    ssize_t got;
    while ((got = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < got; i++)
            lines += buf[i] == '\n';
    close(fd);
    return got < 0 ? -1 : lines;
}

/* Once per process (and again in a forked child): reading
 * /proc/self/maps costs milliseconds in a large process, too much for
 * every array (the suite creates one per measurement).  No lock: threads
 * measuring at once store about the same numbers, and a lock held by
 * another thread at fork() would stay taken in the child. */
static void measure_budget(void)
{
    unsigned gen = __atomic_load_n(&lb_fork_gen, __ATOMIC_RELAXED);
    if (__atomic_load_n(&budget_gen, __ATOMIC_ACQUIRE) == gen)
        return;
    int64_t limit = max_map_count();
    int64_t lines = count_maps();
    int64_t others = lines - __atomic_load_n(&maps_total, __ATOMIC_SEQ_CST);
    if (lines < 0 || others < 0)
        others = 0;
    __atomic_store_n(&maps_limit, limit, __ATOMIC_RELAXED);
    __atomic_store_n(&maps_budget, limit - others - MAP_MARGIN,
                     __ATOMIC_RELAXED);
    __atomic_store_n(&budget_gen, gen, __ATOMIC_RELEASE);
}

void lb_mappings(const lb_array *a, int64_t *array, int64_t *total,
                 int64_t *budget, int64_t *limit)
{
    *array = 0;
    if (a && a->magic == LB_MAGIC && a->ops == &lb_variant_sigsegv_mprotect &&
        a->priv)
        *array = __atomic_load_n(&((struct mprot *)a->priv)->maps,
                                 __ATOMIC_RELAXED);
    *total = __atomic_load_n(&maps_total, __ATOMIC_SEQ_CST);
    *budget = __atomic_load_n(&maps_budget, __ATOMIC_RELAXED);
    *limit = __atomic_load_n(&maps_limit, __ATOMIC_RELAXED);
}

static void mprot_unmap(lb_array *a, struct mprot *m)
{
    if (m->view && m->view != MAP_FAILED)
        munmap(m->view, a->bytes);
    if (m->fd >= 0)
        close(m->fd);
    free(m->open);
    free(m);
}

static int mprot_create(lb_array *a)
{
    measure_budget();
    struct mprot *m = calloc(1, sizeof *m);
    if (!m)
        return LB_ENOMEM;
    m->fd = -1;
    m->open = calloc((size_t)a->npages, 1);
    m->fd = memfd_create("lazybench-mprotect", MFD_CLOEXEC);
    if (!m->open || m->fd < 0 || ftruncate(m->fd, (off_t)a->bytes)) {
        lb_set_error("sigsegv-mprotect: cannot create the backing memfd: ",
                     strerror(errno));
        mprot_unmap(a, m);
        return LB_ESYS;
    }
    m->view = mmap(NULL, a->bytes, PROT_NONE, MAP_SHARED, m->fd, 0);
    if (m->view == MAP_FAILED) {
        lb_set_error("sigsegv-mprotect: cannot map the array", NULL);
        mprot_unmap(a, m);
        return LB_ENOMEM;
    }
    /* A forked child gets a PROT_NONE reservation instead (see fork.c). */
    madvise(m->view, a->bytes, MADV_DONTFORK);
    a->priv = m;
    a->view = (const int64_t *)m->view;
    int rc = lb_sig_register(SIGSEGV, a, m->view, a->bytes, mprot_fault);
    if (rc) {
        mprot_unmap(a, m);
        a->priv = NULL;
        return rc;
    }
    m->maps = 1;
    __atomic_add_fetch(&maps_total, 1, __ATOMIC_SEQ_CST);
    return LB_OK;
}

/* Back to one PROT_NONE mapping (the kernel merges the pieces). */
static int mprot_reset(lb_array *a)
{
    struct mprot *m = a->priv;
    spin_lock(&m->lock);
    if (mprotect(m->view, a->bytes, PROT_NONE)) {
        spin_unlock(&m->lock);
        lb_set_error("sigsegv-mprotect: reset failed: ", strerror(errno));
        return LB_ESYS;
    }
    memset(a->state, LB_PAGE_LAZY, (size_t)a->npages);
    memset(m->open, 0, (size_t)a->npages);
    __atomic_add_fetch(&maps_total, 1 - m->maps, __ATOMIC_SEQ_CST);
    __atomic_store_n(&m->maps, 1, __ATOMIC_RELAXED);
    spin_unlock(&m->lock);
    if (fallocate(m->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                  (off_t)a->bytes)) {
        lb_set_error("sigsegv-mprotect: reset failed: ", strerror(errno));
        return LB_ESYS;
    }
    return LB_OK;
}

static void mprot_release(lb_array *a)
{
    struct mprot *m = a->priv;
    lb_sig_unregister(SIGSEGV, a);
    __atomic_sub_fetch(&maps_total, m->maps, __ATOMIC_SEQ_CST);
    mprot_unmap(a, m);
}

/* In the child of fork(): the memfd is the parent's data (a hole punched
 * here would drop the parent's pages), so close it; the region was not
 * copied (MADV_DONTFORK): reserve its addresses, one mapping. */
static void mprot_forked(lb_array *a)
{
    struct mprot *m = a->priv;
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
    lb_fork_reserve(m->view, a->bytes);
    __atomic_add_fetch(&maps_total, 1 - m->maps, __ATOMIC_SEQ_CST);
    m->maps = 1;
    m->lock = 0;            /* a parent's thread may have held it */
}

const struct lb_variant_ops lb_variant_sigsegv_mprotect = {
    .name = "sigsegv-mprotect",
    .access = LB_ACCESS_FLAT,
    .signo = SIGSEGV,
    .create = mprot_create,
    .reset = mprot_reset,
    .force = lb_force_pages,
    .release = mprot_release,
    .install = mprot_install,
    .forked = mprot_forked,
    .has_fault_around = 1,
    /* a fault: the signal, the mprotect that opens the page, its values */
    .parts = {"sigsegv-roundtrip", "mprotect", "page-compute"},
};

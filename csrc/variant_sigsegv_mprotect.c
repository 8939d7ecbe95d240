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
 * fault-around 16.)  A per-page state word makes concurrent faults on one
 * page compute it exactly once. */
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

struct mprot {
    int fd;
    char *view;             /* PROT_NONE until a page is materialised */
    uint8_t *state;         /* one per page */
};

static int open_page(lb_array *a, int64_t page)
{
    struct mprot *m = a->priv;
    uint8_t seen = LB_PAGE_LAZY;
    int64_t last = lb_claim_run(a, m->state, page, &seen);
    int64_t lo = page * lb_epp;
    if (last >= 0) {
        int64_t hi = (last + 1) * lb_epp < a->n ? (last + 1) * lb_epp : a->n;
        struct lb_tstate *ts = lb_tstate_get();
        int64_t *buf = ts ? (int64_t *)lb_scratch(ts, ts->depth) : NULL;
        if (!buf) {
            lb_set_pages(m->state, page, last, LB_PAGE_LAZY);
            lb_fail("sigsegv-mprotect: no buffer to compute the page in",
                    NULL);
            return LB_ENOMEM;
        }
        int rc = lb_fill_range(a, lo, hi, buf);
        if (rc) {
            lb_set_pages(m->state, page, last, LB_PAGE_LAZY);
            return rc;
        }
        size_t len = (size_t)(last - page + 1) * lb_page_size;
        off_t off = (off_t)(page * (int64_t)lb_page_size);
        if (pwrite(m->fd, buf, len, off) != (ssize_t)len) {
            lb_set_pages(m->state, page, last, LB_PAGE_LAZY);
            lb_fail("sigsegv-mprotect: writing the page into its memfd "
                    "failed", errno == ENOSPC ? " (no space)" : NULL);
            return LB_ESYS;
        }
        if (mprotect(m->view + page * lb_page_size, len, PROT_READ)) {
            lb_set_pages(m->state, page, last, LB_PAGE_LAZY);
            lb_fail("sigsegv-mprotect: mprotect failed",
                    errno == ENOMEM ? " with ENOMEM (vm.max_map_count "
                                      "reached?)" : NULL);
            return LB_ESYS;
        }
        lb_set_pages(m->state, page, last, LB_PAGE_READY);
        lb_count(&a->c.pages_materialised, (uint64_t)(last - page + 1));
        lb_count(&a->c.elements_materialised, (uint64_t)(hi - lo));
        return LB_OK;
    }
    if (seen == LB_PAGE_FILLING)
        return lb_wait_page(a, m->state, page);
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
    return open_page(a, page) == LB_OK ? LB_FAULT_HANDLED : LB_FAULT_NOT_OURS;
}

static void mprot_abort_fill(lb_array *a, int64_t lo, int64_t hi)
{
    struct mprot *m = a->priv;
    lb_set_pages(m->state, lo / lb_epp, (hi - 1) / lb_epp, LB_PAGE_LAZY);
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

static void mprot_unmap(lb_array *a, struct mprot *m)
{
    if (m->view && m->view != MAP_FAILED)
        munmap(m->view, a->bytes);
    if (m->fd >= 0)
        close(m->fd);
    free(m->state);
    free(m);
}

static int mprot_create(lb_array *a)
{
    /* Pages opened in random order split the mapping, up to one kernel
     * mapping per page; stay well inside vm.max_map_count. */
    long limit = max_map_count() - 4096;
    if (a->npages > limit) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "sigsegv-mprotect: %lld pages may need as many mappings; "
                 "vm.max_map_count allows about %ld",
                 (long long)a->npages, limit);
        lb_set_error(msg, NULL);
        return LB_EINVAL;
    }
    struct mprot *m = calloc(1, sizeof *m);
    if (!m)
        return LB_ENOMEM;
    m->fd = -1;
    m->state = calloc((size_t)a->npages, 1);
    m->fd = memfd_create("lazybench-mprotect", MFD_CLOEXEC);
    if (!m->state || m->fd < 0 || ftruncate(m->fd, (off_t)a->bytes)) {
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
    return LB_OK;
}

static int mprot_reset(lb_array *a)
{
    struct mprot *m = a->priv;
    if (mprotect(m->view, a->bytes, PROT_NONE) ||
        fallocate(m->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                  (off_t)a->bytes)) {
        lb_set_error("sigsegv-mprotect: reset failed: ", strerror(errno));
        return LB_ESYS;
    }
    memset(m->state, LB_PAGE_LAZY, (size_t)a->npages);
    return LB_OK;
}

static int mprot_force(lb_array *a)
{
    for (int64_t p = 0; p < a->npages; p++) {
        int rc = open_page(a, p);
        if (rc)
            return rc;
    }
    return LB_OK;
}

static void mprot_release(lb_array *a)
{
    lb_sig_unregister(SIGSEGV, a);
    mprot_unmap(a, a->priv);
}

/* In the child of fork(): the memfd is the parent's data (a hole punched
 * here would drop the parent's pages), so close it; the region was not
 * copied (MADV_DONTFORK): reserve its addresses. */
static void mprot_forked(lb_array *a)
{
    struct mprot *m = a->priv;
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
    lb_fork_reserve(m->view, a->bytes);
}

const struct lb_variant_ops lb_variant_sigsegv_mprotect = {
    .name = "sigsegv-mprotect",
    .access = LB_ACCESS_FLAT,
    .signo = SIGSEGV,
    .create = mprot_create,
    .reset = mprot_reset,
    .force = mprot_force,
    .release = mprot_release,
    .abort_fill = mprot_abort_fill,
    .forked = mprot_forked,
    .fault_around = 1,
};

/* uffd-minor: sigsegv-mprotect's memfd design without its mprotect.  The
 * array is a read-only MAP_SHARED mapping of a memfd, registered with
 * userfaultfd for missing and minor faults, with UFFD_FEATURE_SIGBUS: the
 * first read of a page raises SIGBUS in the faulting thread, whose
 * handler computes the page (and, with fault-around, the next lazy pages)
 * into the thread's page buffer for its nesting level, writes it into the
 * memfd's page cache with one pwrite, and maps it into the registered
 * range with one UFFDIO_CONTINUE.  The load re-executes against the page
 * table entry UFFDIO_CONTINUE installed: no second fault (perf counts one
 * page fault per page), no mprotect, and the mapping never splits.
 *
 * Why both modes.  Registered for minor faults alone, the first read of a
 * memfd hole is a missing fault, which the kernel resolves by itself with
 * a zero page and no event: the array would read zeros.  Registered for
 * missing faults too, that read raises SIGBUS like any other; once the
 * page is in the page cache, a read through a page table entry that is
 * not there (never installed, or dropped by reclaim or MADV_DONTNEED) is
 * a minor fault, which raises SIGBUS as well, never a silent mapping of
 * the page cache.  UFFDIO_CONTINUE resolves either: with
 * UFFD_FEATURE_SIGBUS no thread waits for the fault, it only has to find
 * the page table entry when it re-executes.  (UFFD_FEATURE_MISSING_SHMEM
 * is an informational bit this registration does not need.)
 *
 * Why pwrite and not a second, writable mapping: the page is complete in
 * the page cache before any thread can map it (the page's state word
 * holds other threads off until UFFDIO_CONTINUE has run), and a writable
 * mapping would cost a write fault per page (sigsegv-mprotect measured
 * it).  Why the mapping is read-only: a store to an element, lazy or
 * computed, faults with SIGSEGV (a protection fault, before userfaultfd
 * is asked), which says why on stderr and then crashes honestly through
 * the previous handler; it never writes a value.
 *
 * Mapping count: one mapping for the array whatever is touched:
 * UFFDIO_CONTINUE installs page table entries and changes no mapping, so
 * vm.max_map_count never limits it (sigsegv-mprotect's budget does not
 * apply).
 *
 * A page whose state word is ready but that faults again has lost its
 * page table entry (reclaim, MADV_DONTNEED) while its values stay in the
 * page cache (only a hole punch removes them, and reset punches before
 * it hands the pages back): it is mapped again with UFFDIO_CONTINUE, not
 * recomputed.
 *
 * fork: the memfd and the userfaultfd are shared with a child (see
 * fork.c).  The mapping is MADV_DONTFORK, so the child gets a PROT_NONE
 * reservation instead, and the child closes both descriptors: it can
 * neither punch holes in nor pwrite into the parent's pages, nor install
 * pages into the parent's range. */
#include "lb_core.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

struct minor {
    int uffd;
    int memfd;
    char *view;             /* read-only, MAP_SHARED, registered */
};

static int minor_available(char *why, size_t len)
{
    return lb_uffd_has_feature(UFFD_FEATURE_MINOR_SHMEM, "MINOR_SHMEM",
                               "Linux 5.14", why, len);
}

/* UFFDIO_CONTINUE of [addr, addr+len).  0, or -errno.  Signal-safe. */
static int map_pages(int uffd, char *addr, size_t len)
{
    while (len) {
        /* mode 0 (wake): nobody waits in SIGBUS mode, and the wake finds
         * an empty queue; the floors time the same call */
        struct uffdio_continue c = {
            .range = {.start = (uint64_t)(uintptr_t)addr, .len = len},
            .mode = 0,
        };
        if (ioctl(uffd, UFFDIO_CONTINUE, &c) == 0)
            return 0;
        int err = errno;
        /* EAGAIN: the mappings were changing; what was mapped stays */
        if (err != EAGAIN)
            return -err;
        size_t done = c.mapped > 0 ? (size_t)c.mapped : 0;
        addr += done;
        len -= done;
    }
    return 0;
}

/* Install step (lb_fill_pages): pages [first, last], computed into buf,
 * go into the page cache with one pwrite, then into the mapping with one
 * UFFDIO_CONTINUE.  Signal-safe. */
static int minor_install(lb_array *a, int64_t first, int64_t last,
                         const char *buf)
{
    struct minor *m = a->priv;
    size_t len = (size_t)(last - first + 1) * lb_page_size;
    off_t off = (off_t)(first * (int64_t)lb_page_size);
    lb_prof_syscalls(2);                        /* pwrite, the ioctl */
    for (size_t done = 0; done < len;) {
        ssize_t w = pwrite(m->memfd, buf + done, len - done,
                           off + (off_t)done);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            lb_set_error("uffd-minor: writing the page into its memfd "
                         "failed", w < 0 && errno == ENOSPC ? " (no space)"
                                                            : NULL);
            return LB_ESYS;
        }
        done += (size_t)w;
    }
    int rc = map_pages(m->uffd, m->view + first * lb_page_size, len);
    if (rc) {
        /* The page cache keeps the values; the pages go back to lazy and
         * the next fault writes and maps them again. */
        lb_set_error("uffd-minor: UFFDIO_CONTINUE failed",
                     rc == -EEXIST ? " (page already mapped)" : NULL);
        return LB_ESYS;
    }
    return LB_OK;
}

static int minor_fault(lb_array *a, void *addr, void *uc)
{
    (void)uc;
    struct minor *m = a->priv;
    int64_t page = (int64_t)(((char *)addr - m->view) / lb_page_size);
    lb_count(&a->c.faults, 1);
    if (__atomic_load_n(&a->state[page], __ATOMIC_ACQUIRE) ==
        LB_PAGE_READY) {
        /* Its values are in the page cache: its page table entry was
         * dropped, or the thread that made it ready mapped it since the
         * fault (EEXIST).  No page (EFAULT): a reset is punching it out,
         * and the read faults again until it is lazy. */
        int rc = map_pages(m->uffd, m->view + page * lb_page_size,
                           lb_page_size);
        if (rc == 0 || rc == -EEXIST || rc == -EFAULT)
            return LB_FAULT_HANDLED;
        lb_fail("uffd-minor: UFFDIO_CONTINUE of a computed page failed",
                NULL);
        return LB_FAULT_NOT_OURS;
    }
    return lb_open_page(a, page) == LB_OK ? LB_FAULT_HANDLED
                                          : LB_FAULT_NOT_OURS;
}

/* SIGSEGV in the region: only a store can raise it (the mapping is
 * readable throughout).  Say so, then let it crash: a store must never
 * go through, and there is nothing to return to. */
static int minor_store(lb_array *a, void *addr, void *ucv)
{
    (void)a, (void)addr;
    const ucontext_t *uc = ucv;
    if (uc->uc_mcontext.gregs[REG_ERR] & 2)
        lb_write_stderr("lazybench: uffd-minor: a store to a lazy element "
                        "(lazy elements are read-only)\n");
    return LB_FAULT_NOT_OURS;
}

static void minor_free(lb_array *a, struct minor *m)
{
    if (m->uffd >= 0)
        close(m->uffd);
    if (m->view)
        munmap(m->view, a->bytes);
    if (m->memfd >= 0)
        close(m->memfd);
    free(m);
}

static int minor_create(lb_array *a)
{
    char why[200];
    struct minor *m = calloc(1, sizeof *m);
    if (!m)
        return LB_ENOMEM;
    m->uffd = m->memfd = -1;
    m->memfd = memfd_create("lazybench-minor", MFD_CLOEXEC);
    if (m->memfd < 0 || ftruncate(m->memfd, (off_t)a->bytes)) {
        lb_set_error("uffd-minor: cannot create the backing memfd: ",
                     strerror(errno));
        minor_free(a, m);
        return LB_ESYS;
    }
    void *view = mmap(NULL, a->bytes, PROT_READ, MAP_SHARED, m->memfd, 0);
    if (view == MAP_FAILED) {
        lb_set_error("uffd-minor: cannot map the array", NULL);
        minor_free(a, m);
        return LB_ENOMEM;
    }
    m->view = view;
    /* Pages one by one, as the variant computes them (a huge page would
     * be one fault for 512 pages, and khugepaged leaves it alone). */
    madvise(m->view, a->bytes, MADV_NOHUGEPAGE);
    /* A forked child gets a PROT_NONE reservation instead (fork.c). */
    madvise(m->view, a->bytes, MADV_DONTFORK);
    m->uffd = lb_uffd_open(UFFD_FEATURE_SIGBUS | UFFD_FEATURE_MINOR_SHMEM,
                           why, sizeof why);
    if (m->uffd < 0) {
        lb_set_error("uffd-minor: ", why);
        minor_free(a, m);
        return LB_EUNAVAIL;
    }
    struct uffdio_register reg = {
        .range = {.start = (uint64_t)(uintptr_t)m->view, .len = a->bytes},
        .mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR,
    };
    int refused = ioctl(m->uffd, UFFDIO_REGISTER, &reg) ? errno : 0;
    if (refused || !(reg.ioctls & ((uint64_t)1 << _UFFDIO_CONTINUE))) {
        lb_set_error("uffd-minor: registering the memfd mapping for "
                     "missing and minor faults failed: ",
                     refused ? strerror(refused)
                             : "UFFDIO_CONTINUE not offered");
        minor_free(a, m);
        return LB_EUNAVAIL;
    }
    a->priv = m;
    a->view = (const int64_t *)m->view;
    int rc = lb_sig_register(SIGBUS, a, m->view, a->bytes, minor_fault);
    if (rc == LB_OK) {
        rc = lb_sig_register(SIGSEGV, a, m->view, a->bytes, minor_store);
        if (rc)
            lb_sig_unregister(SIGBUS, a);
    }
    if (rc) {
        minor_free(a, m);
        a->priv = NULL;
        a->view = NULL;
    }
    return rc;
}

/* Back to all holes: the punch frees the page cache and zaps the page
 * table entries (a read faults again), then the state words go back to
 * lazy (a read in between sees a ready page it cannot map and retries). */
static int minor_reset(lb_array *a)
{
    struct minor *m = a->priv;
    if (fallocate(m->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                  (off_t)a->bytes)) {
        lb_set_error("uffd-minor: reset failed: ", strerror(errno));
        return LB_ESYS;
    }
    memset(a->state, LB_PAGE_LAZY, (size_t)a->npages);
    return LB_OK;
}

static void minor_release(lb_array *a)
{
    lb_sig_unregister(SIGSEGV, a);
    lb_sig_unregister(SIGBUS, a);
    minor_free(a, a->priv);
}

/* In the child of fork(): the memfd holds the parent's pages and the
 * userfaultfd installs into the parent's range; close both.  The mapping
 * was not copied (MADV_DONTFORK): reserve its addresses. */
static void minor_forked(lb_array *a)
{
    struct minor *m = a->priv;
    if (m->uffd >= 0)
        close(m->uffd);
    m->uffd = -1;
    if (m->memfd >= 0)
        close(m->memfd);
    m->memfd = -1;
    lb_fork_reserve(m->view, a->bytes);
}

const struct lb_variant_ops lb_variant_uffd_minor = {
    .name = "uffd-minor",
    .access = LB_ACCESS_FLAT,
    .signo = SIGBUS,
    .has_fault_around = 1,
    .available = minor_available,
    .create = minor_create,
    .reset = minor_reset,
    .force = lb_force_pages,
    .release = minor_release,
    .install = minor_install,
    .forked = minor_forked,
    /* a fault: the signal (from a registered memfd hole: it costs more
     * than sigbus-uffd-roundtrip's from anonymous memory, 6.3 against
     * 4.7 us in one run), the pwrite into the page cache, the
     * UFFDIO_CONTINUE that maps it, its values; and the signal resolved
     * by pwrite and UFFDIO_CONTINUE, timed together */
    .parts = {"sigbus-memfd-roundtrip", "pwrite-page", "uffdio-continue",
              "page-compute"},
    .joint_floor = "sigbus-continue",
};

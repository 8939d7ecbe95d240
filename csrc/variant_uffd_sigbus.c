/* uffd-sigbus: lazy pages are userfaultfd missing pages registered with
 * UFFD_FEATURE_SIGBUS, so a first touch raises SIGBUS in the faulting
 * thread itself; its handler computes the page (and, with fault-around,
 * the next lazy pages) into a per-thread buffer and installs it with
 * UFFDIO_COPY.  No handler thread, no mprotect, no extra mapping. */
#include "lb_core.h"

#include <linux/userfaultfd.h>
#include <sys/mman.h>

static int sigbus_fault(lb_array *a, void *addr, void *uc)
{
    (void)uc;
    struct lb_uffd *u = a->priv;
    lb_count(&a->c.faults, 1);
    int64_t page = (int64_t)(((char *)addr - u->region) / lb_page_size);
    return lb_open_page(a, page) == LB_OK ? LB_FAULT_HANDLED
                                          : LB_FAULT_NOT_OURS;
}

static int sigbus_available(char *why, size_t len)
{
    return lb_uffd_available(why, len);
}

/* Read-only: UFFDIO_COPY installs pages all the same, and a store to a
 * lazy element faults (SIGSEGV) instead of overwriting it. */
static int sigbus_create(lb_array *a)
{
    return lb_uffd_create_sigbus(a, 0, PROT_READ,
                                 UFFDIO_REGISTER_MODE_MISSING, sigbus_fault);
}

const struct lb_variant_ops lb_variant_uffd_sigbus = {
    .name = "uffd-sigbus",
    .access = LB_ACCESS_FLAT,
    .signo = SIGBUS,
    .has_fault_around = 1,
    .available = sigbus_available,
    .create = sigbus_create,
    .reset = lb_uffd_reset,
    .force = lb_force_pages,
    .release = lb_uffd_release_sigbus,
    .install = lb_uffd_install,
    .forked = lb_uffd_forked,
    /* a fault: the signal, the UFFDIO_COPY that installs the page, its
     * values; and the signal resolved by the copy, timed together */
    .parts = {"sigbus-uffd-roundtrip", "uffdio-copy", "page-compute"},
    .joint_floor = "sigbus-copy",
};

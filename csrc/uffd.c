/* userfaultfd plumbing shared by the uffd variants and the floors.
 *
 * Opened with UFFD_USER_MODE_ONLY, which needs no privilege on current
 * kernels (it only reports faults from user space, which is all a lazy
 * array needs); where that is refused, /dev/userfaultfd is tried. */
#include "lb_core.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

/* How the last successful open got its descriptor (lb_uffd_how). */
static const char *uffd_how;

static int open_raw(char *why, size_t len)
{
    int fd = (int)syscall(SYS_userfaultfd,
                          O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    if (fd >= 0) {
        __atomic_store_n(&uffd_how, "userfaultfd(UFFD_USER_MODE_ONLY)",
                         __ATOMIC_RELAXED);
        return fd;
    }
    int first = errno;
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev >= 0) {
        fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
        close(dev);
        if (fd >= 0) {
            __atomic_store_n(&uffd_how, "/dev/userfaultfd", __ATOMIC_RELAXED);
            return fd;
        }
    }
    snprintf(why, len, "userfaultfd refused (%s; /dev/userfaultfd: %s)",
             strerror(first), strerror(errno));
    return -1;
}

int lb_uffd_open(int features, char *why, size_t len)
{
    int fd = open_raw(why, len);
    if (fd < 0)
        return -1;
    struct uffdio_api api = {.api = UFFD_API, .features = (uint64_t)features};
    if (ioctl(fd, UFFDIO_API, &api)) {
        snprintf(why, len, "UFFDIO_API with features %#x refused (%s)",
                 features, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int lb_uffd_available(char *why, size_t len)
{
    if (getenv("LAZYBENCH_NO_USERFAULTFD")) {
        snprintf(why, len, "disabled by LAZYBENCH_NO_USERFAULTFD");
        return 0;
    }
    int fd = lb_uffd_open(UFFD_FEATURE_SIGBUS, why, len);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

/* UFFD_FEATURE_* bits this kernel's userfaultfd offers (the UFFDIO_API
 * handshake with no feature asked returns them), less those named in
 * LAZYBENCH_HIDE_UFFD_FEATURES (a comma-separated list of feature names
 * without the prefix, e.g. "MOVE,MINOR_SHMEM"), which simulates an older
 * kernel.  1 if `feature` (named `name`, e.g. "MOVE", first offered in
 * `since`, e.g. "Linux 6.8") is there; else 0 and the reason. */
static int hidden(const char *name)
{
    const char *list = getenv("LAZYBENCH_HIDE_UFFD_FEATURES");
    size_t len = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t k = end ? (size_t)(end - p) : strlen(p);
        if (k == len && strncmp(p, name, len) == 0)
            return 1;
        p = end ? end + 1 : p + k;
    }
    return 0;
}

int lb_uffd_has_feature(uint64_t feature, const char *name,
                        const char *since, char *why, size_t len)
{
    if (!lb_uffd_available(why, len))
        return 0;
    if (hidden(name)) {
        snprintf(why, len, "UFFD_FEATURE_%s hidden by "
                 "LAZYBENCH_HIDE_UFFD_FEATURES", name);
        return 0;
    }
    int fd = open_raw(why, len);
    if (fd < 0)
        return 0;
    struct uffdio_api api = {.api = UFFD_API, .features = 0};
    int rc = ioctl(fd, UFFDIO_API, &api);
    close(fd);
    if (rc) {
        snprintf(why, len, "UFFDIO_API refused (%s)", strerror(errno));
        return 0;
    }
    if (!(api.features & feature)) {
        snprintf(why, len, "this kernel's userfaultfd does not offer "
                 "UFFD_FEATURE_%s (%s and later)", name, since);
        return 0;
    }
    return 1;
}

const char *lb_uffd_how(void)
{
    return __atomic_load_n(&uffd_how, __ATOMIC_RELAXED);
}

int lb_uffd_register_mode(int fd, void *start, size_t len, int mode)
{
    struct uffdio_register reg = {
        .range = {.start = (uint64_t)(uintptr_t)start, .len = len},
        .mode = (uint64_t)mode,
    };
    return ioctl(fd, UFFDIO_REGISTER, &reg);
}

int lb_uffd_register(int fd, void *start, size_t len)
{
    return lb_uffd_register_mode(fd, start, len,
                                 UFFDIO_REGISTER_MODE_MISSING);
}

/* Async-signal-safe (one ioctl).  0, or -errno. */
int lb_uffd_copy(int fd, void *dst, const void *src, size_t len)
{
    struct uffdio_copy copy = {
        .dst = (uint64_t)(uintptr_t)dst,
        .src = (uint64_t)(uintptr_t)src,
        .len = len,
        .mode = 0,
    };
    if (ioctl(fd, UFFDIO_COPY, &copy) == 0)
        return 0;
    return -errno;
}

int lb_uffd_wake(int fd, void *start, size_t len)
{
    struct uffdio_range range = {.start = (uint64_t)(uintptr_t)start,
                                 .len = len};
    return ioctl(fd, UFFDIO_WAKE, &range);
}

/* ---- a lazy array backed by userfaultfd missing pages ------------------ */

#include <sys/mman.h>

int lb_uffd_create(lb_array *a, int features, struct lb_uffd **out)
{
    /* Read-only: UFFDIO_COPY installs pages all the same, and a store to
     * a lazy element faults instead of overwriting it. */
    return lb_uffd_create_mode(a, features, PROT_READ,
                               UFFDIO_REGISTER_MODE_MISSING, out);
}

int lb_uffd_create_mode(lb_array *a, int features, int prot, int mode,
                        struct lb_uffd **out)
{
    char why[200];
    struct lb_uffd *u = calloc(1, sizeof *u);
    if (!u)
        return LB_ENOMEM;
    u->fd = -1;
    u->stopfd = -1;
    void *region = mmap(NULL, a->bytes, prot,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    u->region = region == MAP_FAILED ? NULL : region;
    if (!u->region) {
        lb_uffd_destroy(a, u);
        lb_set_error("userfaultfd: cannot map the array", NULL);
        return LB_ENOMEM;
    }
    madvise(u->region, a->bytes, MADV_NOHUGEPAGE);
    /* A forked child gets no copy of the region (its registration would
     * not follow it: missing pages would read as zeros there); it gets a
     * PROT_NONE reservation instead (lb_uffd_forked). */
    madvise(u->region, a->bytes, MADV_DONTFORK);
    u->fd = lb_uffd_open(features, why, sizeof why);
    if (u->fd < 0 ||
        lb_uffd_register_mode(u->fd, u->region, a->bytes, mode)) {
        lb_set_error("userfaultfd: ", u->fd < 0 ? why : strerror(errno));
        lb_uffd_destroy(a, u);
        return LB_EUNAVAIL;
    }
    a->priv = u;
    a->view = (const int64_t *)u->region;
    *out = u;
    return LB_OK;
}

int lb_uffd_create_sigbus(lb_array *a, int features, int prot, int mode,
                          lb_fault_fn fault)
{
    struct lb_uffd *u;
    int rc = lb_uffd_create_mode(a, features | UFFD_FEATURE_SIGBUS, prot,
                                 mode, &u);
    if (rc)
        return rc;
    rc = lb_sig_register(SIGBUS, a, u->region, a->bytes, fault);
    if (rc) {
        lb_uffd_destroy(a, u);
        a->priv = NULL;
    }
    return rc;
}

void lb_uffd_release_sigbus(lb_array *a)
{
    lb_sig_unregister(SIGBUS, a);
    lb_uffd_destroy(a, a->priv);
}

void lb_uffd_destroy(lb_array *a, struct lb_uffd *u)
{
    if (u->fd >= 0)
        close(u->fd);
    if (u->region)
        munmap(u->region, a->bytes);
    free(u);
}

/* In the child of fork(): the userfaultfd would resolve faults of the
 * parent's region, the eventfd would stop the parent's handler thread,
 * which does not exist here.  Close both; release then neither stops nor
 * joins it. */
void lb_uffd_forked(lb_array *a)
{
    struct lb_uffd *u = a->priv;
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
    if (u->stopfd >= 0)
        close(u->stopfd);
    u->stopfd = -1;
    u->has_thread = 0;
    lb_fork_reserve(u->region, a->bytes);
}

int lb_uffd_reset(lb_array *a)
{
    struct lb_uffd *u = a->priv;
    if (madvise(u->region, a->bytes, MADV_DONTNEED)) {
        lb_set_error("userfaultfd: reset failed: ", strerror(errno));
        return LB_ESYS;
    }
    memset(a->state, LB_PAGE_LAZY, (size_t)a->npages);
    return LB_OK;
}

/* The uffd variants' install step (lb_fill_pages): one UFFDIO_COPY of
 * the computed pages, which also wakes threads waiting on them.
 * Signal-safe. */
int lb_uffd_install(lb_array *a, int64_t first, int64_t last,
                    const char *buf)
{
    struct lb_uffd *u = a->priv;
    lb_prof_syscalls(1);                        /* the ioctl */
    if (lb_uffd_copy(u->fd, u->region + first * lb_page_size, buf,
                     (size_t)(last - first + 1) * lb_page_size)) {
        lb_set_error("userfaultfd: UFFDIO_COPY failed", NULL);
        return LB_ESYS;
    }
    return LB_OK;
}

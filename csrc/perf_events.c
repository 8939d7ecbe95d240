/* perf_event_open software counters for the switch accounting.
 *
 * Counting this process and the threads it starts afterwards (inherit),
 * on any CPU.  Unprivileged, perf_event_paranoid = 2 allows user-mode
 * counting only; then events that happen in the kernel (context switches,
 * migrations) read 0 whatever happened.  Which mode to ask for, and
 * whether a count is true, is for the caller to decide by checking it
 * against a known count (lazybench/_switches.py). */
#include "lb_core.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int open_event(int event, int exclude_kernel)
{
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = (uint64_t)event;
    attr.inherit = 1;
    attr.exclude_kernel = exclude_kernel ? 1 : 0;
    attr.exclude_hv = 1;
    return (int)syscall(SYS_perf_event_open, &attr, 0, -1, -1,
                        PERF_FLAG_FD_CLOEXEC);
}

int lb_perf_open(int event, int user_only, char *why, size_t len)
{
    int fd = open_event(event, user_only);
    if (fd >= 0)
        return fd;
    int err = errno;
    lb_strlcpy(why, err == EACCES || err == EPERM
                        ? "not permitted (perf_event_open refused it)"
                    : err == ENOSYS ? "perf_event_open: no such system call"
                    : err == ENOENT ? "perf_event_open: no such event"
                                    : "perf_event_open failed",
               len);
    return -1;
}

int64_t lb_perf_read(int fd)
{
    uint64_t v;
    if (read(fd, &v, sizeof v) != (ssize_t)sizeof v)
        return -1;
    return (int64_t)v;
}

void lb_perf_close(int fd)
{
    if (fd >= 0)
        close(fd);
}

/* swcheck: no hardware help.  Every element is a thunk with a state word
 * (lazy, being evaluated, evaluated) that every read checks; the first
 * reader to claim a lazy element evaluates it, readers that find it being
 * evaluated wait, so each element is computed exactly once even when
 * threads race.  The floor for "what does the check cost in C".
 *
 * The state words are the array's (a->state, one per element); a->priv
 * holds the values. */
#include "lb_core.h"

#include <string.h>
#include <sys/mman.h>

int64_t lb_swcheck_force(lb_array *a, int64_t i)
{
    int64_t *data = a->priv;
    /* 0 only on a failure with no unwind point (then the error is set) */
    return lb_force_element(a, data, i) ? 0 : data[i];
}

static int sw_create(lb_array *a)
{
    void *data = mmap(NULL, a->bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (data == MAP_FAILED) {
        lb_set_error("swcheck: cannot map the array", NULL);
        return LB_ENOMEM;
    }
    a->priv = data;
    return LB_OK;
}

static int sw_reset(lb_array *a)
{
    memset(a->state, LB_PAGE_LAZY, (size_t)a->n);
    madvise(a->priv, a->bytes, MADV_DONTNEED);     /* fresh pages */
    return LB_OK;
}

static int sw_force(lb_array *a)
{
    for (int64_t i = 0; i < a->n; i++)
        lb_swcheck_read(a, i);
    return LB_OK;
}

static void sw_release(lb_array *a)
{
    munmap(a->priv, a->bytes);
}

const struct lb_variant_ops lb_variant_swcheck = {
    .name = "swcheck",
    .access = LB_ACCESS_SWCHECK,
    .granule = 1,
    .create = sw_create,
    .reset = sw_reset,
    .force = sw_force,
    .release = sw_release,
};

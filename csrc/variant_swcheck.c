/* swcheck: no hardware help.  Every element is a thunk with a state word
 * (lazy, being evaluated, evaluated) that every read checks; the first
 * reader to claim a lazy element evaluates it, readers that find it being
 * evaluated wait, so each element is computed exactly once even when
 * threads race.  The floor for "what does the check cost in C". */
#include "lb_core.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int64_t lb_swcheck_force(lb_array *a, int64_t i)
{
    struct lb_swcheck *s = a->priv;
    /* 0 only on a failure with no unwind point (then the error is set) */
    return lb_force_element(a, s->state, s->data, i) ? 0 : s->data[i];
}

static void sw_abort(lb_array *a, int64_t lo, int64_t hi)
{
    struct lb_swcheck *s = a->priv;
    for (int64_t i = lo; i < hi; i++)
        __atomic_store_n(&s->state[i], LB_PAGE_LAZY, __ATOMIC_RELEASE);
}

static int sw_create(lb_array *a)
{
    struct lb_swcheck *s = calloc(1, sizeof *s);
    if (!s)
        return LB_ENOMEM;
    void *data = mmap(NULL, a->bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    s->state = calloc((size_t)a->n, 1);
    if (data == MAP_FAILED || !s->state) {
        if (data != MAP_FAILED)
            munmap(data, a->bytes);
        free(s->state);
        free(s);
        lb_set_error("swcheck: cannot map the array", NULL);
        return LB_ENOMEM;
    }
    s->data = data;
    a->priv = s;
    return LB_OK;
}

static int sw_reset(lb_array *a)
{
    struct lb_swcheck *s = a->priv;
    memset(s->state, LB_PAGE_LAZY, (size_t)a->n);
    madvise(s->data, a->bytes, MADV_DONTNEED);     /* fresh pages */
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
    struct lb_swcheck *s = a->priv;
    munmap(s->data, a->bytes);
    free(s->state);
    free(s);
}

const struct lb_variant_ops lb_variant_swcheck = {
    .name = "swcheck",
    .access = LB_ACCESS_THUNK,
    .granule = 1,
    .create = sw_create,
    .reset = sw_reset,
    .force = sw_force,
    .release = sw_release,
    .abort_fill = sw_abort,
};

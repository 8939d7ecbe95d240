/* fork(): what a child process may do with the arrays it inherited.
 *
 * A child shares with its parent whatever fork shares: the memfd behind a
 * sigsegv-mprotect array (MAP_SHARED), the userfaultfd of a uffd array,
 * the eventfd that stops a uffd-thread handler thread (which does not
 * exist in the child).  Using an inherited array in the child could change
 * the parent's data, install pages into the parent's array, or wait for a
 * thread that is not there.  So:
 *
 * - the child handler of pthread_atfork bumps lb_fork_gen; an array
 *   records the generation it was created in, and every guarded entry,
 *   view session and view read refuses an array of an older generation
 *   (LB_ESTATE, "... created before fork() ..."), as the signal dispatcher
 *   refuses faults in its regions;
 * - it calls each live array's `forked` step, which closes the array's
 *   descriptors in the child and puts a fresh PROT_NONE reservation where
 *   its lazy memory was (that memory is MADV_DONTFORK), so the child can
 *   neither reach the parent's data through it nor read zeros, and no new
 *   array of the child can land at its address;
 * - releasing an inherited array in the child then frees only the child's
 *   copies (memory, descriptors, bookkeeping).
 *
 * Only the forking thread exists in the child, so the handler walks the
 * list under the lock its prepare step took, and uses system calls only. */
#include "lb_core.h"

#include <pthread.h>
#include <sys/mman.h>

unsigned lb_fork_gen;

static pthread_mutex_t arrays_lock = PTHREAD_MUTEX_INITIALIZER;
static lb_array *arrays;                /* live arrays, newest first */

static void fork_prepare(void)
{
    pthread_mutex_lock(&arrays_lock);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&arrays_lock);
}

static void fork_child(void)
{
    __atomic_add_fetch(&lb_fork_gen, 1, __ATOMIC_RELAXED);
    for (lb_array *a = arrays; a; a = a->fork_next)
        if (a->ops->forked)
            a->ops->forked(a);
    /* The forking thread took it in fork_prepare, under another id. */
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    arrays_lock = fresh;
}

__attribute__((constructor)) static void fork_init(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void lb_fork_track(lb_array *a)
{
    pthread_mutex_lock(&arrays_lock);
    a->fork_prev = NULL;
    a->fork_next = arrays;
    if (arrays)
        arrays->fork_prev = a;
    arrays = a;
    pthread_mutex_unlock(&arrays_lock);
}

void lb_fork_untrack(lb_array *a)
{
    pthread_mutex_lock(&arrays_lock);
    if (a->fork_prev)
        a->fork_prev->fork_next = a->fork_next;
    else if (arrays == a)
        arrays = a->fork_next;
    if (a->fork_next)
        a->fork_next->fork_prev = a->fork_prev;
    a->fork_prev = a->fork_next = NULL;
    pthread_mutex_unlock(&arrays_lock);
}

void lb_fork_reserve(void *start, size_t len)
{
    /* MAP_FIXED replaces whatever is there (nothing, for MADV_DONTFORK
     * memory); failure leaves the range unmapped, which still faults. */
    mmap(start, len, PROT_NONE,
         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
}

int lb_fork_refuse(const lb_array *a)
{
    lb_set_error(a->ops->name,
                 " array was created before fork(): a child process cannot "
                 "use the arrays it inherited (create new ones there)");
    return LB_ESTATE;
}

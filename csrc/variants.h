/* The variants, one line each, in the order they are listed (lazybench
 * list, the suite, the reports).  LB_VARIANT(id) names the ops structure
 * `const struct lb_variant_ops lb_variant_<id>` a csrc/variant_*.c file
 * defines; the variant's own name is in that structure.  Included with
 * LB_VARIANT defined by the includer (no include guard): lb_core.h makes
 * the declarations from it, core.c the registry.  Adding a variant: its
 * file, and its line here. */
LB_VARIANT(eager)
LB_VARIANT(eager_handles)
LB_VARIANT(swcheck)
LB_VARIANT(sigsegv_mprotect)
LB_VARIANT(sigsegv_redirect)
LB_VARIANT(sigsegv_redirect_heal)
LB_VARIANT(sigsegv_redirect_nocache)
LB_VARIANT(sigsegv_redirect_essay)
LB_VARIANT(uffd_sigbus)
LB_VARIANT(uffd_minor)
LB_VARIANT(uffd_thread_same)
LB_VARIANT(uffd_thread_other)
LB_VARIANT(uffd_thread_unpinned)

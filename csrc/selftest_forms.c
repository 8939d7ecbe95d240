/* Instruction-form self-test: one inline-asm load per (form, register),
 * each reading element i through the address a workload would use (a
 * handle for sigsegv-redirect, the element itself for flat variants).
 * The test suite runs every one against every fault-driven variant: this
 * is how the redirect handler's decoding is checked on real instructions. */
#include "lb_core.h"

#include <string.h>

/* rbp is a register like any other here, not a frame pointer. */
#pragma GCC optimize("omit-frame-pointer")

typedef int64_t (*form_fn)(const char *h, int64_t expected);

/* One function per form for register R (any general-purpose register but
 * rsp), the address held in R as the instruction executes. */
#define DEFINE_FORMS(R)                                                        \
    static int64_t R##_base(const char *h, int64_t e)                          \
    {                                                                          \
        register const char *p __asm__(#R) = h;                                \
        int64_t v;                                                             \
        __asm__ volatile("movq (%1), %0" : "=r"(v) : "r"(p) : "memory");       \
        return v;                                                              \
    }                                                                          \
    static int64_t R##_disp(const char *h, int64_t e)                          \
    {                                                                          \
        register const char *p __asm__(#R) = h - 0x40;                         \
        int64_t v;                                                             \
        __asm__ volatile("movq 0x40(%1), %0" : "=r"(v) : "r"(p) : "memory");   \
        return v;                                                              \
    }                                                                          \
    static int64_t R##_base_index(const char *h, int64_t e)                    \
    {                                                                          \
        register const char *p __asm__(#R) = h - 0x10 - 3 * 8;                 \
        int64_t idx = 3, v;                                                    \
        __asm__ volatile("movq 0x10(%1,%2,8), %0"                              \
                         : "=r"(v) : "r"(p), "r"(idx) : "memory");             \
        return v;                                                              \
    }                                                                          \
    static int64_t R##_index(const char *h, int64_t e)                         \
    {                                                                          \
        register const char *p __asm__(#R) = h;                                \
        int64_t v;                                                             \
        __asm__ volatile("movq (,%1,1), %0" : "=r"(v) : "r"(p) : "memory");    \
        return v;                                                              \
    }                                                                          \
    static int64_t R##_alu(const char *h, int64_t e)                           \
    {                                                                          \
        register const char *p __asm__(#R) = h;                                \
        int64_t acc = 0;                                                       \
        __asm__ volatile("addq (%1), %0" : "+r"(acc) : "r"(p) : "memory");     \
        return acc;                                                            \
    }                                                                          \
    static int64_t R##_cmp(const char *h, int64_t e)                           \
    {                                                                          \
        register const char *p __asm__(#R) = h;                                \
        int eq;                                                                \
        __asm__ volatile("cmpq (%1), %2"                                       \
                         : "=@ccz"(eq) : "r"(p), "r"(e) : "memory");           \
        return eq;                                                             \
    }                                                                          \
    static int64_t R##_movzx(const char *h, int64_t e)                         \
    {                                                                          \
        register const char *p __asm__(#R) = h;                                \
        uint64_t v;                                                            \
        __asm__ volatile("movzbq (%1), %0" : "=r"(v) : "r"(p) : "memory");     \
        return (int64_t)v;                                                     \
    }                                                                          \
    static int64_t R##_movsx(const char *h, int64_t e)                         \
    {                                                                          \
        register const char *p __asm__(#R) = h;                                \
        int64_t v;                                                             \
        __asm__ volatile("movslq (%1), %0" : "=r"(v) : "r"(p) : "memory");     \
        return v;                                                              \
    }                                                                          \
    static int64_t R##_sse(const char *h, int64_t e)                           \
    {                                                                          \
        register const char *p __asm__(#R) = h;                                \
        double d;                                                              \
        int64_t v;                                                             \
        __asm__ volatile("movsd (%1), %0" : "=x"(d) : "r"(p) : "memory");      \
        memcpy(&v, &d, sizeof v);                                              \
        return v;                                                              \
    }                                                                          \
    __attribute__((target("avx"))) static int64_t R##_avx(const char *h,       \
                                                          int64_t e)           \
    {                                                                          \
        register const char *p __asm__(#R) = h;                                \
        int64_t v;                                                             \
        __asm__ volatile("vmovdqu (%1), %%ymm0\n\t"                            \
                         "vmovq %%xmm0, %0\n\t"                                \
                         "vzeroupper"                                          \
                         : "=r"(v) : "r"(p) : "xmm0", "memory");               \
        return v;                                                              \
    }                                                                          \
    static int64_t R##_store(const char *h, int64_t e)                         \
    {                                                                          \
        register const char *p __asm__(#R) = h;                                \
        __asm__ volatile("movq %1, (%0)" : : "r"(p), "r"(e) : "memory");       \
        return 0;                                                              \
    }

#define FORMS_OF(R)                                                            \
    {                                                                          \
        R##_base, R##_disp, R##_base_index, R##_index, R##_alu, R##_cmp,       \
            R##_movzx, R##_movsx, R##_sse, R##_avx, R##_store                  \
    }

DEFINE_FORMS(rax)
DEFINE_FORMS(rcx)
DEFINE_FORMS(rdx)
DEFINE_FORMS(rbx)
DEFINE_FORMS(rbp)
DEFINE_FORMS(rsi)
DEFINE_FORMS(rdi)
DEFINE_FORMS(r8)
DEFINE_FORMS(r9)
DEFINE_FORMS(r10)
DEFINE_FORMS(r11)
DEFINE_FORMS(r12)
DEFINE_FORMS(r13)
DEFINE_FORMS(r14)
DEFINE_FORMS(r15)

/* rsp cannot be a register variable: these park it in r11 meanwhile.  The
 * fault is delivered on the alternate signal stack. */
__asm__(".text\n"
        ".type lb_rsp_base, @function\n"
        "lb_rsp_base:\n"
        "    mov %rsp, %r11\n"
        "    mov %rdi, %rsp\n"
        "    movq (%rsp), %rax\n"
        "    mov %r11, %rsp\n"
        "    ret\n"
        ".type lb_rsp_disp, @function\n"
        "lb_rsp_disp:\n"
        "    mov %rsp, %r11\n"
        "    lea -0x40(%rdi), %rsp\n"
        "    movq 0x40(%rsp), %rax\n"
        "    mov %r11, %rsp\n"
        "    ret\n"
        ".type lb_rsp_base_index, @function\n"
        "lb_rsp_base_index:\n"
        "    mov %rsp, %r11\n"
        "    lea -0x28(%rdi), %rsp\n"
        "    mov $3, %rsi\n"
        "    movq 0x10(%rsp,%rsi,8), %rax\n"
        "    mov %r11, %rsp\n"
        "    ret\n"
        ".type lb_rsp_alu, @function\n"
        "lb_rsp_alu:\n"
        "    mov %rsp, %r11\n"
        "    mov %rdi, %rsp\n"
        "    xor %eax, %eax\n"
        "    addq (%rsp), %rax\n"
        "    mov %r11, %rsp\n"
        "    ret\n");
int64_t lb_rsp_base(const char *h, int64_t e);
int64_t lb_rsp_disp(const char *h, int64_t e);
int64_t lb_rsp_base_index(const char *h, int64_t e);
int64_t lb_rsp_alu(const char *h, int64_t e);

/* Rows in register-number order: rax rcx rdx rbx rsp rbp rsi rdi r8..r15. */
static const form_fn forms[16][LB_FORM_COUNT] = {
    FORMS_OF(rax), FORMS_OF(rcx), FORMS_OF(rdx), FORMS_OF(rbx),
    {lb_rsp_base, lb_rsp_disp, lb_rsp_base_index, NULL, lb_rsp_alu},
    FORMS_OF(rbp), FORMS_OF(rsi), FORMS_OF(rdi), FORMS_OF(r8), FORMS_OF(r9),
    FORMS_OF(r10), FORMS_OF(r11), FORMS_OF(r12), FORMS_OF(r13),
    FORMS_OF(r14), FORMS_OF(r15),
};

struct form_ctx {
    form_fn fn;
    int64_t i, expected, out;
};

static int body_form(lb_array *a, void *p)
{
    struct form_ctx *ctx = p;
    const char *h = a->ops->access == LB_ACCESS_HANDLES
                        ? (const char *)a->handles[ctx->i]
                        : (const char *)&a->view[ctx->i];
    ctx->out = ctx->fn(h, ctx->expected);
    return LB_OK;
}

int lb_selftest_form(lb_array *a, int form, int reg, int64_t i,
                     int64_t expected, int64_t *out)
{
    *out = 0;
    if (form < 0 || form >= LB_FORM_COUNT || reg < 0 || reg >= 16 ||
        !forms[reg][form]) {
        lb_set_error("no such instruction form for that register", NULL);
        return LB_EINVAL;
    }
    if (a->ops->access == LB_ACCESS_SWCHECK) {
        lb_set_error("this variant's elements have no address to load from",
                     NULL);
        return LB_EINVAL;
    }
    int64_t width = form == LB_FORM_AVX ? 4 : 1;
    if (i < 0 || i + width > a->n) {
        lb_set_error("index out of range", NULL);
        return LB_EINVAL;
    }
    if (form == LB_FORM_AVX && !__builtin_cpu_supports("avx")) {
        lb_set_error("this CPU has no AVX", NULL);
        return LB_EUNAVAIL;
    }
    struct form_ctx ctx = {.fn = forms[reg][form], .i = i,
                           .expected = expected};
    int rc = lb_guarded(a, body_form, &ctx);
    *out = ctx.out;
    return rc;
}
